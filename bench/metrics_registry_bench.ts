/**
 * What a metrics registry costs: `prom-client` (npm, under Deno's Node compatibility) against the
 * small registry of `src/metrics/registry.ts` — at import (time and RSS in a fresh process), per
 * update (a labelled counter, a histogram observation) and per scrape of a realistic set.
 *
 *     deno run -A --no-lock bench/metrics_registry_bench.ts [--rounds 5] [--updates 2000000]
 *
 * `--no-lock`: prom-client is fetched for this benchmark only and stays out of deno.lock. Fresh
 * processes are alternated (prom-client, ours, prom-client, …) since the machine is shared; the
 * report gives every round, the median and the spread.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    updates: { type: "string", default: "2000000" },
    mode: { type: "string" },
  },
});
const ROUNDS = Number(values.rounds);
const UPDATES = Number(values.updates);
const PROM = "npm:prom-client@15.1.3";
const OURS = new URL("../src/metrics/registry.ts", import.meta.url).href;

const CONTROLLERS = ["kopfexamples.kopf.dev", "pods", "configmaps", "deployments.apps"];
const HANDLERS = ["create_fn", "update_fn", "delete_fn", "resume_fn", "timer_fn", "daemon_fn"];
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface Result {
  importMs: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapAfterMiB: number;
  counterNs: number;
  counterCachedNs: number;
  histogramNs: number;
  histogramCachedNs: number;
  exposeUs: number;
  exposeBytes: number;
}

const mib = (bytes: number) => bytes / 1024 / 1024;

/** One fresh process: import one registry, declare a realistic set, update it, expose it. */
async function measure(which: "prom" | "ours"): Promise<Result> {
  // One warm GC'd baseline: what the process holds before the import.
  const rssBefore = Deno.memoryUsage().rss;
  const t0 = performance.now();
  // deno-lint-ignore no-explicit-any
  const mod: any = await import(which === "prom" ? PROM : OURS);
  const importMs = performance.now() - t0;

  let incLabelled: (i: number) => void;
  let incCached: (i: number) => void;
  let observeLabelled: (i: number) => void;
  let observeCached: (i: number) => void;
  let expose: () => string | Promise<string>;
  if (which === "prom") {
    const registry = new mod.Registry();
    const counter = new mod.Counter({
      name: "rest_client_requests_total",
      help: "Requests.",
      labelNames: ["code", "method", "host"],
      registers: [registry],
    });
    const histogram = new mod.Histogram({
      name: "kopf_handler_duration_seconds",
      help: "Durations.",
      labelNames: ["handler"],
      buckets: BUCKETS,
      registers: [registry],
    });
    for (let c = 0; c < 40; c++) {
      new mod.Gauge({
        name: `filler_${c}`,
        help: "A gauge.",
        labelNames: ["controller"],
        registers: [registry],
      }).labels(CONTROLLERS[c % 4]).set(c);
    }
    const cachedCounter = counter.labels("200", "PATCH", "127.0.0.1:6443");
    const cachedHistogram = histogram.labels("create_fn");
    incLabelled = (i) => counter.inc({ code: "200", method: "GET", host: CONTROLLERS[i & 3] });
    incCached = () => cachedCounter.inc();
    observeLabelled = (i) => histogram.observe({ handler: HANDLERS[i % 6] }, (i & 1023) / 100);
    observeCached = (i) => cachedHistogram.observe((i & 1023) / 100);
    expose = () => registry.metrics();
  } else {
    const registry = new mod.Registry();
    const counter = registry.counter({
      name: "rest_client_requests_total",
      help: "Requests.",
      labelNames: ["code", "method", "host"],
    });
    const histogram = registry.histogram({
      name: "kopf_handler_duration_seconds",
      help: "Durations.",
      labelNames: ["handler"],
      buckets: BUCKETS,
    });
    for (let c = 0; c < 40; c++) {
      registry.gauge({ name: `filler_${c}`, help: "A gauge.", labelNames: ["controller"] })
        .labels(CONTROLLERS[c % 4]).set(c);
    }
    const cachedCounter = counter.labels("200", "PATCH", "127.0.0.1:6443");
    const cachedHistogram = histogram.labels("create_fn");
    incLabelled = (i) => counter.labels("200", "GET", CONTROLLERS[i & 3]).inc();
    incCached = () => cachedCounter.inc();
    observeLabelled = (i) => histogram.labels(HANDLERS[i % 6]).observe((i & 1023) / 100);
    observeCached = (i) => cachedHistogram.observe((i & 1023) / 100);
    expose = () => registry.expose();
  }
  const declared = Deno.memoryUsage();
  const perOp = (fn: (i: number) => void): number => {
    for (let i = 0; i < 100_000; i++) fn(i); // warm-up: compiled before it is timed
    const start = performance.now();
    for (let i = 0; i < UPDATES; i++) fn(i);
    return (performance.now() - start) * 1e6 / UPDATES;
  };
  const counterNs = perOp(incLabelled);
  const counterCachedNs = perOp(incCached);
  const histogramNs = perOp(observeLabelled);
  const histogramCachedNs = perOp(observeCached);
  let text = "";
  for (let i = 0; i < 20; i++) text = await expose();
  const e0 = performance.now();
  for (let i = 0; i < 200; i++) text = await expose();
  const exposeUs = (performance.now() - e0) * 1000 / 200;
  return {
    importMs,
    rssBeforeMiB: mib(rssBefore),
    rssAfterMiB: mib(declared.rss),
    heapAfterMiB: mib(declared.heapUsed),
    counterNs,
    counterCachedNs,
    histogramNs,
    histogramCachedNs,
    exposeUs,
    exposeBytes: new TextEncoder().encode(text).length,
  };
}

if (values.mode === "prom" || values.mode === "ours") {
  console.log(JSON.stringify(await measure(values.mode)));
  Deno.exit(0);
}

/** Import cost alone, in a fresh process: RSS before and right after the import. */
async function run(which: "prom" | "ours"): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-lock",
      new URL(import.meta.url).pathname,
      "--mode",
      which,
      "--updates",
      String(UPDATES),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${which} round failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

// Fetch prom-client once, outside the timed rounds.
await new Deno.Command(Deno.execPath(), {
  args: ["cache", "--no-lock", PROM],
  stdout: "null",
  stderr: "inherit",
}).output();

const results: Record<"prom" | "ours", Result[]> = { prom: [], ours: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const which of round % 2 ? ["ours", "prom"] as const : ["prom", "ours"] as const) {
    results[which].push(await run(which));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const rows: [string, (r: Result) => number][] = [
  ["import, ms", (r) => r.importMs],
  ["RSS added by the import and ~60 series, MiB", (r) => r.rssAfterMiB - r.rssBeforeMiB],
  ["heap used then, MiB", (r) => r.heapAfterMiB],
  ["counter inc, labels given, ns", (r) => r.counterNs],
  ["counter inc, child kept, ns", (r) => r.counterCachedNs],
  ["histogram observe, labels given, ns", (r) => r.histogramNs],
  ["histogram observe, child kept, ns", (r) => r.histogramCachedNs],
  ["scrape of ~60 series, µs", (r) => r.exposeUs],
];
console.log(`| ${ROUNDS} fresh processes each | prom-client 15.1.3 | src/metrics/registry.ts |`);
console.log("| --- | ---: | ---: |");
for (const [label, get] of rows) {
  const p = results.prom.map(get);
  const o = results.ours.map(get);
  console.log(
    `| ${label} | ${median(p).toFixed(2)} (${spread(p)}) | ${median(o).toFixed(2)} (${
      spread(o)
    }) |`,
  );
}
