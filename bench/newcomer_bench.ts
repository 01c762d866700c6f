/**
 * The figures of issue 15 for a one-handler operator, against the local control plane:
 *
 * - `kopf run` start: milliseconds from the start to its "Watching …" line, type-checked (the
 *   default) after an edit of the handler file, type-checked with the file unchanged (Deno caches
 *   the check), and with `--no-check`;
 * - `kopf bundle`: the bundle's size;
 * - memory: the resident memory (VmRSS) and its peak (VmHWM) of the bundled operator and of
 *   `kopf run`'s operator (the same process: `kopf run` replaces itself with it), each after one
 *   object was created and handled and 10 s idle.
 *
 * ```sh
 * KOPF_CLUSTER_DIR=/tmp/kopf-cluster deno run -A bench/newcomer_bench.ts --runs 3
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { cluster } from "../tests/support/cluster.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
const runs = Number(values.runs);
const MOD = new URL("../mod.ts", import.meta.url).href;
const CLI = new URL("../cli.ts", import.meta.url).href;
const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);
const ns = await c.namespace("newcomer-bench");
const dir = await Deno.makeTempDir({ prefix: "kopf-newcomer-bench-" });
const handlers = `${dir}/handlers.ts`;
const source = `import * as kopf from "${MOD}";

kopf.on.create("kopfexamples.kopf.dev", function created({ name, logger }) {
  logger.info(\`created \${name}\`);
});
`;
await Deno.writeTextFile(handlers, source);

/** VmRSS (now) and VmHWM (the peak) of a process, in MiB. */
function memoryMiB(pid: number): { rss: number; peak: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))?.[1]);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** Starts `args`, resolves when a line matches; returns the child and the milliseconds. */
async function startUntil(
  args: string[],
  pattern: RegExp,
): Promise<{ child: Deno.ChildProcess; ms: number }> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { KUBECONFIG: c.kubeconfig },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  child.stdout.pipeTo(new WritableStream()).catch(() => {});
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before ${pattern}: ${text}`);
    text += value;
    if (pattern.test(text)) break;
  }
  const ms = Math.round(performance.now() - started);
  // Keep draining, or the child blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  return { child, ms };
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGINT");
  await child.status;
}

const runArgs = (...flags: string[]) => [
  "run",
  "-A",
  CLI,
  "run",
  "--standalone",
  ...flags,
  handlers,
  "-n",
  ns,
];

async function startMs(flags: string[], edit: boolean): Promise<number> {
  if (edit) await Deno.writeTextFile(handlers, `${source}// edit ${crypto.randomUUID()}\n`);
  const { child, ms } = await startUntil(runArgs(...flags), /Watching /);
  await stop(child);
  return ms;
}

/** Memory of the operator started by `args`, with one object created and handled. */
async function memoryOf(args: string[], name: string): Promise<{ rss: number; peak: number }> {
  const { child } = await startUntil(args, /Watching /);
  try {
    await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`, {
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      metadata: { name },
      spec: {},
    });
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    return memoryMiB(child.pid);
  } finally {
    await stop(child);
  }
}

const out = await new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", CLI, "bundle", handlers, "-o", `${dir}/operator.js`],
  env: { KUBECONFIG: c.kubeconfig },
  stdout: "piped",
  stderr: "piped",
}).output();
if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
const bundleRun = new TextDecoder().decode(out.stdout).trim().replace(/ \[-n.*$/, "").split(" ");
const bundleBytes = (await Deno.stat(`${dir}/operator.js`)).size;

const rows: Record<string, number[]> = {
  "start, checked, after an edit (ms)": [],
  "start, checked, unchanged (ms)": [],
  "start, --no-check (ms)": [],
  "RSS 10 s after, kopf run (MiB)": [],
  "RSS 10 s after, bundle (MiB)": [],
  "peak RSS, kopf run (MiB)": [],
  "peak RSS, bundle (MiB)": [],
};
try {
  await startMs([], true); // warm Deno's caches once
  for (let i = 0; i < runs; i++) {
    rows["start, checked, after an edit (ms)"].push(await startMs([], true));
    rows["start, checked, unchanged (ms)"].push(await startMs([], false));
    rows["start, --no-check (ms)"].push(await startMs(["--no-check"], true));
    const run = await memoryOf(runArgs("--no-check"), `run-${i}`);
    const bundled = await memoryOf([...bundleRun.slice(1), "-n", ns, "--standalone"], `b-${i}`);
    rows["RSS 10 s after, kopf run (MiB)"].push(run.rss);
    rows["RSS 10 s after, bundle (MiB)"].push(bundled.rss);
    rows["peak RSS, kopf run (MiB)"].push(run.peak);
    rows["peak RSS, bundle (MiB)"].push(bundled.peak);
  }
} finally {
  await c.deleteNamespace(ns);
}
console.log(`bundle: ${(bundleBytes / 1e6).toFixed(2)} MB (${bundleBytes} bytes)`);
for (const [name, values] of Object.entries(rows)) {
  const sorted = [...values].sort((a, b) => a - b);
  console.log(
    `${name}: ${sorted.map((v) => v.toFixed(0)).join(", ")} (median ${
      sorted[Math.floor(sorted.length / 2)].toFixed(0)
    })`,
  );
}
await Deno.remove(dir, { recursive: true });
