/**
 * Where the operator process's memory goes with many objects: runs one operator process
 * (`bench/memory_operator.ts`, the same entry as `kopf run`'s child) on a private control plane,
 * creates N objects of the benchmark's CRD, waits until every one is handled (create result in
 * its status), optionally updates and deletes them, idles, and reports the operator's RSS (peak
 * and per phase, from `/proc`), `Deno.memoryUsage()` and `smaps_rollup` at each phase's end; with
 * `--snapshot`, a heap snapshot at the end (analyse it with `bench/heap_summary.ts`). `--cli` starts
 * the operator through `cli.ts run` as users do (RSS only).
 *
 * ```sh
 * deno run -A bench/memory_profile.ts --n 10000 --idle 20 --snapshot
 * deno run -A bench/memory_profile.ts --n 10000 --v8-flags= --phases create,update,delete
 * ```
 *
 * The operator is `bench/kopf/operators/ours_best.ts` by default (the benchmark's handlers with
 * the client rate limit off, so 10,000 objects take a minute, not seven).
 *
 * @module
 */
import { parseArgs } from "node:util";

const ROOT = new URL("..", import.meta.url).pathname;
const { values: args } = parseArgs({
  options: {
    n: { type: "string", default: "10000" },
    operator: { type: "string", default: `${ROOT}bench/kopf/operators/ours_best.ts` },
    "v8-flags": { type: "string", default: "--optimize-for-size" },
    phases: { type: "string", default: "create" },
    idle: { type: "string", default: "20" },
    snapshot: { type: "boolean", default: false },
    // A snapshot as soon as the driver's create requests have all returned (mid-burst).
    "snapshot-mid": { type: "boolean", default: false },
    // After the idle window, glibc's malloc_trim(0) in the operator, and one more row.
    trim: { type: "boolean", default: false },
    out: { type: "string" },
    plane: { type: "string", default: "/tmp/kopf-mem-plane" },
    concurrency: { type: "string", default: "32" },
    // Leave the private plane running afterwards (by default it goes: its namespaces of
    // finalizer-blocked objects would keep kube-controller-manager and the apiserver busy).
    "keep-plane": { type: "boolean", default: false },
    // Start the operator as users do, `deno run -A cli.ts run …` (the launcher execs into the
    // operator), instead of bench/memory_operator.ts: no heap figures or snapshots then.
    cli: { type: "boolean", default: false },
    // Environment of the operator process, e.g. MALLOC_ARENA_MAX=2 (repeatable).
    env: { type: "string", multiple: true, default: [] },
    // The operator writes Deno.memoryUsage() to usage.jsonl this often (ms; 0: only at phases).
    trace: { type: "string", default: "0" },
    // How often the driver samples the operator's VmRSS and VmHWM (ms).
    sample: { type: "string", default: "250" },
  },
});
Deno.env.set("KOPF_CLUSTER_DIR", args.plane!);
const { cluster } = await import("../tests/support/cluster.ts");

const N = Number(args.n);
const phases = args.phases!.split(",").filter(Boolean);
const out = args.out ??
  `${ROOT}bench/results/memory-${new Date().toISOString().replace(/[:.]/g, "-")}`;
await Deno.mkdir(out, { recursive: true });

const c = await cluster();
await c.applyCrd(`${ROOT}bench/kopf/crd.yaml`);
const ns = await c.namespace("mem");
const collection = `/apis/bench.kopf.dev/v1/namespaces/${ns}/benchobjects`;

// --- The driver's own watch: which objects are handled -------------------------------------
const created = new Set<string>();
const updated = new Set<string>();
const present = new Set<string>();
const httpClient = Deno.createHttpClient({ caCerts: [c.caPem] });
const watchAbort = new AbortController();
function see(
  type: string,
  object: { metadata: { name: string }; status?: Record<string, unknown> },
) {
  const name = object.metadata.name;
  if (type === "DELETED") {
    present.delete(name);
    return;
  }
  present.add(name);
  if (object.status?.create_fn) created.add(name);
  if (object.status?.["update_fn/spec.field"]) updated.add(name);
}
// A list, then a watch from it; again whenever the server closes the watch (it closes watchers
// that fall behind during the burst).
async function watch(): Promise<void> {
  const headers = { Authorization: `Bearer ${c.token}` };
  while (!watchAbort.signal.aborted) {
    let version = "";
    let token = "";
    const listed = new Set<string>();
    do {
      const page = await c.api(
        "GET",
        `${collection}?limit=500${token ? `&continue=${token}` : ""}`,
      );
      for (const item of page.items) {
        listed.add(item.metadata.name);
        see("ADDED", item);
      }
      token = page.metadata.continue ?? "";
      version = page.metadata.resourceVersion;
    } while (token);
    for (const name of [...present]) if (!listed.has(name)) present.delete(name);
    try {
      const response = await fetch(
        `${c.server}${collection}?watch=true&allowWatchBookmarks=true&resourceVersion=${version}`,
        { headers, client: httpClient, signal: watchAbort.signal },
      );
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (!line.trim()) continue;
          const { type, object } = JSON.parse(line);
          if (type === "ADDED" || type === "MODIFIED" || type === "DELETED") see(type, object);
        }
      }
    } catch (error) {
      if (!watchAbort.signal.aborted) console.error(`driver watch: ${error}; re-listing`);
    }
  }
}
const watching = watch();

