// KubeClient's typed helpers against the real API server: create, get, list pages, merge / JSON /
// server-side-apply patches on an object and its /status, delete with preconditions and
// propagation, and the typed errors the server's answers turn into. Request counts come from the
// API server's own metrics.
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.ts";
import { ApiError, type KubeStatus } from "../../src/kube/errors.ts";
import type { KubeObject, Resource } from "../../src/kube/resource.ts";
import { cluster } from "../support/cluster.ts";

// A CRD of the client tests' own (same shape as kopfexamples): other tests running against the
// same control plane never touch it, so the server's request counters for it are exact — except
// LIST and DELETE, which the namespace controller issues when test namespaces (ours too) go.
const PROBE_CRD = new URL("../support/fixtures/client_probe_crd.yaml", import.meta.url).pathname;
const KEX: Resource = {
  group: "kopf.dev",
  version: "v1",
  plural: "clientprobes",
  kind: "ClientProbe",
  singular: "clientprobe",
  shortcuts: ["cprobe"],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  subresources: ["status"],
};

interface Kex extends KubeObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    [k: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

async function setup(prefix: string) {
  const c = await cluster();
  await c.applyCrd(PROBE_CRD);
  const ns = await c.namespace(prefix);
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig });
  return {
    c,
    ns,
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      await c.deleteNamespace(ns);
    },
  };
}

Deno.test("create, get, list pages, replace and delete an object", async () => {
  await using t = await setup("client-crud");
  const { c, ns, client } = t;
  const before = await c.metrics();
  for (const name of ["a", "b", "c"]) {
    const created = await client.create<Kex>(KEX, {
      metadata: { name, namespace: ns, labels: { app: "crud" } },
      spec: { field: name },
    });
    assert.equal(created.apiVersion, "kopf.dev/v1");
    assert.equal(created.metadata.name, name);
  }
  const got = await client.get<Kex>(KEX, "b", { namespace: ns });
  assert.deepEqual(got.spec, { field: "b" });

  const page1 = await client.list<Kex>(KEX, { namespace: ns, labelSelector: "app=crud", limit: 2 });
  assert.equal(page1.items.length, 2);
  assert.ok(page1.metadata.continue, "a continue token for the rest");
  const page2 = await client.list<Kex>(KEX, {
    namespace: ns,
    limit: 2,
    continue: page1.metadata.continue,
  });
  assert.deepEqual(
    [...page1.items, ...page2.items].map((o) => o.metadata.name),
    ["a", "b", "c"],
  );
  assert.ok(!page2.metadata.continue, "no continue token on the last page");
  const everywhere = await client.list<Kex>(KEX, { labelSelector: "app=crud" });
  assert.ok(everywhere.items.length >= 3);

  const replaced = await client.replace<Kex>(KEX, "c", { ...page2.items[0], spec: { field: "C" } });
  assert.deepEqual(replaced.spec, { field: "C" });

  // Without finalizers the object goes at once and the server answers with a Status.
  const gone = await client.delete<KubeStatus>(KEX, "a", {
    namespace: ns,
    propagationPolicy: "Background",
  });
  assert.equal(gone.kind, "Status");
  assert.equal(gone.status, "Success");
  assert.equal(gone.details?.name, "a");
  await assert.rejects(
    client.get(KEX, "a", { namespace: ns }),
    (e) => e instanceof ApiError && e.status === 404,
  );

  const delta = (await c.metrics()).since(before);
  const count = (verb: string) => delta.count({ verb, resource: "clientprobes" });
  assert.equal(count("POST"), 3, delta.toString());
  assert.equal(count("GET"), 2, delta.toString());
  assert.ok(count("LIST") >= 3, delta.toString());
  assert.equal(count("PUT"), 1, delta.toString());
  assert.ok(count("DELETE") >= 1, delta.toString());
});

