/**
 * The memory metrics add: fresh processes, metrics on and off alternated, each running the
 * operator through N objects (created and handled, then scraped 5 times when on), then a full
 * garbage collection, and reporting its RSS and V8 heap. Fresh processes and a forced GC take out
 * most of what makes two whole-benchmark runs differ by several MiB.
 *
 *     KUBECONFIG=… deno run -A bench/metrics_memory_bench.ts [--n 200] [--rounds 4]
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as kopf from "../mod.ts";
import { KubeClient } from "../src/kube/client.ts";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "200" },
    rounds: { type: "string", default: "4" },
    child: { type: "string" },
  },
});
const N = Number(values.n);
const GROUP = "bench.kopf.dev";
const kubeconfig = Deno.env.get("KUBECONFIG");
if (!kubeconfig) throw new Error("KUBECONFIG must point to a plane (tests/cluster/cluster.sh up)");

/** One operator in this process; prints `{ rss, heap }` in MiB after a full GC. */
async function child(metrics: boolean): Promise<void> {
  const client = await KubeClient.connect({ kubeconfig });
  const ns = `metrics-mem-${Math.random().toString(36).slice(2, 8)}`;
  await client.request("POST", "/api/v1/namespaces", { body: { metadata: { name: ns } } });
  let created = 0;
  const registry = new kopf.Registry();
  registry.on.create(GROUP, "v1", "metricsbenches", ({ spec }) => {
    created++;
    return { field: spec.field };
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/metrics`;
  listener.close();
  const settings = new kopf.Settings();
  settings.posting.enabled = false;
  const stop = new AbortController();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
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
  for (let i = 0; i < N; i++) {
    await client.request("POST", `/apis/${GROUP}/v1/namespaces/${ns}/metricsbenches`, {
      body: {
        apiVersion: `${GROUP}/v1`,
        kind: "MetricsBench",
        metadata: { name: `o-${i}` },
        spec: { field: "a" },
      },
    });
  }
  while (created < N) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 2000));
  if (metrics) { for (let i = 0; i < 5; i++) await (await fetch(url)).text(); }
  // deno-lint-ignore no-explicit-any
  const gc = (globalThis as any).gc as () => void;
  gc();
  gc();
  await new Promise((r) => setTimeout(r, 500));
  const usage = Deno.memoryUsage();
  console.log(JSON.stringify({ rss: usage.rss / 2 ** 20, heap: usage.heapUsed / 2 ** 20 }));
  stop.abort();
  await running;
  // Finalizers are ours: strip them by deleting the namespace's objects' finalizers via the API.
  const list = await client.request<{ items: { metadata: { name: string } }[] }>(
    "GET",
    `/apis/${GROUP}/v1/namespaces/${ns}/metricsbenches`,
  );
  for (const item of list.items) {
    await client.request(
      "PATCH",
      `/apis/${GROUP}/v1/namespaces/${ns}/metricsbenches/${item.metadata.name}`,
      { body: { metadata: { finalizers: null } }, contentType: "application/merge-patch+json" },
    ).catch(() => {});
  }
  await client.request("DELETE", `/api/v1/namespaces/${ns}`).catch(() => {});
  client.close();
}

if (values.child) {
  await child(values.child === "on");
} else {
  const self = new URL(import.meta.url).pathname;
  const rows: { on: boolean; rss: number; heap: number }[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const on of round % 2 === 0 ? [false, true] : [true, false]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          self,
          "--child",
          on ? "on" : "off",
          "--n",
          `${N}`,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
      const { rss, heap } = JSON.parse(line);
      rows.push({ on, rss, heap });
      console.log(
        `round ${round + 1}: metrics ${on ? "on " : "off"}: RSS ${rss.toFixed(1)} MiB, heap ${
          heap.toFixed(2)
        } MiB`,
      );
    }
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const of = (on: boolean, k: "rss" | "heap") => rows.filter((r) => r.on === on).map((r) => r[k]);
  for (const k of ["rss", "heap"] as const) {
    const off = of(false, k), on = of(true, k);
    console.log(
      `${k}: median off ${median(off).toFixed(2)} MiB (${Math.min(...off).toFixed(2)}–${
        Math.max(...off).toFixed(2)
      }), on ${median(on).toFixed(2)} MiB (${Math.min(...on).toFixed(2)}–${
        Math.max(...on).toFixed(2)
      }): ${(median(on) - median(off)).toFixed(2)} MiB`,
    );
  }
}
