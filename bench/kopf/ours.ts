/**
 * Ours in the benchmark: the same operator as Kopf's, handler for handler
 * (bench/kopf/operators/ours_*.ts), started the way users start it — `kopf run --standalone -n <ns>`
 * through cli.ts, with its defaults. `kopf run` replaces itself with the scoped operator (execve),
 * so that is one process; a launcher and its child (`KOPF_LAUNCHER=spawn`) would both be measured.
 *
 * @module
 */
import { OperatorProcess } from "../../tests/support/operator_process.ts";
import type { Target } from "./scenario.ts";
import { criteriaOf, type Variant } from "./targets.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * Why ours cannot run yet, or `undefined` when it can: mod.ts must export `run` and `on`, and the
 * operator file of the variant must exist.
 */
export async function oursUnavailable(
  variant: Variant,
  best = false,
): Promise<string | undefined> {
  const file = fileOf(variant, best);
  try {
    await Deno.stat(file);
  } catch {
    return `${file} does not exist`;
  }
  const probe = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import * as k from "${ROOT}mod.ts"; console.log(typeof k.run, typeof k.on?.create)`,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(probe.stdout).trim();
  if (said !== "function function") {
    return `mod.ts does not export run and on.create yet (${
      said || new TextDecoder().decode(probe.stderr).trim().split("\n")[0]
    })`;
  }
  return undefined;
}

function fileOf(variant: Variant, best: boolean): string {
  return `${HERE}operators/${best ? "ours_best" : `ours_${variant}`}.ts`;
}

/** A free local port (listen on 0, close, hand back the number). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Scrape `url` every `seconds` until the process ends, as a Prometheus server would. */
function scrapeWhileRunning(url: string, operator: OperatorProcess, seconds: number): void {
  let running = true;
  operator.status.finally(() => running = false);
  (async () => {
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      if (!running) break;
      try {
        await (await fetch(url)).arrayBuffer();
      } catch {
        // Not listening yet, or stopping.
      }
    }
  })();
}

/**
 * The target for ours, or the reason it cannot run. `best`: the same operator with its client-side
 * rate limit off (operators/ours_best.ts), labelled so; single variant only. `metrics`: the
 * default operator with `--metrics` on and scraped every 5 s (its cost against `ours`).
 */
export async function oursFactory(
  variant: Variant,
  best = false,
  metrics = false,
): Promise<Target | string> {
  if (best && variant !== "single") return "run for the single variant only";
  const unavailable = await oursUnavailable(variant, best);
  if (unavailable) return unavailable;
  const file = fileOf(variant, best);
  const args = (ns: string, port?: number) => [
    "run",
    "-A",
    `${ROOT}cli.ts`,
    "run",
    // As in production (`kopf init`'s Dockerfile): type-checked at build, not at each start —
    // a check after a source change costs seconds of CPU and ~300 MiB in a subprocess.
    "--no-check",
    "--standalone",
    "-n",
    ns,
    ...(port === undefined ? [] : ["--metrics", `http://127.0.0.1:${port}/metrics`]),
    file,
  ];
  return {
    id: best ? "ours-best" : metrics ? "ours-metrics" : "ours",
    label: best
      ? "ours (client rate limit off)"
      : metrics
      ? "ours (metrics on)"
      : "ours (Kopf for Deno)",
    variant,
    criteria: criteriaOf(variant),
    command: [Deno.execPath(), ...args("<ns>", metrics ? 9090 : undefined)],
    start: ({ plane, namespace, logFile }) => {
      const port = metrics ? freePort() : undefined;
      const operator = OperatorProcess.start({
        command: Deno.execPath(),
        args: args(namespace, port),
        cwd: ROOT,
        env: { KUBECONFIG: plane.operator.kubeconfig },
        logFile,
      });
      if (port !== undefined) {
        scrapeWhileRunning(`http://127.0.0.1:${port}/metrics`, operator, 5);
      }
      return operator;
    },
  };
}