Deno.test("merge, JSON and apply patches on an object and its status", async () => {
  await using t = await setup("client-patch");
  const { c, ns, client } = t;
  const created = await client.create<Kex>(KEX, {
    metadata: { name: "p", namespace: ns },
    spec: { size: 1, keep: "me" },
  });
  const before = await c.metrics();

  // Merge patch: sets, keeps, and deletes (null) keys.
  const merged = await client.patch<Kex>(KEX, "p", { spec: { size: 2, extra: true, keep: null } }, {
    namespace: ns,
  });
  assert.deepEqual(merged.spec, { size: 2, extra: true });

  // JSON patch with a resourceVersion test: applies once, then conflicts as stale.
  const rv = merged.metadata.resourceVersion;
  const ops = [
    { op: "test", path: "/metadata/resourceVersion", value: rv },
    { op: "add", path: "/metadata/finalizers", value: ["kopf.zalando.org/KopfFinalizerMarker"] },
  ];
  const patched = await client.patch<Kex>(KEX, "p", ops, { namespace: ns, type: "json" });
  assert.deepEqual(patched.metadata.finalizers, ["kopf.zalando.org/KopfFinalizerMarker"]);
  const stale = await client.patch(KEX, "p", ops, { namespace: ns, type: "json" }).catch((e) => e);
  assert.ok(stale instanceof ApiError, String(stale));
  assert.equal(stale.status, 422);
  assert.match(stale.message, new RegExp(`^PATCH clientprobes.kopf.dev ${ns}/p: 422 Invalid: `));

  // Server-side apply with a field manager, then a conflicting one forced.
  const applied = await client.patch<Kex>(KEX, "p", {
    metadata: { name: "p" },
    spec: { applied: 1 },
  }, {
    namespace: ns,
    type: "apply",
    fieldManager: "kopf-a",
  });
  assert.equal(applied.spec?.applied, 1);
  const conflict = await client.patch(KEX, "p", { metadata: { name: "p" }, spec: { applied: 2 } }, {
    namespace: ns,
    type: "apply",
    fieldManager: "kopf-b",
  }).catch((e) => e);
  assert.ok(conflict instanceof ApiError && conflict.status === 409, String(conflict));
  assert.equal(conflict.reason, "Conflict");
  const forced = await client.patch<Kex>(KEX, "p", {
    metadata: { name: "p" },
    spec: { applied: 2 },
  }, {
    namespace: ns,
    type: "apply",
    fieldManager: "kopf-b",
    force: true,
  });
  assert.equal(forced.spec?.applied, 2);

  // The status subresource: the main endpoint ignores status, /status takes it.
  const ignored = await client.patch<Kex>(KEX, "p", { status: { via: "main" } }, { namespace: ns });
  assert.equal(ignored.status, undefined);
  const withStatus = await client.patch<Kex>(KEX, "p", { status: { via: "status" } }, {
    namespace: ns,
    subresource: "status",
  });
  assert.deepEqual(withStatus.status, { via: "status" });
  const statusApplied = await client.patch<Kex>(KEX, "p", {
    metadata: { name: "p" },
    status: { applied: true },
  }, {
    namespace: ns,
    subresource: "status",
    type: "apply",
    fieldManager: "kopf-status",
  });
  assert.equal(statusApplied.status?.applied, true);
  const status = await client.get<Kex>(KEX, "p", { namespace: ns, subresource: "status" });
  assert.deepEqual(status.status, { via: "status", applied: true });
  assert.equal(status.metadata.uid, created.metadata.uid);

  const delta = (await c.metrics()).since(before);
  const count = (verb: string, subresource?: string) =>
    delta.count({ verb, resource: "clientprobes", subresource: subresource ?? "" });
  assert.equal(count("PATCH"), 4, delta.toString()); // merge, json, stale json, merge (ignored)
  assert.equal(count("APPLY"), 3, delta.toString());
  assert.equal(count("PATCH", "status"), 1, delta.toString());
  assert.equal(count("APPLY", "status"), 1, delta.toString());
  assert.equal(count("GET", "status"), 1, delta.toString());

  // Clean up the finalizer so the namespace can go.
  await client.patch(KEX, "p", { metadata: { finalizers: null } }, { namespace: ns });
});

Deno.test("delete with preconditions and a finalizer-held object", async () => {
  await using t = await setup("client-delete");
  const { ns, client } = t;
  const created = await client.create<Kex>(KEX, {
    metadata: { name: "d", namespace: ns, finalizers: ["example.com/hold"] },
  });
  const wrongUid = await client.delete(KEX, "d", {
    namespace: ns,
    preconditions: { uid: "not-the-uid" },
  })
    .catch((e) => e);
  assert.ok(wrongUid instanceof ApiError, String(wrongUid));
  assert.equal(wrongUid.status, 409);
  assert.equal(wrongUid.reason, "Conflict");
  assert.match(
    wrongUid.message,
    new RegExp(
      `^DELETE clientprobes.kopf.dev ${ns}/d: 409 Conflict: .*the UID in the precondition \\(not-the-uid\\) does not match`,
    ),
  );

  // Held by the finalizer: the object comes back, marked for deletion.
  const marked = await client.delete<Kex>(KEX, "d", {
    namespace: ns,
    preconditions: { uid: created.metadata.uid },
    propagationPolicy: "Foreground",
  });
  assert.ok(marked.metadata.deletionTimestamp, JSON.stringify(marked.metadata));
  const released = await client.patch<Kex>(KEX, "d", { metadata: { finalizers: null } }, {
    namespace: ns,
  });
  assert.equal(released.metadata.name, "d");
});

Deno.test("the server's errors become typed ApiErrors naming verb and resource", async () => {
  await using t = await setup("client-errors");
  const { ns, client } = t;
  await client.create(KEX, { metadata: { name: "dup", namespace: ns } });

  const exists = await client.create(KEX, { metadata: { name: "dup", namespace: ns } }).catch((e) =>
    e
  );
  assert.ok(exists instanceof ApiError);
  assert.equal(exists.status, 409);
  assert.equal(exists.reason, "AlreadyExists");
  assert.equal(exists.details?.name, "dup");
  assert.equal(
    exists.message,
    `POST clientprobes.kopf.dev in ${ns}: 409 AlreadyExists: clientprobes.kopf.dev "dup" already exists`,
  );

  const missing = await client.get(KEX, "nope", { namespace: ns }).catch((e) => e);
  assert.ok(missing instanceof ApiError);
  assert.equal(
    missing.message,
    `GET clientprobes.kopf.dev ${ns}/nope: 404 NotFound: clientprobes.kopf.dev "nope" not found`,
  );

  const invalid = await client.create(KEX, { metadata: { name: "Not_Valid", namespace: ns } })
    .catch((e) => e);
  assert.ok(invalid instanceof ApiError);
  assert.equal(invalid.status, 422);
  assert.equal(invalid.reason, "Invalid");
  assert.ok(invalid.details?.causes?.length, JSON.stringify(invalid.details));

  const pods = { ...KEX, group: "", version: "v1", plural: "pods", kind: "Pod" };
  const badPod = await client.patch(pods, "x", { spec: {} }, { namespace: ns }).catch((e) => e);
  assert.ok(badPod instanceof ApiError);
  assert.match(
    badPod.message,
    new RegExp(`^PATCH pods ${ns}/x: 404 NotFound: pods "x" not found$`),
  );
});