// --- The operator process -------------------------------------------------------------------
const spec = {
  imports: [new URL(`file://${args.operator}`).href],
  labels: [args.operator],
  operator: { namespaces: [ns], kubeconfig: c.kubeconfig, standalone: true },
  logging: { format: "full", verbosity: "normal" },
};
const flags = args["v8-flags"] ? [`--v8-flags=${args["v8-flags"]}`] : [];
const log = await Deno.open(`${out}/operator.log`, { write: true, create: true, truncate: true });
const operator = new Deno.Command(Deno.execPath(), {
  args: args.cli
    ? [
      "run",
      "-A",
      `${ROOT}cli.ts`,
      "run",
      "--standalone",
      "-n",
      ns,
      "--kubeconfig",
      c.kubeconfig,
      ...(args["v8-flags"] === "--optimize-for-size"
        ? []
        : [`--deno-flag=--v8-flags=${args["v8-flags"]}`]),
      args.operator!,
    ]
    : ["run", "-A", ...flags, `${ROOT}bench/memory_operator.ts`, out, JSON.stringify(spec)],
  env: {
    MEMORY_TRACE_MS: args.trace!,
    ...Object.fromEntries(
      args.env!.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    ),
  },
  stdin: "null",
  stdout: "piped",
  stderr: "piped",
}).spawn();
const logging = Promise.all([
  operator.stdout.pipeTo(log.writable, { preventClose: true }),
  operator.stderr.pipeTo(
    (await Deno.open(`${out}/operator.log`, { write: true, append: true }))
      .writable,
  ),
]);
const pid = operator.pid;

function procStatus(): Record<string, number> {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const values: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^(Vm\w+|Rss\w+):\s+(\d+) kB/);
    if (match) values[match[1]] = Number(match[2]) * 1024;
  }
  return values;
}

let peak = 0;
// [ms since the epoch, VmRSS, VmHWM]: where VmHWM jumps past the sampled RSS, a spike shorter
// than the sampling period happened.
const series: [number, number, number][] = [];
const sampler = setInterval(() => {
  try {
    const status = procStatus();
    peak = Math.max(peak, status.VmRSS ?? 0);
    series.push([Date.now(), status.VmRSS ?? 0, status.VmHWM ?? 0]);
  } catch { /* exited */ }
}, Number(args.sample));

async function waitUntil(what: string, done: () => boolean, seconds = 1800): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function usageLine(): Promise<Record<string, unknown>> {
  const path = `${out}/usage.jsonl`;
  const before = await Deno.readTextFile(path).catch(() => "");
  Deno.kill(pid, "SIGWINCH");
  await waitUntil("a usage line", () => {
    try {
      return Deno.readTextFileSync(path).length > before.length;
    } catch {
      return false;
    }
  }, 30);
  return JSON.parse(Deno.readTextFileSync(path).trim().split("\n").at(-1)!);
}

