/**
 * Where the operator's CPU goes: the benchmark's operator (`bench/kopf/operators/ours_single.ts`)
 * runs under `kopf run` with V8's sampling profiler on, through a burst of N objects created,
 * updated and deleted; then the profile is summarised by cost centre (self time of functions,
 * grouped by the file they live in and by what they do) — a table, not the profile.
 *
 *     deno run -A bench/profile_operator.ts [--n 1000] [--top 25] [--keep DIR]
 *       [--v8-flags FLAGS] [--no-profile] [--allocations] [--idle SECONDS]
 *
 * `--v8-flags` replaces the operator's default V8 flags (`--optimize-for-size`), and
 * `--no-profile` leaves the profiler off: together, an A/B of V8 flags by the operator's CPU
 * seconds and peak RSS over the burst (read from /proc at its end).
 *
 * `--allocations` profiles memory instead of time: V8's sampling heap profiler, reached through
 * the operator's inspector, counts every allocation made during the burst (also of objects the
 * garbage collector has freed since), so the table says which functions feed the collector.
 *
 * `--idle SECONDS` watches the operator go quiet after the burst: its CPU per thread (main, the
 * stream reader's worker, V8's garbage-collector helpers) and its RSS, every 10 s for SECONDS —
 * what the benchmark's "idle: operator CPU" row is made of.
 *
 * Uses the tests' plane (`tests/cluster/cluster.sh up`; `KOPF_CLUSTER_DIR` picks another). The
 * raw `.cpuprofile` is written to a temporary folder, removed afterwards unless `--keep DIR`
 * (open it in Chrome DevTools or speedscope). V8's profiler does not see the garbage collector's
 * background threads nor Deno's Rust side (HTTP, TLS): `(garbage collector)` and `(program)` are
 * only their main-thread share.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { cluster } from "../tests/support/cluster.ts";
import { OperatorProcess } from "../tests/support/operator_process.ts";
import { CLOCK_TICKS, parseStat, parseStatusKb, sampleTree } from "./kopf/proc_stats.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "1000" },
    top: { type: "string", default: "25" },
    keep: { type: "string" },
    "v8-flags": { type: "string" },
    "no-profile": { type: "boolean", default: false },
    allocations: { type: "boolean", default: false },
    idle: { type: "string", default: "0" },
  },
});
const ALLOCATIONS = values.allocations;
const PROFILE = !values["no-profile"] && !ALLOCATIONS;
const N = Number(values.n);
const TOP = Number(values.top);
const IDLE = Number(values.idle);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** What a function's self time is spent on, by where it lives. */
function category(name: string, url: string): string {
  if (name === "(garbage collector)") return "garbage collection";
  if (name === "(program)" || name === "(idle)" || name === "(root)") return name;
  if (/logtape|\/actions\/loggers|\/kube\/events|posting/.test(url)) return "logging and Events";
  if (/_transport|\/kube\/client|ext:deno_fetch|ext:deno_web\/06_streams|ext:deno_http/.test(url)) {
    return "HTTP client";
  }
  if (/\/kube\/watch|watch_lines/.test(url)) return "watch decoding";
  if (name === "parse" || name === "stringify" || /JSON/.test(name)) return "JSON";
  if (/\/cache\//.test(url)) return "informer cache";
  if (/\/queue\//.test(url)) return "queue";
  if (/\/storage\/|\/handling\/|\/actions\/|\/registry\//.test(url)) return "engine bookkeeping";
  if (/^ext:/.test(url) || url === "") return `runtime (${url.split("/")[0] || "builtin"})`;
  return "other";
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** Where a sampled heap profile's allocations come from: by cost centre and by function. */
function summariseAllocations(root: HeapNode): void {
  const byFunction = new Map<string, number>();
  const byCategory = new Map<string, number>();
  let total = 0;
  const visit = (node: HeapNode, caller: string) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(`file://${ROOT}`, "").replace(/^.*node_modules\//, "npm:");
    const key = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
    if (node.selfSize > 0) {
      total += node.selfSize;
      // Builtins allocate on behalf of their caller: name both.
      const shown = /^ext:|^$/.test(url) ? `${key} ← ${caller}` : key;
      byFunction.set(shown, (byFunction.get(shown) ?? 0) + node.selfSize);
      const cat = /^ext:|^$/.test(url) ? category("", caller.split(" ")[1] ?? "") : category(
        functionName,
        url,
      );
      byCategory.set(cat, (byCategory.get(cat) ?? 0) + node.selfSize);
    }
    const next = /^ext:|^$/.test(url) ? caller : key;
    for (const child of node.children) visit(child, next);
  };
  visit(root, "(root) :0");
  const pct = (bytes: number) => `${(100 * bytes / total).toFixed(1)} %`;
  console.log(`\nallocated during the burst (sampled): ${(total / 2 ** 20).toFixed(0)} MiB\n`);
  console.log("| what | share of bytes allocated |\n| --- | ---: |");
  for (const [cat, bytes] of [...byCategory].sort((a, b) => b[1] - a[1])) {
    console.log(`| ${cat} | ${pct(bytes)} |`);
  }
  console.log(`\n| top ${TOP} allocating functions | share |\n| --- | ---: |`);
  for (const [key, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`| \`${key}\` | ${pct(bytes)} |`);
  }
}

/** A minimal Chrome DevTools protocol session with the operator's inspector. */
// deno-lint-ignore no-explicit-any
async function inspector(port: number): Promise<(method: string, params?: object) => Promise<any>> {
  let targets: { webSocketDebuggerUrl: string }[] = [];
  for (let i = 0; i < 100 && !targets.length; i++) {
    try {
      targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  if (!targets.length) throw new Error(`no inspector on port ${port}`);
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  const pending = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? message.error);
  };
  let id = 0;
  return (method, params = {}) =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
}

function summarise(profile: Profile): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, number>();
  const byCategory = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === "(idle)") continue;
    total += us;
    const where = url.replace(`file://${ROOT}`, "").replace(/^.*node_modules\//, "npm:");
    const key = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const cat = category(functionName, url);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us);
  }
  const pct = (us: number) => `${(100 * us / total).toFixed(1)} %`;
  console.log(`\nbusy (non-idle) samples: ${(total / 1e6).toFixed(2)} s\n`);
  console.log("| what | share of busy time |\n| --- | ---: |");
  for (const [cat, us] of [...byCategory].sort((a, b) => b[1] - a[1])) {
    console.log(`| ${cat} | ${pct(us)} |`);
  }
  console.log(`\n| top ${TOP} functions (self time) | share |\n| --- | ---: |`);
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`| \`${key}\` | ${pct(us)} |`);
  }
}

