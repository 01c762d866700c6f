// The watch survives a real restart of kube-apiserver (etcd keeps the data): no fault proxy, the
// harness stops and starts the process. Request counts are not asserted here — the API server's
// counters start from zero when it restarts.
import assert from "node:assert/strict";
import { Informers } from "../../src/cache/informer.ts";
import { cluster } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";
import {
  assertOrdered,
  Churn,
  connect,
  logIfAsked,
  probeResource,
  Seen,
  waitForSameState,
} from "../support/watch_fixtures.ts";

Deno.test("watch: survives an apiserver restart, nothing lost or reordered", async () => {
  await logIfAsked();
  const c = await cluster();
  const resource = await probeResource(c);
  const ns = await c.namespace("watch-restart");
  const transport = await connect(c.kubeconfig);
  const informers = new Informers(transport, { backoff: { initialMs: 200, maxMs: 2000 } });
  try {
    const churn = new Churn(c, resource, ns);
    let living = await churn.create(4);
    const informer = informers.get(resource, { namespace: ns });
    const seen = new Seen();
    informer.subscribe(seen.listener);
    await informer.waitForSync();
    living = await churn.round(2, living);
    await waitForSameState(() => informer.store.values(), churn);
    const errorsBefore = informer.stats!.errors;

    await c.restartApiserver();

    living = await churn.round(2, living);
    await churn.delete(living.slice(0, 2));
    await waitForSameState(() => informer.store.values(), churn, 120);
    assertOrdered(seen, churn);
    assert.ok(informer.stats!.errors > errorsBefore, "the restart was noticed");
    await waitFor(() => informer.healthy, { message: "the informer to be healthy again" });
  } finally {
    await informers.stop();
    transport.close();
    await c.deleteNamespace(ns);
    await resource.drop();
  }
});
