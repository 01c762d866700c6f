// The local control plane itself: what every other integration test relies on.
import assert from "node:assert/strict";
import { cluster, HarnessApiError } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

Deno.test("the control plane serves the kopfexamples CRD and counts requests", async () => {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const ns = await c.namespace("cluster-crd");
  try {
    const before = await c.metrics();
    await c.apply(c.kopfExampleCrd.replace("crd.yaml", "obj.yaml"), { namespace: ns });
    const got = await c.api(
      "GET",
      `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/kopf-example-1`,
    );
    assert.equal(got.spec.field, "value");
    const after = await c.metrics();
    const delta = after.since(before);
    assert.equal(delta.count({ verb: "APPLY", resource: "kopfexamples" }), 1, delta.toString());
    assert.equal(delta.count({ verb: "GET", resource: "kopfexamples" }), 1, delta.toString());
  } finally {
    await c.deleteNamespace(ns);
  }
});

Deno.test("the controller manager deletes namespaces and collects owned objects", async () => {
  const c = await cluster();
  const ns = await c.namespace("cluster-gc");
  const owner = await c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
    metadata: { name: "owner" },
  });
  await c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
    metadata: {
      name: "child",
      ownerReferences: [{
        apiVersion: "v1",
        kind: "ConfigMap",
        name: "owner",
        uid: owner.metadata.uid,
      }],
    },
  });
  await c.api("DELETE", `/api/v1/namespaces/${ns}/configmaps/owner`);
  await waitFor(async () => {
    try {
      await c.api("GET", `/api/v1/namespaces/${ns}/configmaps/child`);
      return false;
    } catch (error) {
      return error instanceof HarnessApiError && error.status === 404;
    }
  }, { timeout: 90, message: "the garbage collector to delete the owned ConfigMap" });

  await c.deleteNamespace(ns);
  await waitFor(async () => {
    try {
      await c.api("GET", `/api/v1/namespaces/${ns}`);
      return false;
    } catch (error) {
      return error instanceof HarnessApiError && error.status === 404;
    }
  }, { timeout: 90, message: `namespace ${ns} to be deleted` });
});
