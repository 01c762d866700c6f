/**
 * What metrics cost an operator per object, measured in two parts that a shared machine cannot
 * blur (whole-process CPU of two runs differs by more than 10 % from run to run here):
 *
 * 1. How often each observation point fires per object: an operator with metrics on handles N
 *    objects (create, update, delete, with the handlers of bench/kopf/operators/ours_single.ts)
 *    on the local plane, and its own exposition says how many requests, cycles, queue runs and
 *    handler attempts there were.
 * 2. What each observation costs: the same hooks called in a loop (the client's request observer,
 *    a handling cycle, the queue's timings, a handler attempt through `execute()` with and without
 *    the metrics listening), and one scrape of the operator's real exposition.
 *
 * Their product is the CPU metrics add per object; compare it with the operator's CPU per object
 * from `deno task bench:kopf` (`ours` vs `ours-metrics`).
 *
 *     KUBECONFIG=… deno run -A bench/metrics_hooks_bench.ts [--n 300] [--calls 200000]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { getLogger } from "@logtape/logtape";
import * as kopf from "../mod.ts";
import { execute, freshProgress } from "../src/actions/execution.ts";
import type { OperatorHandle } from "../src/handling/contracts.ts";
import { KubeClient } from "../src/kube/client.ts";
import { OperatorMetrics } from "../src/metrics/collectors.ts";
import type { RequestObserver } from "../src/kube/client.ts";

const { values } = parseArgs({
  options: { n: { type: "string", default: "300" }, calls: { type: "string", default: "200000" } },
});
const N = Number(values.n);
const CALLS = Number(values.calls);

/** Nanoseconds per call of `fn`, the best of 5 rounds (the least disturbed by other work). */
async function nsPerCall(fn: (i: number) => unknown | Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) await fn(i);
    best = Math.min(best, ((performance.now() - t0) * 1e6) / CALLS);
  }
  return best;
}

// ---- Part 1: counts per object, from a real operator's exposition. ----
const kubeconfig = Deno.env.get("KUBECONFIG");
if (!kubeconfig) throw new Error("KUBECONFIG must point to a plane (tests/cluster/cluster.sh up)");
const client = await KubeClient.connect({ kubeconfig });
const crd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "metricsbenches.bench.kopf.dev" },
  spec: {
    group: "bench.kopf.dev",
    scope: "Namespaced",
    names: { kind: "MetricsBench", plural: "metricsbenches", singular: "metricsbench" },
    versions: [{
      name: "v1",
      served: true,
      storage: true,
      subresources: { status: {} },
      schema: {
        openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
      },
    }],
  },
};
await client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
  body: crd,
}).catch((e: unknown) => {
  if ((e as { status?: number }).status !== 409) throw e;
});
await new Promise((r) => setTimeout(r, 2000)); // served
const ns = `metrics-bench-${Math.random().toString(36).slice(2, 8)}`;
await client.request("POST", "/api/v1/namespaces", { body: { metadata: { name: ns } } });
const registry = new kopf.Registry();
registry.on.create("bench.kopf.dev", "v1", "metricsbenches", ({ spec }) => ({ field: spec.field }));
registry.on.update(
  "bench.kopf.dev",
  "v1",
  "metricsbenches",
  { field: "spec.field" },
  ({ new: v }) => ({
    field: v,
  }),
);
registry.on.delete("bench.kopf.dev", "v1", "metricsbenches", () => {});
const port = (() => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
})();
const url = `http://127.0.0.1:${port}/metrics`;
const stop = new AbortController();
let ready!: () => void;
const isReady = new Promise<void>((r) => ready = r);
const running = kopf.run({
  registry,
  namespaces: [ns],
  kubeconfig,
  metrics: url,
  signal: stop.signal,
  ready: () => ready(),
});
await isReady;
const path = (name?: string) =>
  `/apis/bench.kopf.dev/v1/namespaces/${ns}/metricsbenches${name ? `/${name}` : ""}`;
const sum = (text: string, name: string, filter = "") =>
  text.split("\n").filter((l) => l.startsWith(name) && l.includes(filter))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
