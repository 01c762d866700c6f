// The API for handlers (`api`, src/kits/api.ts) against the real API server:
//
// - in a running operator (handed out by `kopf.run({ ready })`): reads of a watched resource come
//   from the operator's cache — counted: no GET reaches the API server — and stay consistent with
//   the operator's own writes (a read right after a patch sees the patch);
// - every verb on a resource the operator does not watch (ConfigMaps): create, get, list by label,
//   replace (with a stale resourceVersion: 409), merge/JSON/apply patches, watch, delete;
// - in handlers' contexts: a create handler creates an adopted child, a daemon lists them.
import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { Api } from "../../src/kits/api.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { Discovery } from "../../src/kube/discovery.ts";
import { ResolveError } from "../../src/kube/discovery.ts";
import { cluster, type RequestCounts } from "../support/cluster.ts";
import { createObject, startOperator, testResource } from "../support/engine.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "apiprobes");

/** GETs of one object kind in one namespace, as the API server counted them. */
function gets(counts: RequestCounts, plural: string): number {
  return counts.count({ verb: "GET", resource: plural });
}

Deno.test("api in a running operator: cached reads of watched objects, read-your-writes, counted", async () => {
  const ns = await c.namespace("api-cache");
  await createObject(c, res, ns, "a");
  await createObject(c, res, ns, "b");
  const registry = new kopf.Registry();
  registry.on.event(res.plural, function watched() {});
  const controller = new AbortController();
  let api!: kopf.Api;
  const ready = Promise.withResolvers<void>();
  const done = kopf.run({
    registry,
    namespaces: [ns],
    kubeconfig: c.kubeconfig,
    signal: controller.signal,
    ready: (operator) => {
      api = operator.api;
      ready.resolve();
    },
  });
  await Promise.race([ready.promise, done]);
  const ref = [res.group, res.version, res.plural];
  try {
    await api.resolve(ref); // discovery, once
    const m0 = await c.metrics();
    for (let i = 0; i < 5; i++) {
      const a = await api.get<kopf.KubeObject>(ref, "a", { namespace: ns });
      assert.equal(a.metadata?.name, "a");
    }
    // A miss in a cache holding the whole namespace is an absence: the API server's 404.
    await assert.rejects(
      api.get(ref, "nothing", { namespace: ns }),
      (error: unknown) => error instanceof kopf.ApiError && error.status === 404,
    );
    assert.equal(gets((await c.metrics()).since(m0), res.plural), 0, "answered from the cache");

    // Read-your-writes: the read right after a patch sees it, from the server if the cache lags.
    const m1 = await c.metrics();
    const patched = await api.patch<kopf.KubeObject>(ref, "a", {
      metadata: { labels: { touched: "yes" } },
    }, { namespace: ns });
    const readBack = await api.get<kopf.KubeObject>(ref, "a", { namespace: ns });
    assert.equal(readBack.metadata?.labels?.touched, "yes");
    assert.ok(
      Number(readBack.metadata?.resourceVersion) >= Number(patched.metadata?.resourceVersion),
    );
    assert.ok(gets((await c.metrics()).since(m1), res.plural) <= 1);

    // Once the watch has delivered the write, reads are the cache's again.
    await sleep(1000);
    const m2 = await c.metrics();
    for (let i = 0; i < 3; i++) {
      const a = await api.get<kopf.KubeObject>(ref, "a", { namespace: ns });
      assert.equal(a.metadata?.labels?.touched, "yes");
    }
    assert.equal(gets((await c.metrics()).since(m2), res.plural), 0);
    // `cached: false` always asks the server.
    await api.get(ref, "b", { namespace: ns, cached: false });
    assert.equal(gets((await c.metrics()).since(m2), res.plural), 1);

    // A deletion through the api: an immediate read says 404, though the cache may still hold it.
    await api.delete(ref, "b", { namespace: ns });
    await assert.rejects(
      api.get(ref, "b", { namespace: ns }),
      (error: unknown) => error instanceof kopf.ApiError && error.status === 404,
    );
    assert.equal(await api.delete(ref, "b", { namespace: ns, missingOk: true }), null);
  } finally {
    controller.abort();
    await done;
    await c.deleteNamespace(ns);
  }
});

