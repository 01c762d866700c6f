import assert from "node:assert/strict";
import {
  apiVersion,
  describePath,
  parsePath,
  resourceKey,
  resourcePath,
} from "../../src/kube/resource.ts";

const KEX = { group: "kopf.dev", version: "v1", plural: "kopfexamples", namespaced: true };
const PODS = { group: "", version: "v1", plural: "pods", namespaced: true };
const NODES = { group: "", version: "v1", plural: "nodes", namespaced: false };
const CRDS = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
  namespaced: false,
};

Deno.test("resourcePath() builds collection, object and subresource paths", () => {
  assert.equal(resourcePath(KEX), "/apis/kopf.dev/v1/kopfexamples");
  assert.equal(
    resourcePath(KEX, { namespace: "ns" }),
    "/apis/kopf.dev/v1/namespaces/ns/kopfexamples",
  );
  assert.equal(
    resourcePath(KEX, { namespace: "ns", name: "kex-1" }),
    "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/kex-1",
  );
  assert.equal(
    resourcePath(KEX, { namespace: "ns", name: "kex-1", subresource: "status" }),
    "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/kex-1/status",
  );
  assert.equal(resourcePath(PODS, { namespace: "default" }), "/api/v1/namespaces/default/pods");
  assert.equal(resourcePath(NODES, { name: "node-1" }), "/api/v1/nodes/node-1");
  assert.equal(
    resourcePath(CRDS, { name: "kopfexamples.kopf.dev" }),
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/kopfexamples.kopf.dev",
  );
});

Deno.test("resourcePath() escapes names and rejects unsafe segments", () => {
  assert.equal(resourcePath(NODES, { name: "a b/c" }), "/api/v1/nodes/a%20b%2Fc");
  assert.throws(() => resourcePath(NODES, { name: ".." }), /invalid name/);
  assert.throws(() => resourcePath(NODES, { name: "" }), /invalid name/);
});

Deno.test("resourcePath() follows Kopf's rules for namespaces and subresources", () => {
  assert.throws(() => resourcePath(PODS, { subresource: "status" }), /needs an object name/);
  assert.throws(() => resourcePath(NODES, { namespace: "ns" }), /nodes.v1 is cluster-scoped/);
  assert.throws(() => resourcePath(PODS, { name: "web" }), /pods.v1 is namespaced/);
});

Deno.test("apiVersion() and resourceKey()", () => {
  assert.equal(apiVersion(KEX), "kopf.dev/v1");
  assert.equal(apiVersion(PODS), "v1");
  assert.equal(resourceKey(KEX), "kopfexamples.v1.kopf.dev");
  assert.equal(resourceKey(PODS), "pods.v1");
});

Deno.test("parsePath() and describePath() read resource paths back", () => {
  assert.deepEqual(parsePath("/apis/kopf.dev/v1/namespaces/ns/kopfexamples/n/status?x=1"), {
    group: "kopf.dev",
    version: "v1",
    plural: "kopfexamples",
    namespace: "ns",
    name: "n",
    subresource: "status",
  });
  assert.deepEqual(parsePath("/api/v1/namespaces/kube-system"), {
    group: "",
    version: "v1",
    plural: "namespaces",
    namespace: undefined,
    name: "kube-system",
    subresource: undefined,
  });
  assert.equal(parsePath("/apis"), undefined);
  assert.equal(parsePath("/apis/kopf.dev/v1"), undefined);
  assert.equal(describePath("/api/v1/nodes/a%20b"), "nodes a b");
  assert.equal(describePath("/apis/kopf.dev/v1/kopfexamples"), "kopfexamples.kopf.dev");
  assert.equal(describePath("/healthz?verbose"), "/healthz");
  // Round trip.
  for (
    const location of [{}, { namespace: "a" }, { namespace: "a", name: "b", subresource: "status" }]
  ) {
    const parts = parsePath(resourcePath(KEX, location))!;
    assert.equal(parts.plural, "kopfexamples");
    assert.equal(parts.namespace, (location as { namespace?: string }).namespace);
  }
});