const MiB = 1024 * 1024;
const report: Record<string, unknown>[] = [];
async function boundary(phase: string, started: number): Promise<void> {
  const status = procStatus();
  const usage: Record<string, unknown> = args.cli ? { smaps: {} } : await usageLine();
  const smaps = usage.smaps as Record<string, number>;
  const row = {
    phase,
    at: Date.now(),
    seconds: (Date.now() - started) / 1000,
    rssMiB: status.VmRSS / MiB,
    peakSampledMiB: peak / MiB,
    hwmMiB: status.VmHWM / MiB,
    heapUsedMiB: (usage.heapUsed as number) / MiB,
    heapTotalMiB: (usage.heapTotal as number) / MiB,
    externalMiB: (usage.external as number) / MiB,
    anonMiB: smaps.Anonymous / MiB,
    fileMiB: (smaps.Rss - smaps.Anonymous) / MiB,
  };
  report.push(row);
  console.log(
    `${phase.padEnd(12)} ${row.seconds.toFixed(1).padStart(7)} s  rss ${
      row.rssMiB.toFixed(1)
    }  hwm ${row.hwmMiB.toFixed(1)}  heapUsed ${row.heapUsedMiB.toFixed(1)}  heapTotal ${
      row.heapTotalMiB.toFixed(1)
    }  external ${row.externalMiB.toFixed(1)}  anon ${row.anonMiB.toFixed(1)}  file ${
      row.fileMiB.toFixed(1)
    } (MiB)`,
  );
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function snapshot(): Promise<void> {
  await Deno.remove(`${out}/snapshot.done`).catch(() => {});
  Deno.kill(pid, "SIGUSR2");
  await waitUntil("the heap snapshot", () => {
    try {
      Deno.statSync(`${out}/snapshot.done`);
      return true;
    } catch {
      return false;
    }
  }, 300);
  console.log(`heap snapshot: ${Deno.readTextFileSync(`${out}/snapshot.done`)}`);
}

const names = Array.from({ length: N }, (_, i) => `obj-${String(i).padStart(5, "0")}`);
const width = Number(args.concurrency);
try {
  // The operator is up once a warm-up object is handled; then it is deleted.
  let started = Date.now();
  await c.api("POST", collection, {
    apiVersion: "bench.kopf.dev/v1",
    kind: "BenchObject",
    metadata: { name: "warm-up" },
    spec: { field: "v1" },
  });
  await waitUntil("the warm-up object", () => created.has("warm-up"), 120);
  await c.api("DELETE", `${collection}/warm-up`);
  await waitUntil("the warm-up's deletion", () => !present.has("warm-up"), 120);
  await new Promise((r) => setTimeout(r, 3000));
  await boundary("started", started);

  for (const phase of phases) {
    started = Date.now();
    if (phase === "create") {
      await pool(names, width, async (name) => {
        await c.api("POST", collection, {
          apiVersion: "bench.kopf.dev/v1",
          kind: "BenchObject",
          metadata: { name },
          spec: { field: "v1" },
        });
      });
      if (args["snapshot-mid"]) {
        await boundary("posted", started);
        await snapshot();
      }
      await waitUntil("all created", () => names.every((n) => created.has(n)));
    } else if (phase === "update") {
      await pool(names, width, async (name) => {
        await c.api("PATCH", `${collection}/${name}`, { spec: { field: "v2" } }, {
          contentType: "application/merge-patch+json",
        });
      });
      await waitUntil("all updated", () => names.every((n) => updated.has(n)));
    } else if (phase === "delete") {
      await pool(names, width, async (name) => {
        await c.api("DELETE", `${collection}/${name}`);
      });
      await waitUntil("all deleted", () => names.every((n) => !present.has(n)));
    } else {
      throw new Error(`unknown phase ${phase}`);
    }
    await boundary(phase, started);
  }
  started = Date.now();
  await new Promise((r) => setTimeout(r, Number(args.idle) * 1000));
  await boundary("idle", started);
  if (args.trim) {
    Deno.kill(pid, "SIGHUP");
    await new Promise((r) => setTimeout(r, 2000));
    await boundary("trimmed", started);
  }
  if (args.snapshot) await snapshot();
} finally {
  clearInterval(sampler);
  console.error("stopping the operator");
  const before = peak;
  let hwm = 0;
  try {
    hwm = procStatus().VmHWM ?? 0;
    operator.kill("SIGTERM");
  } catch { /* gone */ }
  // The graceful stop is part of the process's life: its peak counts too (as in bench/kopf).
  const stopping = setInterval(() => {
    try {
      const status = procStatus();
      peak = Math.max(peak, status.VmRSS ?? 0);
      hwm = Math.max(hwm, status.VmHWM ?? 0);
    } catch { /* exited */ }
  }, 20);
  await operator.status;
  clearInterval(stopping);
  console.log(
    `stopping: VmHWM ${(hwm / MiB).toFixed(1)} MiB, sampled RSS ${(peak / MiB).toFixed(1)} ` +
      `(before the stop ${(before / MiB).toFixed(1)})`,
  );
  console.error("stopped; closing the log and the driver's watch");
  const settle = (what: Promise<unknown>) =>
    Promise.race([what.catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  await settle(logging);
  watchAbort.abort();
  await settle(watching);
  console.error("deleting the namespace");
  await c.api("DELETE", `/api/v1/namespaces/${ns}`).catch(() => {});
  await Deno.writeTextFile(
    `${out}/memory.json`,
    JSON.stringify({ n: N, flags: args["v8-flags"], env: args.env, phases, report, series }),
  );
  console.log(`results in ${out}`);
}
if (!args["keep-plane"]) {
  await new Deno.Command("bash", {
    args: [`${ROOT}tests/cluster/cluster.sh`, "down"],
    stdout: "null",
    stderr: "null",
  }).output();
}
Deno.exit(0);
