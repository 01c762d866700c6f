/**
 * Sharding across active replicas through the real command line (`kopf run --shards auto`),
 * replicas as separate processes against two control planes — the shared one, whose API server
 * ignores shard selectors (each replica watches everything and filters), and a private one with
 * the `ShardedListAndWatch` feature gate (each replica's watch carries only its share, counted by
 * its own `kopf_watch_events_total` and `kopf_cached_objects`). On both: 600 objects are each
 * handled exactly once, split within ±20 % per replica; a SIGKILLed replica's objects (new ones,
 * and the timers of old ones) are taken over after its lease expires; a replica that joins takes
 * its ranges over — and no object is ever handled by two replicas at once (every handler run
 * records its start and end; timers' ticks per object come from one replica at a time).
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import {
  cluster,
  type Obj,
  privateCluster,
  shardedPlaneDir,
  type TestCluster,
} from "../support/cluster.ts";
import { KubeClient } from "../../src/kube/client.ts";
import type { Resource } from "../../src/kube/resource.ts";
import { listAndWatch } from "../../src/kube/watch.ts";
import { kex as KEX } from "../support/engines.ts";
import { freePort, scrape } from "../support/prometheus.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const FIXTURE = `${ROOT}tests/e2e/fixtures/replica_operator.ts`;

const kexes = (ns: string) => `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`;

/** The planes: `sharded` — the API server applies shard selectors. */
const planes: { sharded: boolean; open: () => Promise<TestCluster & { done(): Promise<void> }> }[] =
  [
    {
      sharded: false,
      open: async () => ({ ...await cluster(), done: async () => {} }),
    },
    {
      sharded: true,
      open: async () => {
        const p = await privateCluster(shardedPlaneDir(), {
          featureGates: "ShardedListAndWatch=true",
        });
        return { ...p, done: () => p.down() };
      },
    },
  ];

interface Replica {
  runner: KopfRunner;
  /** Its /metrics. */
  metrics: string;
}

function replica(c: TestCluster, ns: string, name: string): Replica {
  const metrics = `http://127.0.0.1:${freePort()}/metrics`;
  const runner = new KopfRunner(
    [
      "run",
      "--standalone",
      "--shards",
      "auto",
      "-n",
      ns,
      "--metrics",
      metrics,
      "--allow-env=REPLICA,POD_NAME",
      FIXTURE,
    ],
    { env: { KUBECONFIG: c.kubeconfig, REPLICA: name, POD_NAME: name }, cwd: ROOT, timeout: 300 },
  ).start();
  return { runner, metrics };
}

/** A replica's watch of a resource: events received and objects cached. */
async function watched(r: Replica, plural: string): Promise<{ events: number; cached: number }> {
  const samples = await scrape(r.metrics);
  const sum = (name: string) =>
    samples.series.filter((s) => s.name === name && s.labels.resource?.startsWith(plural))
      .reduce((total, s) => total + s.value, 0);
  return { events: sum("kopf_watch_events_total"), cached: sum("kopf_cached_objects") };
}

/**
 * An unsharded watch of the test's own beside the replicas: what one replica would receive
 * without server-side sharding (events, and bytes of the objects).
 */
class Baseline {
  events = 0;
  bytes = 0;
  readonly #stop = new AbortController();
  readonly #done: Promise<void>;

  constructor(c: TestCluster, resource: Resource, namespace?: string) {
    this.#done = this.#run(c, resource, namespace);
  }