const settle = async (done: (text: string) => boolean) => {
  for (;;) {
    const text = await (await fetch(url)).text();
    if (done(text)) return text;
    await new Promise((r) => setTimeout(r, 200));
  }
};
for (let i = 0; i < N; i++) {
  await client.request("POST", path(), {
    body: {
      apiVersion: "bench.kopf.dev/v1",
      kind: "MetricsBench",
      metadata: { name: `o-${i}` },
      spec: { field: "a" },
    },
  });
}
await settle((t) => sum(t, "kopf_handler_runs_total", 'outcome="success"') >= N);
for (let i = 0; i < N; i++) {
  await client.request("PATCH", path(`o-${i}`), {
    body: { spec: { field: "b" } },
    contentType: "application/merge-patch+json",
  });
}
await settle((t) => sum(t, "kopf_handler_runs_total", 'outcome="success"') >= 2 * N);
for (let i = 0; i < N; i++) await client.request("DELETE", path(`o-${i}`));
const final = await settle((t) =>
  sum(t, "kopf_handler_runs_total", 'outcome="success"') >= 3 * N &&
  sum(t, "workqueue_depth") === 0 && sum(t, "controller_runtime_active_workers") === 0
);
await new Promise((r) => setTimeout(r, 2000));
const text = await (await fetch(url)).text();
const t0 = performance.now();
for (let i = 0; i < 50; i++) await (await fetch(url)).text();
const scrapeMs = (performance.now() - t0) / 50;
stop.abort();
await running;
await client.request("DELETE", `/api/v1/namespaces/${ns}`).catch(() => {});
client.close();
void final;
const perObject = {
  requests: sum(text, "rest_client_requests_total") / N,
  cycles: sum(text, "controller_runtime_reconcile_total") / N,
  queueRuns: sum(text, "workqueue_work_duration_seconds_count") / N,
  handlerAttempts: sum(text, "kopf_handler_runs_total") / N,
};

// ---- Part 2: what each hook costs. ----
const metrics = new OperatorMetrics();
let observer: RequestObserver | undefined;
const handle = {
  client: {
    server: "https://127.0.0.1:6443",
    observe: (o: RequestObserver) => {
      observer = o;
      return () => {};
    },
  },
  queue: { name: "objects" },
} as unknown as OperatorHandle;
const resource = { group: "bench.kopf.dev", version: "v1", plural: "metricsbenches" } as never;
const methods = ["GET", "PATCH", "POST", "DELETE"];
const [handler] = registry.handlers;
const logger = getLogger(["bench"]);
const options = {
  handler,
  state: freshProgress(),
  defaultErrors: "temporary" as const,
  defaultBackoff: 60,
  logger,
};
const call = () => Promise.resolve({ field: 1 });
const executeOff = await nsPerCall(() => execute(call, options));
metrics.attach(handle);
const executeOn = await nsPerCall(() => execute(call, options));
const costs = {
  request: await nsPerCall((i) =>
    observer!.requested!({ method: methods[i & 3], status: 200, seconds: 0.003 })
  ),
  cycle: await nsPerCall((i) =>
    metrics.cycled({ resource, seconds: 0.002, result: i & 1 ? "success" : "requeue_after" })
  ),
  queueRun: await nsPerCall(() => {
    metrics.queueObserver.started!("k", 0.0001);
    metrics.queueObserver.finished!("k", 0.002);
  }),
  handlerAttempt: Math.max(0, executeOn - executeOff),
};
metrics.detach();
const perObjectNs = perObject.requests * costs.request + perObject.cycles * costs.cycle +
  perObject.queueRuns * costs.queueRun + perObject.handlerAttempts * costs.handlerAttempt;

const f = (x: number, d = 2) => x.toFixed(d);
console.log(`N=${N} objects (create, update, delete); ${CALLS} calls per hook, best of 5 rounds`);
console.log("\n| observation point | per object | ns per call | ns per object |");
console.log("| --- | ---: | ---: | ---: |");
const rows: [string, number, number][] = [
  ["client request (rest_client_*)", perObject.requests, costs.request],
  ["handling cycle (controller_runtime_reconcile_*)", perObject.cycles, costs.cycle],
  ["queue run (workqueue_*_duration_seconds)", perObject.queueRuns, costs.queueRun],
  [
    "handler attempt (kopf_handler_*; execute() on − off)",
    perObject.handlerAttempts,
    costs.handlerAttempt,
  ],
];
for (const [what, count, ns] of rows) {
  console.log(`| ${what} | ${f(count)} | ${f(ns, 0)} | ${f(count * ns, 0)} |`);
}
console.log(`| **total** | | | **${f(perObjectNs, 0)}** |`);
console.log(
  `\nexecute() alone: ${f(executeOff, 0)} ns off, ${f(executeOn, 0)} ns on; ` +
    `one scrape of the operator's /metrics (${text.length} bytes), over HTTP: ${f(scrapeMs)} ms`,
);
