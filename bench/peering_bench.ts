/**
 * Several replicas on the real local control plane (not a test: it asserts nothing, it prints
 * markdown tables). Operators are separate `kopf run` processes (`tests/e2e/fixtures/
 * replica_operator.ts`).
 *
 *     KOPF_CLUSTER_DIR=… deno run -A bench/peering_bench.ts failover [--repeat 3]
 *     KOPF_CLUSTER_DIR=… deno run -A bench/peering_bench.ts throughput [--objects 600] [--ms 0]
 *     KOPF_CLUSTER_DIR=… deno run -A bench/peering_bench.ts watch [--objects 600]
 *
 * - `failover`: 3 replicas with `--leader-election`; seconds from SIGTERM (and from SIGKILL) of
 *   the leader until another replica says it leads.
 * - `throughput`: N objects created at once; seconds until all are handled, by 1 replica and by 3
 *   replicas with `--shards auto` (the load average is printed with it: the machine is shared).
 * - `watch`: on a plane started with `cluster.sh up --sharded`, one unsharded watch and three
 *   watches with a `shardSelector` of a third of the hash space each, while N ConfigMaps are
 *   created: events and bytes of objects each received, and whether the server echoed the
 *   selector (without the feature gate, every sharded watch gets everything).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { KopfRunner } from "../testing.ts";
import { cluster, type Obj } from "../tests/support/cluster.ts";
import { KubeClient } from "../src/kube/client.ts";
import { listAndWatch } from "../src/kube/watch.ts";
import { shardSelector } from "../src/peering/shards.ts";
import { configMaps as CONFIGMAPS } from "../tests/support/engines.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = `${ROOT}tests/e2e/fixtures/replica_operator.ts`;
const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { repeat: { type: "string" }, objects: { type: "string" }, ms: { type: "string" } },
});
const scenario = positionals[0] ?? "failover";
const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);
const kexes = (ns: string) => `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`;
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

function replica(ns: string, name: string, mode: string[]): KopfRunner {
  return new KopfRunner(
    ["run", "--standalone", ...mode, "-n", ns, "--allow-env=REPLICA,POD_NAME", FIXTURE],
    { env: { KUBECONFIG: c.kubeconfig, REPLICA: name, POD_NAME: name }, cwd: ROOT, timeout: 600 },
  ).start();
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function leaderOf(replicas: Map<string, KopfRunner>): string | undefined {
  for (const [name, r] of replicas) {
    const lines = r.output.split("\n");
    const lead = lines.findLastIndex((l) => /\) leads now/.test(l));
    const lost = lines.findLastIndex((l) => /does not lead any more/.test(l));
    if (r.running && lead >= 0 && lead > lost) return name;
  }
  return undefined;
}

async function failover(): Promise<void> {
  const repeat = Number(values.repeat ?? 3);
  console.log("| run | SIGTERM → new leader (s) | SIGKILL → new leader (s) | load avg |");
  console.log("| --: | -----------------------: | -----------------------: | -------- |");
  for (let run = 1; run <= repeat; run++) {
    const ns = await c.namespace("bench-failover");
    const replicas = new Map(
      ["a", "b", "c"].map((n) => [n, replica(ns, n, ["--leader-election"])]),
    );
    try {
      const first = await until(() => leaderOf(replicas));
      const t0 = Date.now();
      const stopping = replicas.get(first)!.stop();
      replicas.delete(first);
      const second = await until(() => leaderOf(replicas));
      const term = (Date.now() - t0) / 1000;
      await stopping;
      const t1 = Date.now();
      const killed = replicas.get(second)!;
      Deno.kill(killed.pid!, "SIGKILL");
      replicas.delete(second);
      await until(() => leaderOf(replicas));
      const kill = (Date.now() - t1) / 1000;
      await killed.wait().catch(() => {});
      console.log(`| ${run} | ${term.toFixed(1)} | ${kill.toFixed(1)} | ${load()} |`);
    } finally {
      for (const r of replicas.values()) await r.stop().catch(() => {});
      await c.deleteNamespace(ns);
    }
  }
}

async function throughput(): Promise<void> {
  const objects = Number(values.objects ?? 600);
  const ms = Number(values.ms ?? 0);
  console.log(`| replicas | objects | handler ms | all handled after (s) | objects/s | load avg |`);
  console.log(`| -------: | ------: | ---------: | --------------------: | --------: | -------- |`);
  for (const count of [1, 3]) {
    const ns = await c.namespace("bench-shards");
    const names = Array.from({ length: count }, (_, i) => `r${i + 1}`);
    const replicas = names.map((n) => replica(ns, n, ["--shards", "auto"]));
    try {
      for (const r of replicas) {
        await r.waitForOutput(new RegExp(`has ${count} member\\(s\\) now`), { timeout: 120 });
      }
      await new Promise((resolve) => setTimeout(resolve, 3000)); // every view published
      const t0 = Date.now();
      for (let i = 0; i < objects; i += 32) {
        await Promise.all(
          Array.from({ length: Math.min(32, objects - i) }, (_, j) =>
            c.api("POST", kexes(ns), {
              apiVersion: "kopf.dev/v1",
              kind: "KopfExample",
              metadata: { name: `o-${i + j}` },
              spec: { ms },
            })),
        );
      }
      await until(async () => {
        const items: Obj[] = (await c.api("GET", kexes(ns))).items;
        return items.filter((i) => i.status?.create_fn).length === objects ? true : undefined;
      });
      const s = (Date.now() - t0) / 1000;
      console.log(
        `| ${count} | ${objects} | ${ms} | ${s.toFixed(1)} | ${
          (objects / s).toFixed(0)
        } | ${load()} |`,
      );
    } finally {
      for (const r of replicas) await r.stop().catch(() => {});
      await c.deleteNamespace(ns);
    }
  }
}

async function watch(): Promise<void> {
  const objects = Number(values.objects ?? 600);
  const ns = await c.namespace("bench-watch");
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig });
  const third = (1n << 64n) / 3n;
  const bounds = [0n, third, 2n * third, 1n << 64n];
  const selectors: (string | undefined)[] = [
    undefined,
    ...[0, 1, 2].map((i) => shardSelector([[bounds[i], bounds[i + 1]]])),
  ];
  const stop = new AbortController();
  const counts = selectors.map(() => ({ events: 0, bytes: 0 }));
  const watches = selectors.map((shardSelector) =>
    listAndWatch(client, CONFIGMAPS, { namespace: ns, shardSelector, signal: stop.signal })
  );
  const loops = watches.map(async (w, i) => {
    for await (const event of w) {
      if (event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED") {
        if (event.object.metadata?.name?.startsWith("cm-")) {
          counts[i].events++;
          counts[i].bytes += JSON.stringify(event.object).length;
        }
      }
    }
  });
  try {
    await until(() => watches.every((w) => w.stats.synced) ? true : undefined);
    for (let i = 0; i < objects; i += 32) {
      await Promise.all(
        Array.from(
          { length: Math.min(32, objects - i) },
          (_, j) =>
            c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
              metadata: { name: `cm-${i + j}` },
              data: { payload: "x".repeat(200) },
            }),
        ),
      );
    }
    await until(() => counts[0].events >= objects ? true : undefined);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    console.log(`| watch | shardSelector echoed by the server | events | bytes of objects |`);
    console.log(`| ----- | ---------------------------------- | -----: | ---------------: |`);
    watches.forEach((w, i) => {
      const name = i === 0 ? "unsharded" : `shard ${i}/3`;
      const echo = i === 0 ? "—" : w.stats.shardInfo ? "yes" : "no";
      console.log(`| ${name} | ${echo} | ${counts[i].events} | ${counts[i].bytes} |`);
    });
  } finally {
    stop.abort();
    await Promise.allSettled(loops);
    client.close();
    await c.deleteNamespace(ns);
  }
}

if (scenario === "failover") await failover();
else if (scenario === "throughput") await throughput();
else if (scenario === "watch") await watch();
else console.error(`unknown scenario ${scenario}: failover, throughput or watch`);