/**
 * CPU seconds of each live thread of `pid` so far, summed by thread name. A thread that ends
 * between two samples drops out, and so does what it spent since the first of them.
 */
async function threadCpu(pid: number): Promise<Map<string, number>> {
  const byName = new Map<string, number>();
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/stat`);
    } catch {
      continue; // the thread ended
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const { utime, stime } = parseStat(stat);
    byName.set(name, (byName.get(name) ?? 0) + (utime + stime) / CLOCK_TICKS);
  }
  return byName;
}

/** Prints the CPU each thread of `pid` spent, and its RSS, every 10 s for `seconds`. */
async function watchIdle(pid: number, seconds: number): Promise<void> {
  console.log(
    `\n| quiet for (s) | CPU (s) | by thread | RSS (MiB) |\n| ---: | ---: | --- | ---: |`,
  );
  let before = await threadCpu(pid);
  for (let at = 10; at <= seconds; at += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const now = await threadCpu(pid);
    const spent = [...now].map(([name, cpu]) => [name, cpu - (before.get(name) ?? 0)] as const)
      .filter(([, cpu]) => cpu > 0).sort((a, b) => b[1] - a[1]);
    const total = spent.reduce((sum, [, cpu]) => sum + cpu, 0);
    const rss = parseStatusKb(await Deno.readTextFile(`/proc/${pid}/status`), "VmRSS");
    const threads = spent.map(([name, cpu]) => `${name} ${cpu.toFixed(2)}`).join(", ") || "—";
    console.log(`| ${at} | ${total.toFixed(2)} | ${threads} | ${(rss / 2 ** 20).toFixed(0)} |`);
    before = now;
  }
}

const c = await cluster();
await c.applyCrd(`${ROOT}bench/kopf/crd.yaml`);
const ns = await c.namespace("profile");
const dir = values.keep ?? await Deno.makeTempDir({ prefix: "kopf-profile-" });
await Deno.mkdir(dir, { recursive: true });
const path = `/apis/bench.kopf.dev/v1/namespaces/${ns}/benchobjects`;
const INSPECTOR_PORT = 9239;
const operator = OperatorProcess.start({
  command: Deno.execPath(),
  args: [
    "run",
    "-A",
    `${ROOT}cli.ts`,
    "run",
    "--no-check",
    "--standalone",
    "-n",
    ns,
    ...(PROFILE ? ["--deno-flag=--cpu-prof", `--deno-flag=--cpu-prof-dir=${dir}`] : []),
    ...(values["v8-flags"] ? [`--deno-flag=--v8-flags=${values["v8-flags"]}`] : []),
    ...(ALLOCATIONS ? [`--deno-flag=--inspect=127.0.0.1:${INSPECTOR_PORT}`] : []),
    `${ROOT}bench/kopf/operators/ours_single.ts`,
  ],
  cwd: ROOT,
  env: { KUBECONFIG: c.kubeconfig },
});

async function inBatches(count: number, each: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += 32) {
    await Promise.all(Array.from({ length: Math.min(32, count - i) }, (_, j) => each(i + j)));
  }
}

async function until(done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 600_000;
  while (!await done()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

try {
  await new Promise((resolve) => setTimeout(resolve, 3000)); // started and listed
  const session = ALLOCATIONS ? await inspector(INSPECTOR_PORT) : undefined;
  await session?.("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const t0 = Date.now();
  await inBatches(N, (i) =>
    c.api("POST", path, {
      apiVersion: "bench.kopf.dev/v1",
      kind: "BenchObject",
      metadata: { name: `o-${i}` },
      spec: { field: "a" },
    }));
  await until(async () =>
    (await c.api("GET", path)).items.filter((o: { status?: { create_fn?: unknown } }) =>
      o.status?.create_fn
    ).length === N
  );
  await inBatches(N, (i) =>
    c.api("PATCH", `${path}/o-${i}`, { spec: { field: "b" } }, {
      contentType: "application/merge-patch+json",
    }));
  await until(async () =>
    (await c.api("GET", path)).items.filter((o: { status?: Record<string, unknown> }) =>
      o.status?.["update_fn/spec.field"]
    ).length === N
  );
  await inBatches(N, (i) => c.api("DELETE", `${path}/o-${i}`));
  await until(async () => (await c.api("GET", path)).items.length === 0);
  console.log(`${N} objects created, updated, deleted in ${(Date.now() - t0) / 1000} s`);
  if (session) {
    const { profile } = await session("HeapProfiler.stopSampling");
    if (values.keep) await Deno.writeTextFile(`${dir}/burst.heapprofile`, JSON.stringify(profile));
    summariseAllocations(profile.head);
  }
  const sample = await sampleTree(operator.pid);
  if (sample) {
    console.log(
      `operator (V8 flags: ${values["v8-flags"] ?? "the default"}): ` +
        `${sample.cpuSeconds.toFixed(2)} s CPU since its start, peak RSS ` +
        `${(sample.hwmBytes / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  // `kopf run` became the operator (execve): its pid is the operator's.
  if (IDLE > 0) await watchIdle(operator.pid, IDLE);
} finally {
  await operator.stop();
  await c.deleteNamespace(ns);
}
if (!PROFILE) Deno.exit(0);
const files = [...Deno.readDirSync(dir)].filter((f) => f.name.endsWith(".cpuprofile"));
// The launcher's profile is small; the operator's is the largest.
const sizes = files.map((f) => ({ f, size: Deno.statSync(`${dir}/${f.name}`).size }));
const largest = sizes.sort((a, b) => b.size - a.size)[0];
if (!largest) throw new Error(`no profile in ${dir}`);
summarise(JSON.parse(await Deno.readTextFile(`${dir}/${largest.f.name}`)));
if (!values.keep) await Deno.remove(dir, { recursive: true });
else console.log(`\nprofiles kept in ${dir}`);