  async #run(c: TestCluster, resource: Resource, namespace?: string): Promise<void> {
    const client = await KubeClient.connect({ kubeconfig: c.kubeconfig });
    try {
      const watch = listAndWatch(client, resource, { namespace, signal: this.#stop.signal });
      for await (const event of watch) {
        if (event.type === "SYNCED" || event.type === "MISSING") continue;
        this.events++;
        this.bytes += JSON.stringify(event.object).length;
      }
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }
}

/**
 * Each replica's watch: on a sharded plane its share only (the server's doing: said in its log),
 * else every object. With a baseline, the events each received are compared with an unsharded
 * watch's.
 */
async function assertWatchedShares(
  replicas: Map<string, Replica>,
  plural: string,
  count: number,
  sharded: boolean,
  baseline?: Baseline,
): Promise<void> {
  const shares = new Map<string, { events: number; cached: number }>();
  for (const [name, r] of replicas) shares.set(name, await watched(r, plural));
  console.log(
    `${sharded ? "server-side" : "client-side"} sharding, ${count} objects, per replica ` +
      `(events received / objects cached): ${
        [...shares].map(([n, s]) => `${n} ${s.events}/${s.cached}`).join(", ")
      }${
        baseline
          ? `; an unsharded watch: ${baseline.events} events, ${baseline.bytes} bytes of objects`
          : ""
      }`,
  );
  for (const [name, { events, cached }] of shares) {
    const output = replicas.get(name)!.runner.output;
    if (sharded) {
      assert.match(output, /The API server applies shardSelector/);
      assert.ok(cached <= count * 0.6, `${name} caches ${cached} of ${count}`);
      if (baseline) {
        assert.ok(events <= baseline.events * 0.6, `${name}: ${events} of ${baseline.events}`);
      }
    } else {
      assert.match(output, /The API server ignores shardSelector/);
      assert.equal(cached, count, `${name} caches every object`);
      if (baseline) {
        assert.ok(events >= baseline.events * 0.9, `${name}: ${events} of ${baseline.events}`);
      }
    }
  }
}

interface Span {
  name: string;
  replica: string;
  start: number;
  end: number;
}

/** Handler runs (`run-start`/`run-end`) of a replica's output. */
function runsIn(output: string): Span[] {
  const open = new Map<string, Span>();
  const spans: Span[] = [];
  for (const m of output.matchAll(/run-(start|end) (\S+) (\S+) (\d+)$/gm)) {
    const [, what, name, rep, ms] = m;
    if (what === "start") {
      const span = { name, replica: rep, start: Number(ms), end: Infinity };
      open.set(name, span);
      spans.push(span);
    } else {
      const span = open.get(name);
      if (span) span.end = Number(ms);
    }
  }
  return spans;
}

/** Per object, the span of each replica's ticks. */
function tickSpansIn(output: string): Span[] {
  const spans = new Map<string, Span>();
  for (const m of output.matchAll(/tick (\S+) (\S+) (\d+)$/gm)) {
    const [, name, rep, ms] = m;
    const key = `${name}/${rep}`;
    const span = spans.get(key);
    if (span) span.end = Number(ms);
    else spans.set(key, { name, replica: rep, start: Number(ms), end: Number(ms) });
  }
  return [...spans.values()];
}

function assertNoOverlaps(spans: Span[], what: string): void {
  for (const [name, list] of Map.groupBy(spans, (s) => s.name)) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      assert.ok(
        list[i].start > list[i - 1].end,
        `${what} of ${name}: ${list[i - 1].replica} and ${list[i].replica} at once`,
      );
    }
  }
}

async function createMany(
  c: TestCluster,
  ns: string,
  prefix: string,
  count: number,
  ticking = 0,
): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, (_, j) =>
        c.api("POST", kexes(ns), {
          apiVersion: "kopf.dev/v1",
          kind: "KopfExample",
          metadata: { name: `${prefix}-${i + j}` },
          spec: { ms: 100, ...(i + j < ticking ? { tick: true } : {}) },
        })),
    );
  }
}

async function allHandled(
  c: TestCluster,
  ns: string,
  count: number,
  timeout: number,
): Promise<Obj[]> {
  return await waitFor(async () => {
    const items: Obj[] = (await c.api("GET", kexes(ns))).items;
    const done = items.filter((i) => i.status?.create_fn?.replica);
    return done.length === count ? items : undefined;
  }, { timeout, interval: 1000, message: `${count} objects handled` });
}

