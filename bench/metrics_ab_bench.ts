/**
 * Metrics on vs off in one process, finely interleaved so that a shared machine's load falls on
 * both alike: each round runs the operator twice (the order alternates), on a fresh namespace,
 * through N objects created, updated and deleted (bench/kopf's handlers), and measures the
 * process's CPU time (`process.cpuUsage()`: the operator and this driver, the same in both) per
 * object. With metrics on, `/metrics` is scraped every `--scrape` seconds (default 1: more often
 * than any Prometheus; 0: never, to tell the scrapes' cost from the observation points').
 *
 *     KUBECONFIG=… deno run -A bench/metrics_ab_bench.ts [--n 200] [--rounds 6] [--scrape 1]
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import * as kopf from "../mod.ts";
import { KubeClient } from "../src/kube/client.ts";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "200" },
    rounds: { type: "string", default: "6" },
    scrape: { type: "string", default: "1" },
  },
});
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
const SCRAPE_SECONDS = Number(values.scrape);
const kubeconfig = Deno.env.get("KUBECONFIG");
if (!kubeconfig) throw new Error("KUBECONFIG must point to a plane (tests/cluster/cluster.sh up)");
const client = await KubeClient.connect({ kubeconfig });
const GROUP = "bench.kopf.dev";
await client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
  body: {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `metricsbenches.${GROUP}` },
    spec: {
      group: GROUP,
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
  },
}).catch((e: unknown) => {
  if ((e as { status?: number }).status !== 409) throw e;
});
await new Promise((r) => setTimeout(r, 2000));

let created = 0, updated = 0, deleted = 0;
const registry = new kopf.Registry();
registry.on.create(GROUP, "v1", "metricsbenches", ({ spec }) => {
  created++;
  return { field: spec.field };
});
registry.on.update(GROUP, "v1", "metricsbenches", { field: "spec.field" }, ({ new: v }) => {
  updated++;
  return { field: v };
});
registry.on.delete(GROUP, "v1", "metricsbenches", () => {
  deleted++;
});

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 50));
}

async function pool(count: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < count) await fn(next++);
  }));
}

/** One run: CPU ms per object for create + update + delete of N objects. */
async function run(metrics: boolean): Promise<{ cpuMsPerObject: number; scrapes: number }> {
  const ns = `metrics-ab-${Math.random().toString(36).slice(2, 8)}`;
  await client.request("POST", "/api/v1/namespaces", { body: { metadata: { name: ns } } });
  const path = (name?: string) =>
    `/apis/${GROUP}/v1/namespaces/${ns}/metricsbenches${name ? `/${name}` : ""}`;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const url = `http://127.0.0.1:${port}/metrics`;
  const stop = new AbortController();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const settings = new kopf.Settings();
  settings.posting.enabled = false;
  const running = kopf.run({
    registry,
    settings,
    namespaces: [ns],
    kubeconfig,
    metrics: metrics ? url : undefined,
    signal: stop.signal,
    ready: () => ready(),
  });
  await isReady;
  let scrapes = 0;
  const scraper = metrics && SCRAPE_SECONDS > 0
    ? setInterval(async () => {
      await (await fetch(url)).text();
      scrapes++;
    }, SCRAPE_SECONDS * 1000)
    : undefined;
  created = updated = deleted = 0;
  const before = process.cpuUsage();
  await pool(N, (i) =>
    client.request("POST", path(), {
      body: {
        apiVersion: `${GROUP}/v1`,
        kind: "MetricsBench",
        metadata: { name: `o-${i}` },
        spec: { field: "a" },
      },
    }));
  await until(() => created >= N);
  await pool(N, (i) =>
    client.request("PATCH", path(`o-${i}`), {
      body: { spec: { field: "b" } },
      contentType: "application/merge-patch+json",
    }));
  await until(() => updated >= N);
  await pool(N, (i) => client.request("DELETE", path(`o-${i}`)));
  await until(() => deleted >= N);
  await new Promise((r) => setTimeout(r, 1000)); // the last finalizer removals
  const used = process.cpuUsage(before);
  clearInterval(scraper);
  stop.abort();
  await running;
  await client.request("DELETE", `/api/v1/namespaces/${ns}`).catch(() => {});
  return { cpuMsPerObject: (used.user + used.system) / 1000 / N, scrapes };
}

await run(false); // warm-up: JIT, module caches, the CRD's discovery
const off: number[] = [], on: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? [false, true] : [true, false];
  for (const metrics of order) {
    const result = await run(metrics);
    (metrics ? on : off).push(result.cpuMsPerObject);
    console.log(
      `round ${round + 1}: metrics ${metrics ? "on " : "off"}: ` +
        `${result.cpuMsPerObject.toFixed(3)} ms CPU per object` +
        (metrics ? ` (${result.scrapes} scrapes)` : ""),
    );
  }
}
client.close();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pairs = off.map((o, i) => (on[i] - o) / o * 100);
console.log(
  `\nN=${N}, ${ROUNDS} rounds: median CPU per object off ${median(off).toFixed(3)} ms, ` +
    `on ${median(on).toFixed(3)} ms (${((median(on) / median(off) - 1) * 100).toFixed(1)} %); ` +
    `per round on−off: ${pairs.map((p) => `${p.toFixed(1)} %`).join(", ")}; ` +
    `min off ${Math.min(...off).toFixed(3)}, min on ${Math.min(...on).toFixed(3)}`,
);
