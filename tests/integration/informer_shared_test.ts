// Shared informers against the real API server: one list/watch per (resource, namespace, label
// selector) whatever the number of consumers, label selectors applied by the server, and the
// stream closed when the last consumer leaves. The fault proxy is used here only as a recorder of
// which requests the client made (no faults are injected).
import assert from "node:assert/strict";
import { Informers, isChange } from "../../src/cache/informer.ts";
import type { StoreChange } from "../../src/cache/store.ts";
import { type KubeObject, objectKey } from "../../src/kube/resource.ts";
import { cluster } from "../support/cluster.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { waitFor } from "../support/wait.ts";
import {
  assertOrdered,
  Churn,
  connect,
  countRequests,
  logIfAsked,
  probeResource,
  Seen,
  waitForSameState,
} from "../support/watch_fixtures.ts";

Deno.test("informers: consumers share one list+watch, selectors go to the server, the last unsubscribe closes the stream", async () => {
  await logIfAsked();
  const c = await cluster();
  const resource = await probeResource(c);
  const ns = await c.namespace("informer-shared");
  const proxy = await FaultProxy.start(c);
  const transport = await connect(proxy.kubeconfig);
  const informers = new Informers(transport);
  try {
    const churn = new Churn(c, resource, ns);
    const tierA = await churn.create(3, { tier: "a" });
    const tierB = await churn.create(2, { tier: "b" });
    const m0 = await c.metrics();

    const all = informers.get(resource, { namespace: ns });
    assert.equal(informers.get(resource, { namespace: ns }), all, "the same informer");
    const selected = informers.get(resource, { namespace: ns, labelSelector: "tier=a" });
    assert.notEqual(selected, all);
    const first = new Seen();
    const second = new Seen();
    const onlyA = new Seen();
    const s1 = all.subscribe(first.listener);
    const s2 = all.subscribe(second.listener);
    const s3 = selected.subscribe(onlyA.listener);
    await Promise.all([all.waitForSync(), selected.waitForSync()]);
    await waitFor(() => proxy.openWatches() === 2, { message: "two watch streams" });

    // One LIST and one WATCH per informer, not per consumer.
    const plain = proxy.seen({ path: /./ }).filter((r) => r.query.labelSelector === undefined);
    const bySelector = proxy.seen({ path: /./ }).filter((r) => r.query.labelSelector === "tier=a");
    assert.deepEqual(plain.map((r) => r.watch), [false, true]);
    assert.deepEqual(bySelector.map((r) => r.watch), [false, true]);
    assert.equal(
      countRequests((await c.metrics()).since(m0), resource, { verb: "LIST", scope: "namespace" }),
      2,
      "the API server saw two LISTs",
    );

    // The selector is applied by the server: only tier=a objects are sent and stored.
    assert.equal(all.store.size, 5);
    assert.deepEqual(
      [...selected.store.keys()].sort(),
      tierA.map((n) => objectKey(resource, ns, n)).sort(),
    );
    // managedFields are on the server's objects, but not in the cache.
    const onServer = await c.api("GET", `${resource.path(ns)}/${tierA[0]}`);
    assert.ok(onServer.metadata.managedFields?.length > 0);
    assert.equal(selected.store.getByName(tierA[0], ns)?.metadata?.managedFields, undefined);

    // Moving an object into and out of the selector is an ADDED and a DELETED for that informer.
    const patchLabels = async (name: string, tier: string) => {
      const patched = await c.api("PATCH", `${resource.path(ns)}/${name}`, {
        metadata: { labels: { tier } },
      }, { contentType: "application/merge-patch+json" });
      churn.history.get(name)!.push(patched.metadata.resourceVersion);
    };
    await patchLabels(tierB[0], "a");
    await patchLabels(tierA[0], "c");
    await waitFor(
      () =>
        selected.store.has(objectKey(resource, ns, tierB[0])) &&
        !selected.store.has(objectKey(resource, ns, tierA[0])),
      {
        message: "the selector informer to follow the label changes",
      },
    );
    const types = (seen: Seen, name: string) =>
      seen.all.filter((e): e is StoreChange<KubeObject> =>
        isChange(e) && e.object.metadata?.name === name
      ).map((e) => e.type);
    assert.deepEqual(types(onlyA, tierB[0]), ["ADDED"]);
    assert.deepEqual(types(onlyA, tierA[0]), ["ADDED", "DELETED"]);

    await waitForSameState(() => all.store.values(), churn);
    assertOrdered(first, churn);
    assert.deepEqual(second.perObject, first.perObject, "both consumers saw the same events");

    // The stream lives while anyone listens, and closes with the last one.
    s1.unsubscribe();
    assert.equal(proxy.openWatches(/^(?!.*labelSelector)/), 1, "still one consumer of `all`");
    s2.unsubscribe();
    await waitFor(() => proxy.openWatches(/^(?!.*labelSelector)/) === 0, {
      message: "the unsubscribed informer's watch to close",
    });
    await all.closed();
    assert.equal(proxy.openWatches(/labelSelector=tier%3Da/), 1, "the other informer runs on");
    assert.equal(informers.size, 1);
    s3.unsubscribe();
    await waitFor(() => proxy.openWatches() === 0, { message: "all watches to close" });
    assert.equal(informers.size, 0);
  } finally {
    await informers.stop();
    transport.close();
    await proxy.close();
    await c.deleteNamespace(ns);
    await resource.drop();
  }
});
