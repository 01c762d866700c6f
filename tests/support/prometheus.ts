// Reading an operator's /metrics in tests: a scrape, a small reader of sample values, and the
// real Prometheus parser (prometheus_client's, from PyPI, in a venv made on first use) to prove
// the exposition is what a Prometheus server would accept.

/** Samples by series: `name` and labels → value. */
export class Samples {
  constructor(readonly series: { name: string; labels: Record<string, string>; value: number }[]) {}

  /** The sum of the series of `name` whose labels match `filter` (0 if none). */
  sum(name: string, filter: Record<string, string> = {}): number {
    let total = 0;
    for (const s of this.series) {
      if (s.name !== name) continue;
      if (Object.entries(filter).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  }

  /** Whether any series of `name` exists. */
  has(name: string): boolean {
    return this.series.some((s) => s.name === name);
  }

  /** `this − earlier`, series by series (counters over a window). */
  since(earlier: Samples): Samples {
    const key = (s: { name: string; labels: Record<string, string> }) =>
      s.name + JSON.stringify(Object.entries(s.labels).sort());
    const before = new Map(earlier.series.map((s) => [key(s), s.value]));
    return new Samples(
      this.series.map((s) => ({ ...s, value: s.value - (before.get(key(s)) ?? 0) })),
    );
  }
}

/** Read the text format (the subset our exposition writes: no timestamps, no exemplars). */
export function parseText(text: string): Samples {
  const series: Samples["series"] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const brace = line.indexOf("{");
    const space = line.lastIndexOf(" ");
    const labels: Record<string, string> = {};
    let name = line.slice(0, space);
    if (brace >= 0) {
      name = line.slice(0, brace);
      const body = line.slice(brace + 1, line.lastIndexOf("}"));
      for (const m of body.matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => c === "n" ? "\n" : c);
      }
    }
    const raw = line.slice(space + 1);
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    series.push({ name, labels, value });
  }
  return new Samples(series);
}

/** GET the endpoint and read it. */
export async function scrape(url: string): Promise<Samples> {
  const response = await fetch(url);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`scrape ${url}: HTTP ${response.status}: ${text}`);
  return parseText(text);
}

const VENV = `${Deno.env.get("HOME")}/.cache/kopf-prometheus-venv`;

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** The venv's python with prometheus_client installed (made on first use, from PyPI). */
async function python(): Promise<string> {
  const bin = `${VENV}/bin/python`;
  try {
    await run(bin, ["-c", "import prometheus_client"]);
  } catch {
    await run("python3", ["-m", "venv", VENV]);
    await run(`${VENV}/bin/pip`, ["install", "--quiet", "prometheus_client"]);
  }
  return bin;
}

const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
`;

/** One sample as prometheus_client's parser read it. */
export interface ParsedSample {
  family: string;
  type: string;
  name: string;
  labels: Record<string, string>;
  value: number | string;
}

/** Parse the exposition with prometheus_client's parser; throws with its error if it refuses. */
export async function prometheusParse(text: string): Promise<ParsedSample[]> {
  return JSON.parse(await run(await python(), ["-c", PARSE], text));
}

/** A free local port (listen on 0, close, hand back the number). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