for (const { sharded, open } of planes) {
  const side = sharded ? "server-side" : "client-side";
  Deno.test(`sharding (${side}): 3 replicas share 600 objects; a killed one's are taken over, a new one takes its share, never two at once`, async () => {
    const c = await open();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("e2e-shards");
    const replicas = new Map(["r1", "r2", "r3"].map((n) => [n, replica(c, ns, n)]));
    const outputs = new Map<string, () => string>();
    for (const [n, r] of replicas) outputs.set(n, () => r.runner.output);
    try {
      for (const r of replicas.values()) {
        await r.runner.waitForOutput(/Sharding: the ring \S+ has 3 member\(s\) now/, {
          timeout: 120,
        });
      }
      const COUNT = 600;
      const baseline = new Baseline(c, KEX, ns);
      await createMany(c, ns, "obj", COUNT, 30);
      const items = await allHandled(c, ns, COUNT, 180);
      await new Promise((resolve) => setTimeout(resolve, 1000)); // the last writes' events
      await baseline.stop();
      const perReplica = new Map<string, number>();
      for (const item of items) {
        const by = item.status.create_fn.replica;
        perReplica.set(by, (perReplica.get(by) ?? 0) + 1);
      }
      console.log(`600 objects by replica: ${JSON.stringify(Object.fromEntries(perReplica))}`);
      for (const n of replicas.keys()) {
        const share = (perReplica.get(n) ?? 0) / (COUNT / 3);
        assert.ok(share >= 0.8 && share <= 1.2, `${n} handled ${perReplica.get(n)} of ${COUNT}`);
      }
      await assertWatchedShares(replicas, "kopfexamples", COUNT, sharded, baseline);

      // SIGKILL r3: its objects wait for its lease to expire, then r1/r2 take them.
      const r3 = replicas.get("r3")!.runner;
      const r3Ticking = items.filter((i) => i.spec.tick && i.status.create_fn.replica === "r3")
        .map((i) => i.metadata.name as string);
      const killAt = Date.now();
      Deno.kill(r3.pid!, "SIGKILL");
      await r3.wait().catch(() => {});
      const r3Output = r3.output;
      outputs.set("r3", () => r3Output);
      replicas.delete("r3");
      await createMany(c, ns, "late", 60);
      await allHandled(c, ns, COUNT + 60, 90);
      const takeover = (Date.now() - killAt) / 1000;
      console.log(`after SIGKILL of r3: all 60 new objects handled ${takeover.toFixed(1)} s later`);
      for (const name of r3Ticking) {
        await waitFor(
          () =>
            [...replicas.values()].some((r) =>
              new RegExp(`tick ${name} r[12] `).test(r.runner.output)
            ),
          { timeout: 60, message: `${name}'s timer taken over` },
        );
      }

      // r4 joins: ranges move from r1/r2 to it; new objects are shared by all three.
      const r4 = replica(c, ns, "r4");
      replicas.set("r4", r4);
      outputs.set("r4", () => r4.runner.output);
      await r4.runner.waitForOutput(/Sharding: the ring \S+ has 3 member\(s\) now/, {
        timeout: 120,
      });
      await new Promise((resolve) => setTimeout(resolve, 6000)); // the others publish the view
      await createMany(c, ns, "joined", 90);
      const all = await allHandled(c, ns, COUNT + 150, 90);
      const joinedBy = all.filter((i) => i.metadata.name.startsWith("joined-"))
        .map((i) => i.status.create_fn.replica);
      assert.ok(joinedBy.includes("r4"), "the new replica handles a share");
      await new Promise((resolve) => setTimeout(resolve, 3000)); // a few more ticks

      // Never two at once, every object exactly once.
      const texts = [...outputs.values()].map((f) => f());
      const runs = texts.flatMap(runsIn);
      assertNoOverlaps(runs, "handler runs");
      assertNoOverlaps(texts.flatMap(tickSpansIn), "timer ticks");
      const perName = Map.groupBy(runs, (r) => r.name);
      assert.equal(perName.size, COUNT + 150);
      for (const [name, list] of perName) {
        assert.equal(list.length, 1, `${name} ran ${list.length}×`);
      }
      // After the moves, still each its share (what left a replica's share left its cache).
      await assertWatchedShares(replicas, "kopfexamples", COUNT + 150, sharded);
    } finally {
      for (const r of replicas.values()) await r.runner.stop().catch(() => {});
      await c.deleteNamespace(ns);
      await c.done();
    }
  });

  Deno.test(`sharding (${side}): a cluster-scoped resource is shared too, each object handled once`, async () => {
    const c = await open();
    try {
      await clusterScoped(c, sharded);
    } finally {
      await c.done();
    }
  });
}

