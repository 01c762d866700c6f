/**
 * Watch and informer benchmark against the real local API server (not a test: it asserts
 * nothing, it prints a markdown table).
 *
 *     deno run -A bench/watch_bench.ts [--objects 10000] [--repeat 2]
 *
 * 1. Watch throughput: an informer watches an empty namespace while N ConfigMaps are created
 *    there with a bounded pool of concurrent POSTs; events/s over the creation, and how far the
 *    watch lagged behind the last create.
 * 2. Catch-up: a watch started from the resourceVersion before the creation, after it, reads
 *    the N events the server replays from its watch cache as fast as the client can decode and
 *    store them.
 * 3. Initial sync of the N objects, by paginated LIST and by streaming list: wall time, peak RSS
 *    (the kernel's high-water mark, VmHWM), and the cache's heap per object next to the JSON
 *    size per object. Each run is a fresh process (started with `--expose-gc`) so peaks do not
 *    leak between runs.
 *
 * @module
 */
import { Informers } from "../src/cache/informer.ts";
import { ObjectStore, stripManagedFields } from "../src/cache/store.ts";
import { KubeClient } from "../src/kube/client.ts";
import type { KubeObject } from "../src/kube/resource.ts";
import type { InitialSync } from "../src/kube/watch.ts";
import { objectKeyOf } from "../src/kube/resource.ts";
import { watchLines } from "../src/kube/_watch_lines.ts";
import { configMaps as CONFIGMAPS } from "../tests/support/engines.ts";

const POOL = 32;

interface ChildArgs {
  task: "throughput" | "sync";
  kubeconfig: string;
  namespace: string;
  objects: number;
  mode?: InitialSync;
}

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(Deno.args[i + 1]);
}

function peakRssMb(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function configMap(i: number): KubeObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `cm-${String(i).padStart(5, "0")}`, labels: { app: "watch-bench" } },
    data: { "settings.yaml": `index: ${i}\npayload: ${"x".repeat(200)}\n` },
  };
}

async function createAll(client: KubeClient, namespace: string, count: number): Promise<number> {
  let next = 0;
  const began = performance.now();
  await Promise.all(Array.from({ length: POOL }, async () => {
    while (next < count) {
      const i = next++;
      await client.create(CONFIGMAPS, configMap(i), { namespace });
    }
  }));
  return performance.now() - began;
}

/** Child: events/s while creating, lag, then a catch-up replay from before the creation. */
async function throughput(args: ChildArgs): Promise<Record<string, number>> {
  // Writes bypass the client's token bucket: the point is to push the server, not the limiter.
  const writer = await KubeClient.connect({ kubeconfig: args.kubeconfig, qps: 0, maxInFlight: 0 });
  const reader = await KubeClient.connect({ kubeconfig: args.kubeconfig });
  const informers = new Informers(reader);
  const informer = informers.get(CONFIGMAPS, { namespace: args.namespace });
  let first = 0;
  let last = 0;
  let added = 0;
  const all = Promise.withResolvers<void>();
  informer.subscribe((event) => {
    if (event.type !== "ADDED") return;
    const now = performance.now();
    if (added === 0) first = now;
    last = now;
    if (++added === args.objects) all.resolve();
  });
  await informer.waitForSync();
  const startRv = informer.stats!.resourceVersion!;
  const createStart = performance.now();
  const createMs = await createAll(writer, args.namespace, args.objects);
  const createEnd = createStart + createMs;
  await all.promise;
  const watchMs = last - first;
  await informers.stop();

  // Catch-up: the same events again, replayed by the server's watch cache from startRv.
  const store = new ObjectStore(informer.resource);
  const abort = new AbortController();
  const replayStart = performance.now();
  const response = await reader.stream(
    `/api/v1/namespaces/${args.namespace}/configmaps`,
    {
      query: { watch: true, resourceVersion: startRv, allowWatchBookmarks: true },
      signal: abort.signal,
    },
  );
  let replayed = 0;
  for await (const line of watchLines(response.body!)) {
    const event = JSON.parse(line) as { type: string; object: KubeObject };
    if (event.type === "ERROR") throw new Error(`catch-up watch: ${line}`);
    if (event.type !== "ADDED") continue;
    store.apply({ type: "ADDED", object: stripManagedFields(event.object), initial: false });
    if (++replayed === args.objects) break;
  }
  const replayMs = performance.now() - replayStart;
  abort.abort();
  writer.close();
  reader.close();
  return {
    createMs,
    createsPerS: args.objects / (createMs / 1000),
    watchMs,
    eventsPerS: args.objects / (watchMs / 1000),
    lagMs: last - createEnd,
    replayMs,
    replayPerS: args.objects / (replayMs / 1000),
  };
}

