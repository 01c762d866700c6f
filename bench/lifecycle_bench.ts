/**
 * Daemons and timers benchmark against the real local API server (not a test: it asserts
 * nothing, it prints markdown tables).
 *
 *     deno run -A --v8-flags=--expose-gc bench/lifecycle_bench.ts [--objects 1000] [--latency 20] [--ticks 15]
 *
 * 1. Daemon stop latency: objects with a daemon that honours its signal are deleted one by one;
 *    from the DELETE request to the daemon's stop, and to the object being gone — without a
 *    finalizer (the default) and with one (`cancellationBackoff` asks for cleanup time).
 * 2. Timer tick accuracy: timers with `interval: 1` (plain and `sharp`) on a few objects for a
 *    while; the gaps between calls (plain: measured from the end of the previous call) and, for
 *    sharp timers, the offset of each call from its grid.
 * 3. Scale: N objects with a daemon each (the daemon sleeps on `stopped.wait()`): time until all
 *    daemons run, heap and RSS per object, CPU while idle, API writes while idle, and the time to
 *    stop them all at operator exit.
 *
 * The operator runs in this process (`kopf.run`), so memory is measured as the growth over a
 * baseline taken before it starts.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import * as kopf from "../mod.ts";
import { cluster, type TestCluster } from "../tests/support/cluster.ts";
import { testResource } from "../tests/support/engine.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    objects: { type: "string", default: "1000" },
    latency: { type: "string", default: "20" },
    ticks: { type: "string", default: "15" },
  },
});
const OBJECTS = Number(values.objects);
const LATENCY_OBJECTS = Number(values.latency);
const TICK_SECONDS = Number(values.ticks);

const c = await cluster();
const res = await testResource(c, "benchlifecycles");

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function stats(samples: number[]): { p50: number; p95: number; max: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / (samples.length || 1);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted.at(-1)!, mean };
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function run(
  registry: kopf.Registry,
  namespace: string,
  settings = new kopf.Settings(),
): Promise<{ stop(): Promise<number> }> {
  const controller = new AbortController();
  const ready = Promise.withResolvers<void>();
  const done = kopf.run({
    registry,
    settings,
    namespaces: [namespace],
    kubeconfig: c.kubeconfig,
    signal: controller.signal,
    ready: () => ready.resolve(),
  });
  await Promise.race([ready.promise, done]);
  return {
    stop: async () => {
      const t0 = performance.now();
      controller.abort();
      await done;
      return performance.now() - t0;
    },
  };
}

async function create(ns: string, name: string): Promise<void> {
  await c.api("POST", res.path(ns), {
    apiVersion: res.apiVersion,
    kind: res.kind,
    metadata: { name },
    spec: {},
  });
}

async function createMany(ns: string, names: string[], concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < names.length) await create(ns, names[next++]);
  }));
}

async function gone(ns: string, name: string): Promise<boolean> {
  try {
    await c.api("GET", res.path(ns, name));
    return false;
  } catch (error) {
    if ((error as { status?: number }).status === 404) return true;
    throw error;
  }
}

// --- 1. Daemon stop latency ---------------------------------------------------------------------

async function stopLatency(withFinalizer: boolean) {
  const ns = await c.namespace("bench-stop");
  const registry = new kopf.Registry();
  const started = new Set<string>();
  const stoppedAt = new Map<string, number>();
  const options = withFinalizer ? { id: "d", cancellationBackoff: 5 } : { id: "d" };
  registry.daemon(res.plural, options, async ({ name, stopped }) => {
    started.add(name);
    await stopped.wait();
    stoppedAt.set(name, performance.now());
  });
  const operator = await run(registry, ns);
  const toStop: number[] = [];
  const toGone: number[] = [];
  try {
    const names = Array.from({ length: LATENCY_OBJECTS }, (_, i) => `o${i}`);
    await createMany(ns, names);
    await waitUntil(() => started.size === names.length, 60_000, "daemons to start");
    if (withFinalizer) {
      await waitUntil(
        async () => {
          const list = await c.api("GET", res.path(ns));
          return list.items.every((o: { metadata: { finalizers?: string[] } }) =>
            o.metadata.finalizers?.length
          );
        },
        60_000,
        "finalizers",
      );
    }
    for (const name of names) {
      const t0 = performance.now();
      await c.api("DELETE", res.path(ns, name));
      await waitUntil(() => stoppedAt.has(name), 30_000, `${name}'s daemon to stop`);
      toStop.push(stoppedAt.get(name)! - t0);
      await waitUntil(() => gone(ns, name), 30_000, `${name} to be gone`);
      toGone.push(performance.now() - t0);
    }
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
  return { toStop: stats(toStop), toGone: stats(toGone) };
}

// --- 2. Timer tick accuracy ---------------------------------------------------------------------

async function tickAccuracy() {
  const ns = await c.namespace("bench-ticks");
  const registry = new kopf.Registry();
  const plain = new Map<string, number[]>();
  const sharp = new Map<string, number[]>();
  const record = (into: Map<string, number[]>, name: string) => {
    const list = into.get(name) ?? [];
    list.push(performance.now());
    into.set(name, list);
  };
  // Each call takes 50 ms: a plain timer's period is 1 s + the call; a sharp one's is 1 s.
  registry.timer(res.plural, { id: "plain", interval: 1 }, async ({ name }) => {
    record(plain, name);
    await new Promise((resolve) => setTimeout(resolve, 50));
  });
  registry.timer(res.plural, { id: "sharp", interval: 1, sharp: true }, async ({ name }) => {
    record(sharp, name);
    await new Promise((resolve) => setTimeout(resolve, 50));
  });
  const operator = await run(registry, ns);
  try {
    await createMany(ns, ["t0", "t1", "t2", "t3", "t4"]);
    await new Promise((resolve) => setTimeout(resolve, TICK_SECONDS * 1000));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
  // Plain: the gap after the end of a call (start-to-start minus the 50 ms call) vs 1000 ms.
  const plainErrors: number[] = [];
  for (const ticks of plain.values()) {
    for (let i = 1; i < ticks.length; i++) plainErrors.push(ticks[i] - ticks[i - 1] - 50 - 1000);
  }
  // Sharp: the offset of each call from its 1 s grid, anchored at the first call.
  const sharpErrors: number[] = [];
  for (const ticks of sharp.values()) {
    for (let i = 1; i < ticks.length; i++) sharpErrors.push(ticks[i] - ticks[0] - i * 1000);
  }
  const ticksPlain = [...plain.values()].reduce((a, t) => a + t.length, 0);
  const ticksSharp = [...sharp.values()].reduce((a, t) => a + t.length, 0);
  return {
    plain: { ticks: ticksPlain, ...stats(plainErrors) },
    sharp: { ticks: ticksSharp, ...stats(sharpErrors) },
  };
}

// --- 3. Scale: N daemons ------------------------------------------------------------------------

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function scale() {
  const ns = await c.namespace("bench-scale");
  const names = Array.from({ length: OBJECTS }, (_, i) => `s${i}`);
  const tCreate = performance.now();
  await createMany(ns, names, 16);
  const createSeconds = (performance.now() - tCreate) / 1000;

  const registry = new kopf.Registry();
  let running = 0;
  registry.daemon(res.plural, { id: "sleeper" }, async ({ stopped }) => {
    running += 1;
    await stopped.wait();
    running -= 1;
  });
  gc();
  const base = Deno.memoryUsage();
  const t0 = performance.now();
  const operator = await run(registry, ns);
  const readySeconds = (performance.now() - t0) / 1000;
  await waitUntil(() => running === OBJECTS, 300_000, "all daemons to run");
  const allRunningSeconds = (performance.now() - t0) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  gc();
  const loaded = Deno.memoryUsage();

  // Idle: CPU and API writes over a window with nothing changing.
  const m0 = await c.metrics();
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - w0;
  const counts = (await c.metrics()).since(m0);
  const idleWrites = counts.count({ verb: "PATCH", resource: res.plural }) +
    counts.count({ verb: "PUT", resource: res.plural });

  const stopMs = await operator.stop();
  await c.deleteNamespace(ns);
  return {
    createSeconds,
    readySeconds,
    allRunningSeconds,
    heapPerObjectKiB: (loaded.heapUsed - base.heapUsed) / OBJECTS / 1024,
    rssPerObjectKiB: (loaded.rss - base.rss) / OBJECTS / 1024,
    heapMiB: loaded.heapUsed / 2 ** 20,
    rssMiB: loaded.rss / 2 ** 20,
    idleCpuPercent: ((cpu.user + cpu.system) / 1000 / wall) * 100,
    idleWrites,
    stopMs,
  };
}

// --- Report -------------------------------------------------------------------------------------

function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

async function main(cluster: TestCluster): Promise<void> {
  console.log(`# Daemons and timers against ${cluster.server}\n`);
  const without = await stopLatency(false);
  const withFin = await stopLatency(true);
  console.log(`## Daemon stop latency (${LATENCY_OBJECTS} objects, deleted one by one)\n`);
  console.log(
    table([
      "case",
      "DELETE → daemon stopped p50 / p95 / max",
      "DELETE → object gone p50 / p95 / max",
    ], [
      [
        "no finalizer (default)",
        `${ms(without.toStop.p50)} / ${ms(without.toStop.p95)} / ${ms(without.toStop.max)}`,
        `${ms(without.toGone.p50)} / ${ms(without.toGone.p95)} / ${ms(without.toGone.max)}`,
      ],
      [
        "finalizer (cancellationBackoff: 5)",
        `${ms(withFin.toStop.p50)} / ${ms(withFin.toStop.p95)} / ${ms(withFin.toStop.max)}`,
        `${ms(withFin.toGone.p50)} / ${ms(withFin.toGone.p95)} / ${ms(withFin.toGone.max)}`,
      ],
    ]),
  );

  const ticks = await tickAccuracy();
  console.log(
    `\n## Timer tick accuracy (interval 1 s, 5 objects, ${TICK_SECONDS} s, 50 ms calls)\n`,
  );
  console.log(table(["timer", "ticks", "error mean", "p50", "p95", "max"], [
    [
      "plain (gap after the call)",
      ticks.plain.ticks,
      ms(ticks.plain.mean),
      ms(ticks.plain.p50),
      ms(ticks.plain.p95),
      ms(ticks.plain.max),
    ],
    [
      "sharp (offset from the grid)",
      ticks.sharp.ticks,
      ms(ticks.sharp.mean),
      ms(ticks.sharp.p50),
      ms(ticks.sharp.p95),
      ms(ticks.sharp.max),
    ],
  ]));

  const s = await scale();
  console.log(`\n## ${OBJECTS} objects with a daemon each\n`);
  console.log(table(["measure", "value"], [
    ["objects created (16 concurrent POSTs)", `${s.createSeconds.toFixed(1)} s`],
    ["operator ready (listed and watched)", `${s.readySeconds.toFixed(2)} s`],
    ["all daemons running", `${s.allRunningSeconds.toFixed(2)} s`],
    ["heap growth per object", `${s.heapPerObjectKiB.toFixed(1)} KiB`],
    ["RSS growth per object", `${s.rssPerObjectKiB.toFixed(1)} KiB`],
    [
      "process heap / RSS with all running",
      `${s.heapMiB.toFixed(0)} MiB / ${s.rssMiB.toFixed(0)} MiB`,
    ],
    ["CPU while idle (10 s)", `${s.idleCpuPercent.toFixed(2)} % of one core`],
    ["API writes while idle (10 s)", s.idleWrites],
    ["operator stop (all daemons stopped)", ms(s.stopMs)],
  ]));
}

await main(c);
await c.cleanup();
Deno.exit(0);
