// Watching a share of the objects (KEP-5866's shardSelector) against real API servers: one with
// the ShardedListAndWatch feature gate (a private plane started for this file), which applies the
// selector and echoes it back; and the shared plane without the gate, which ignores it. Re-scoping
// a running informer lists the new share once: objects that come into it are announced as initial
// ADDED, those that leave as DELETED, those in both not at all; where the server ignores selectors,
// the informer watches everything and a re-scope costs nothing. Custom resources are filtered
// without an echo: a probe tells the informer so. No faults are injected.
import assert from "node:assert/strict";
import { Informers, isChange } from "../../src/cache/informer.ts";
import type { StoreChange } from "../../src/cache/store.ts";
import type { KubeObject } from "../../src/kube/resource.ts";
import { fnv1a64, shardSelector } from "../../src/peering/shards.ts";
import { cluster, privateCluster, shardedPlaneDir, type TestCluster } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";
import { configMaps as CONFIGMAPS } from "../support/engines.ts";
import { connect, countRequests, probeResource } from "../support/watch_fixtures.ts";

const HALF = 1n << 63n;
const QUARTER = 1n << 62n;
const SPACE = 1n << 64n;
/** The lower half of the hash space, and the upper three quarters (overlapping by a quarter). */
const LOWER = shardSelector([[0n, HALF]])!;
const UPPER = shardSelector([[QUARTER, SPACE]])!;

/** Creates `count` ConfigMaps; returns name → hash of its uid. */
async function createMaps(c: TestCluster, ns: string, prefix: string, count: number) {
  const hashes = new Map<string, bigint>();
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    const created = await c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
      metadata: { name: `${prefix}-${i}` },
    });
    hashes.set(created.metadata.name, fnv1a64(created.metadata.uid));
  }));
  return hashes;
}

function namesWhere(hashes: Map<string, bigint>, test: (hash: bigint) => boolean): string[] {
  return [...hashes].filter(([, h]) => test(h)).map(([name]) => name).sort();
}

Deno.test("sharded watch: the server sends the share; a re-scope lists once and announces only what came or went", async () => {
  const c = await privateCluster(shardedPlaneDir(), { featureGates: "ShardedListAndWatch=true" });
  const transport = await connect(c.kubeconfig);
  const informers = new Informers(transport);
  try {
    const ns = await c.namespace("watch-shards");
    const hashes = await createMaps(c, ns, "cm", 60);
    const informer = informers.get(CONFIGMAPS, { namespace: ns });
    informer.rescope(LOWER);
    const changes: StoreChange<KubeObject>[] = [];
    using _ = informer.subscribe((event) => {
      if (isChange(event)) changes.push(event);
    });
    await informer.waitForSync();
    const lower = namesWhere(hashes, (h) => h < HALF);
    const listed = [...informer.store.values()].map((o) => o.metadata!.name!).sort();
    assert.deepEqual(listed, lower, "only the lower half was sent");
    assert.equal(informer.stats?.shardInfo, LOWER, "the server echoed the selector");
    assert.equal(informer.stats?.shardsApplied, true);
    assert.ok(changes.every((e) => e.type === "ADDED" && e.initial));

    changes.length = 0;
    informer.rescope(UPPER);
    const upper = namesWhere(hashes, (h) => h >= QUARTER);
    await waitFor(
      () =>
        informer.stats?.lists === 2 &&
        [...informer.store.values()].map((o) => o.metadata!.name!).sort().join() === upper.join(),
      { timeout: 30, message: "the informer holds the upper share" },
    );
    const came = changes.filter((e) => e.type === "ADDED").map((e) => e.object.metadata!.name!);
    const went = changes.filter((e) => e.type === "DELETED").map((e) => e.object.metadata!.name!);
    assert.deepEqual(came.sort(), namesWhere(hashes, (h) => h >= HALF), "the new ones came");
    assert.ok(changes.filter((e) => e.type === "ADDED").every((e) => e.initial));
    assert.deepEqual(went.sort(), namesWhere(hashes, (h) => h < QUARTER), "the old ones went");
    assert.equal(changes.length, came.length + went.length, "nothing for the overlap");
    assert.equal(informer.stats?.relists, 0, "a re-scope is no re-list");
    assert.equal(informer.stats?.shardInfo, UPPER);

    // Live changes follow the new share only.
    changes.length = 0;
    const later = await createMaps(c, ns, "late", 24);
    const inside = namesWhere(later, (h) => h >= QUARTER);
    await waitFor(() => changes.length >= inside.length, {
      timeout: 30,
      message: "the new objects of the share announced",
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(changes.map((e) => e.object.metadata!.name!).sort(), inside);
    assert.ok(changes.every((e) => e.type === "ADDED" && !e.initial));

    // Custom resources: kube-apiserver 1.36 filters them but echoes nothing; a probe tells.
    const probe = await probeResource(c);
    const crHashes = new Map<string, bigint>();
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const created = await c.api("POST", probe.path(ns), {
        apiVersion: `${probe.group}/${probe.version}`,
        kind: probe.kind,
        metadata: { name: `cr-${i}` },
      });
      crHashes.set(created.metadata.name, fnv1a64(created.metadata.uid));
    }));
    const m0 = await c.metrics();
    const crs = informers.get(probe, { namespace: ns });
    crs.rescope(LOWER);
    using _crs = crs.subscribe(() => {});
    await crs.waitForSync();
    assert.equal(
      countRequests((await c.metrics()).since(m0), probe, { verb: "LIST" }),
      2,
      "one LIST page and one probe, not retried",
    );
    assert.equal(crs.stats?.shardInfo, undefined, "no echo for a custom resource");
    assert.equal(crs.stats?.shardsApplied, true, "the probe said so");
    assert.equal(crs.shardSelector, LOWER);
    assert.deepEqual(
      [...crs.store.values()].map((o) => o.metadata!.name!).sort(),
      namesWhere(crHashes, (h) => h < HALF),
    );
  } finally {
    await informers.stop();
    transport.close();
    await c.down();
  }
});

Deno.test("sharded watch on a server without the feature: everything comes, re-scopes cost nothing", async () => {
  const c = await cluster();
  const transport = await connect(c.kubeconfig);
  const informers = new Informers(transport);
  try {
    const ns = await c.namespace("watch-shards-off");
    const hashes = await createMaps(c, ns, "cm", 20);
    const informer = informers.get(CONFIGMAPS, { namespace: ns });
    informer.rescope(LOWER);
    using _ = informer.subscribe(() => {});
    await informer.waitForSync();
    assert.equal(informer.store.size, 20, "the server sent every object");
    assert.equal(informer.stats?.shardInfo, undefined, "no echo");
    assert.equal(informer.stats?.shardsApplied, false);
    assert.equal(informer.shardSelector, undefined, "the informer knows it holds everything");
    informer.rescope(UPPER);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(informer.stats?.lists, 1, "no listing again");
    assert.equal(informer.store.size, hashes.size);
  } finally {
    await informers.stop();
    transport.close();
  }
});