/** Child: one initial sync of the namespace; time, peak RSS, heap and JSON bytes per object. */
async function sync(args: ChildArgs): Promise<Record<string, number>> {
  const client = await KubeClient.connect({ kubeconfig: args.kubeconfig });
  // Warm up the client, TLS and the JIT on a tiny request, so the baseline includes them.
  await client.list(CONFIGMAPS, { namespace: args.namespace, limit: 1 });
  gc();
  const rssBefore = Deno.memoryUsage().rss / 2 ** 20;
  const hwmBefore = peakRssMb();
  const heapBefore = Deno.memoryUsage().heapUsed;
  const informers = new Informers(client, { initialSync: args.mode });
  const informer = informers.get(CONFIGMAPS, { namespace: args.namespace });
  const began = performance.now();
  const subscription = informer.subscribe(() => {});
  await informer.waitForSync();
  const syncMs = performance.now() - began;
  const peak = peakRssMb();
  gc();
  const heapAfter = Deno.memoryUsage().heapUsed;
  const rssAfter = Deno.memoryUsage().rss / 2 ** 20;
  const count = informer.store.size;
  let jsonBytes = 0;
  for (const object of informer.store.values()) jsonBytes += JSON.stringify(object).length;
  // The same objects as the server sends them (with managedFields), for comparison.
  const page = await client.list(CONFIGMAPS, { namespace: args.namespace, limit: 100 });
  const rawPerObject = page.items.reduce((n, o) => n + JSON.stringify(o).length, 0) /
    page.items.length;
  const keys = [...informer.store.keys()].filter((k) =>
    k !== objectKeyOf(informer.resource, informer.store.get(k)!)
  );
  if (keys.length) throw new Error("store keys do not match object keys");
  subscription.unsubscribe();
  await informers.stop();
  client.close();
  return {
    count,
    syncMs,
    rssBeforeMb: rssBefore,
    peakRssMb: Math.max(peak, hwmBefore),
    rssAfterMb: rssAfter,
    heapPerObject: (heapAfter - heapBefore) / count,
    jsonPerObject: jsonBytes / count,
    rawJsonPerObject: rawPerObject,
  };
}

async function runChild(args: ChildArgs): Promise<Record<string, number>> {
  const began = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      import.meta.filename!,
      "--child",
      JSON.stringify(args),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`child ${args.task} failed: ${text}`);
  console.error(
    `watch_bench: ${args.task} ${args.mode ?? ""} took ${
      fmt((performance.now() - began) / 1000, 1)
    } s`,
  );
  return JSON.parse(text.split("\n").at(-1)!);
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const { cluster } = await import("../tests/support/cluster.ts");
  const objects = option("objects", 10_000);
  const repeat = option("repeat", 2);
  const c = await cluster();
  const namespace = await c.namespace("watch-bench");
  console.error(`watch_bench: ${objects} ConfigMaps in ${namespace} on ${c.server}`);
  try {
    const t = await runChild({ task: "throughput", kubeconfig: c.kubeconfig, namespace, objects });
    const syncs: { mode: InitialSync; r: Record<string, number> }[] = [];
    for (let i = 0; i < repeat; i++) {
      for (const mode of ["list", "stream"] as const) {
        syncs.push({
          mode,
          r: await runChild({ task: "sync", kubeconfig: c.kubeconfig, namespace, objects, mode }),
        });
      }
    }
    console.log(
      `## Watch benchmark (${objects} ConfigMaps, ${Deno.build.os}, Deno ${Deno.version.deno})\n`,
    );
    console.log("| measurement | value |");
    console.log("| --- | --- |");
    console.log(
      `| creates (pool of ${POOL} concurrent POSTs) | ${fmt(t.createMs / 1000, 1)} s, ${
        fmt(t.createsPerS)
      } objects/s |`,
    );
    console.log(
      `| watch events while creating | ${fmt(t.eventsPerS)} events/s (first to last event ${
        fmt(t.watchMs / 1000, 1)
      } s) |`,
    );
    console.log(`| watch lag after the last create | ${fmt(t.lagMs)} ms |`);
    console.log(
      `| catch-up replay from the watch cache (decode + store) | ${fmt(t.replayPerS)} events/s (${
        fmt(t.replayMs)
      } ms) |`,
    );
    console.log("");
    console.log(
      "| initial sync | run | wall time | RSS before | peak RSS | RSS after | cache heap / object | JSON / object (stored) | JSON / object (as sent, with managedFields) |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    syncs.forEach(({ mode, r }, i) => {
      console.log(
        `| ${
          mode === "list" ? "paginated LIST (limit 500)" : "streaming list (sendInitialEvents)"
        } | ${Math.floor(i / 2) + 1} | ${fmt(r.syncMs)} ms | ${fmt(r.rssBeforeMb)} MB | ${
          fmt(r.peakRssMb)
        } MB | ${fmt(r.rssAfterMb)} MB | ${fmt(r.heapPerObject)} B | ${fmt(r.jsonPerObject)} B | ${
          fmt(r.rawJsonPerObject)
        } B |`,
      );
    });
  } finally {
    await c.deleteNamespace(namespace);
  }
}

if (Deno.args[0] === "--child") {
  const args = JSON.parse(Deno.args[1]) as ChildArgs;
  const result = args.task === "throughput" ? await throughput(args) : await sync(args);
  console.log(JSON.stringify(result));
  // Whatever the client left open (pooled connections), the measurement is done.
  Deno.exit(0);
} else {
  await main();
}