async function clusterScoped(c: TestCluster, sharded: boolean): Promise<void> {
  const leases = await c.namespace("e2e-shards-cluster");
  await c.apply({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "shardexamples.peering.test" },
    spec: {
      scope: "Cluster",
      group: "peering.test",
      names: { kind: "ShardExample", plural: "shardexamples", singular: "shardexample" },
      versions: [{
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            "x-kubernetes-preserve-unknown-fields": true,
          },
        },
      }],
    },
  });
  const path = "/apis/peering.test/v1/shardexamples";
  await waitFor(async () => (await c.api("GET", path)).items !== undefined, {
    message: "the cluster-scoped CRD served",
  });
  const fixture = `${ROOT}tests/e2e/fixtures/cluster_replica_operator.ts`;
  const metrics = new Map(
    ["c1", "c2", "c3"].map((n) => [n, `http://127.0.0.1:${freePort()}/metrics`]),
  );
  const replicas = ["c1", "c2", "c3"].map((n) =>
    new KopfRunner(
      [
        "run",
        "--standalone",
        "--shards",
        "auto",
        "-A",
        "--lease-namespace",
        leases,
        "--metrics",
        metrics.get(n)!,
        "--allow-env=REPLICA",
        fixture,
      ],
      { env: { KUBECONFIG: c.kubeconfig, REPLICA: n }, cwd: ROOT, timeout: 300 },
    ).start()
  );
  const prefix = leases.slice(-8);
  try {
    for (const r of replicas) {
      await r.waitForOutput(/Sharding: the ring \S+ has 3 member\(s\) now/, { timeout: 120 });
    }
    await new Promise((resolve) => setTimeout(resolve, 3000)); // every view published
    const COUNT = 90;
    await Promise.all(Array.from({ length: COUNT }, (_, i) =>
      c.api("POST", path, {
        apiVersion: "peering.test/v1",
        kind: "ShardExample",
        metadata: { name: `${prefix}-${i}` },
      })));
    const items: Obj[] = await waitFor(async () => {
      const all: Obj[] = (await c.api("GET", path)).items;
      const ours = all.filter((i) => i.metadata.name.startsWith(`${prefix}-`));
      return ours.every((i) => i.status?.create_fn?.replica) ? ours : undefined;
    }, { timeout: 90, interval: 1000, message: "all handled" });
    const by = Map.groupBy(items, (i) => i.status.create_fn.replica as string);
    console.log(
      `90 cluster-scoped objects by replica: ${
        JSON.stringify(Object.fromEntries([...by].map(([k, v]) => [k, v.length])))
      }`,
    );
    assert.equal(by.size, 3, "every replica handled a share");
    const runs = replicas.flatMap((r) => runsIn(r.output));
    assertNoOverlaps(runs, "handler runs");
    const perName = Map.groupBy(runs, (r) => r.name);
    assert.equal(perName.size, COUNT);
    for (const [name, list] of perName) assert.equal(list.length, 1, `${name} ran ${list.length}×`);
    const all: Obj[] = (await c.api("GET", path)).items;
    await assertWatchedShares(
      new Map(
        replicas.map((runner, i) => [`c${i + 1}`, { runner, metrics: metrics.get(`c${i + 1}`)! }]),
      ),
      "shardexamples",
      all.length,
      sharded,
    );
  } finally {
    for (const r of replicas) await r.stop().catch(() => {});
    for (let i = 0; i < 90; i++) {
      await c.api("DELETE", `${path}/${prefix}-${i}`).catch(() => {});
    }
    await c.deleteNamespace(leases);
  }
}