Deno.test("api verbs on a resource the operator does not watch: create, get, list, replace, patch, apply, watch, delete", async () => {
  const ns = await c.namespace("api-verbs");
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig });
  const api = new Api({ client, discovery: new Discovery(client) });
  const stop = new AbortController();
  try {
    interface ConfigMap extends kopf.KubeObject {
      data?: Record<string, string>;
    }
    const events: string[] = [];
    const watching = (async () => {
      for await (
        const event of api.watch<ConfigMap>("configmaps", {
          namespace: ns,
          labelSelector: "app=api-test",
          signal: stop.signal,
        })
      ) {
        events.push(`${event.type}:${event.object.metadata?.name}:${event.object.data?.k ?? "-"}`);
      }
    })();

    const created = await api.create<ConfigMap>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "one", namespace: ns, labels: { app: "api-test" } },
      data: { k: "1" },
    });
    assert.equal(created.metadata?.uid?.length, 36);
    await api.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "other", namespace: ns },
    });
    const listed = await api.list<ConfigMap>("configmaps", {
      namespace: ns,
      labelSelector: "app=api-test",
    });
    assert.deepEqual(listed.map((x) => x.metadata?.name), ["one"]);

    // Replace: with the current resourceVersion it succeeds, with a stale one it conflicts.
    const replaced = await api.replace<ConfigMap>({ ...created, data: { k: "2" } });
    assert.equal(replaced.data?.k, "2");
    await assert.rejects(
      api.replace<ConfigMap>({ ...created, data: { k: "stale" } }),
      (error: unknown) => error instanceof kopf.ApiError && error.status === 409,
    );
    const merged = await api.patch<ConfigMap>({ apiVersion: "v1", kind: "ConfigMap" }, "one", {
      data: { k: "3" },
    }, { namespace: ns });
    assert.equal(merged.data?.k, "3");
    const jsoned = await api.patch<ConfigMap>("configmaps", "one", [
      { op: "replace", path: "/data/k", value: "4" },
    ], { namespace: ns, type: "json" });
    assert.equal(jsoned.data?.k, "4");
    const applied = await api.apply<ConfigMap>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "one", namespace: ns },
      data: { k: "5" },
    }, { force: true, fieldManager: "api-test" });
    assert.equal(applied.data?.k, "5");
    assert.ok(
      applied.metadata?.managedFields?.some((f) =>
        (f as { manager?: string }).manager === "api-test"
      ),
    );
    assert.equal(
      (await api.get<ConfigMap>("configmaps", "one", { namespace: ns })).data?.k,
      "5",
    );

    await api.delete("configmaps", "one", { namespace: ns });
    await waitFor(() => events.includes("DELETED:one:5"), { message: "the watch to see it all" });
    assert.deepEqual(events, [
      "ADDED:one:1",
      "MODIFIED:one:2",
      "MODIFIED:one:3",
      "MODIFIED:one:4",
      "MODIFIED:one:5",
      "DELETED:one:5",
    ]);
    await assert.rejects(
      api.get("configmaps", "one", { namespace: ns }),
      (error: unknown) => error instanceof kopf.ApiError && error.status === 404,
    );

    // Bad input: one clear line, no request.
    await assert.rejects(
      api.get("confgmaps", "x", { namespace: ns }),
      (error: unknown) =>
        error instanceof ResolveError && /did you mean: .*configmaps/.test(error.message),
    );
    await assert.rejects(
      api.create({ kind: "ConfigMap", metadata: { name: "x", namespace: ns } }),
      /api\.create\(\): the object needs apiVersion and kind/,
    );
    await assert.rejects(
      api.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }),
      /api\.create\(\): the ConfigMap x needs a namespace/,
    );
    stop.abort();
    await watching; // the watch ends when its signal aborts
  } finally {
    stop.abort();
    client.close();
    await c.deleteNamespace(ns);
  }
});

Deno.test("api in handlers: a create handler makes an adopted child, a daemon lists the children", async () => {
  const ns = await c.namespace("api-handlers");
  const registry = new kopf.Registry();
  const listedBy: Record<string, number> = {};
  registry.on.create(res.plural, { id: "child" }, async ({ api, body, signal }) => {
    const child = { apiVersion: "v1", kind: "ConfigMap", data: { owner: body.metadata.name! } };
    kopf.adopt(child, body);
    const created = await api.create(child, { signal });
    return { name: created.metadata?.name };
  });
  registry.daemon(res.plural, { id: "lister" }, async ({ api, name, namespace, stopped }) => {
    while (!stopped.isSet) {
      const children = await api.list<{ data?: Record<string, string> }>("configmaps", {
        namespace,
      });
      listedBy[name] = children.filter((x) => x.data?.owner === name).length;
      await stopped.wait(0.2);
    }
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "p1");
    await createObject(c, res, ns, "p2");
    await waitFor(() => listedBy.p1 === 1 && listedBy.p2 === 1, {
      message: "each daemon to list its object's one child",
    });
    const parent = await c.api("GET", res.path(ns, "p1"));
    const children = (await c.api("GET", `/api/v1/namespaces/${ns}/configmaps`)).items
      .filter((x: kopf.KubeObject) => x.metadata?.ownerReferences?.length);
    assert.equal(children.length, 2, "one child per parent, created once");
    const ofP1 = children.find((x: kopf.KubeObject) =>
      x.metadata?.ownerReferences?.[0]?.uid === parent.metadata.uid
    );
    assert.ok(ofP1, "the child is owned by its parent");
    assert.equal(parent.status?.child?.name, ofP1.metadata.name);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});