Deno.test("sharding: shard Leases edited or deleted by hand — one line each, no double handling; a graceful stop hands over at once", async () => {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const ns = await c.namespace("e2e-shards-edit");
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
  const leaseOf = async (replicaName: string): Promise<Obj> => {
    const items: Obj[] = (await c.api("GET", leases)).items;
    const found = items.find((l) => l.spec?.holderIdentity?.startsWith(`${replicaName}_`));
    if (!found) throw new Error(`no Lease held by ${replicaName}`);
    return found;
  };
  const replicas = new Map(["s1", "s2"].map((n) => [n, replica(c, ns, n)]));
  const texts = () => [...replicas.values()].map((r) => r.runner.output);
  try {
    for (const r of replicas.values()) {
      await r.runner.waitForOutput(/Sharding: the ring \S+ has 2 member\(s\) now/, {
        timeout: 120,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 5000)); // both views published
    await createMany(c, ns, "before", 40);
    await allHandled(c, ns, 40, 60);

    // s2 frozen (SIGSTOP, shorter than its lease), its view annotation made unreadable and its
    // renewTime an hour off (clock skew): s1 says so once and keeps to s2's last readable claims.
    const s2Pid = replicas.get("s2")!.runner.pid!;
    Deno.kill(s2Pid, "SIGSTOP");
    const s2Lease = await leaseOf("s2");
    await c.api("PATCH", `${leases}/${s2Lease.metadata.name}`, {
      metadata: { annotations: { "kopf.dev/shard-view": "{not json" } },
      spec: { renewTime: new Date(Date.now() - 3_600_000).toISOString().replace("Z", "000Z") },
    }, { contentType: "application/merge-patch+json" });
    try {
      await replicas.get("s1")!.runner.waitForOutput(/unreadable kopf\.dev\/shard-view/, {
        timeout: 8,
      });
    } finally {
      Deno.kill(s2Pid, "SIGCONT");
    }
    // s1's Lease deleted by hand: s1 creates it again; s2 keeps s1's ranges claimed meanwhile.
    const s1Lease = await leaseOf("s1");
    await c.api("DELETE", `${leases}/${s1Lease.metadata.name}`);
    await createMany(c, ns, "during", 40);
    await waitFor(() => leaseOf("s1").then(() => true, () => false), {
      timeout: 15,
      message: "s1's Lease created again",
    });
    await allHandled(c, ns, 80, 60);
    await new Promise((resolve) => setTimeout(resolve, 5000)); // a few more ticks
    const s1Text = replicas.get("s1")!.runner.output;
    const s2Text = replicas.get("s2")!.runner.output;
    assert.equal(s1Text.match(/unreadable kopf\.dev\/shard-view/g)?.length, 1, "one line");
    assert.ok((s2Text.match(/is gone without being released/g)?.length ?? 0) <= 1, "one line");

    // A graceful stop: s2 releases its Lease; s1 takes over at its next look, not after expiry.
    const s2 = replicas.get("s2")!.runner;
    const s2Output = s2.output;
    await s2.stop();
    const stoppedAt = Date.now();
    replicas.delete("s2");
    await createMany(c, ns, "after", 30);
    await allHandled(c, ns, 110, 60);
    const takeover = (Date.now() - stoppedAt) / 1000;
    console.log(`after SIGTERM of s2: all 30 new objects handled ${takeover.toFixed(1)} s later`);
    assert.ok(takeover < 12, `taken over in ${takeover.toFixed(1)} s: before the lease expired`);
    await waitFor(async () => {
      const items: Obj[] = (await c.api("GET", leases)).items;
      return items.length === 1 && items[0].spec.holderIdentity.startsWith("s1_");
    }, { timeout: 15, message: "the released Lease deleted by s1" });

    const runs = [...texts(), s2Output].flatMap(runsIn);
    assertNoOverlaps(runs, "handler runs");
    const perName = Map.groupBy(runs, (r) => r.name);
    assert.equal(perName.size, 110);
    for (const [name, list] of perName) assert.equal(list.length, 1, `${name} ran ${list.length}×`);
    for (const text of [...texts(), s2Output]) {
      assert.doesNotMatch(text, /Traceback| {4}at /, "no stack trace in the log");
    }
  } finally {
    for (const r of replicas.values()) await r.runner.stop().catch(() => {});
    await c.deleteNamespace(ns);
  }
});
