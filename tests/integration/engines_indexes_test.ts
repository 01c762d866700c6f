// Indexes, activities, the health endpoint and login handlers in a real operator against the real
// API server: indexes filled from the listing before handlers run, probes and readiness over
// HTTP, startup/cleanup order and failures, credentials from kopf.on.login refreshed after a 401.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import { createObject, getObject, startOperator, testResource } from "../support/engine.ts";
import { waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "engineindexes");

Deno.test("indexes are built from the listing before other handlers run, and follow changes", async () => {
  const ns = await c.namespace("index");
  for (const [name, app] of [["a", "web"], ["b", "web"], ["c", "db"]]) {
    await createObject(c, res, ns, name, {}, { labels: { app } });
  }
  const registry = new kopf.Registry();
  registry.index(
    res.plural,
    { id: "by_app" },
    ({ labels, name }) => ({ [labels.app ?? ""]: name }),
  );
  registry.index(
    res.plural,
    { id: "tuples" },
    ({ namespace, name }) => new Map([[[namespace, name], true]]),
  );
  const seenAtCreate: string[][] = [];
  registry.on.create(res.plural, { id: "create_fn" }, ({ indices }) => {
    const byApp = indices.by_app as kopf.Index<string, string>;
    seenAtCreate.push([...(byApp.get("web") ?? [])].sort());
  });
  const timerSaw: number[] = [];
  registry.timer(res.plural, { id: "report", interval: 0.5 }, ({ indices, name }) => {
    timerSaw.push((indices.by_app as kopf.Index).size);
    const byApp = indices.by_app as kopf.Index<string, string>;
    const tuples = indices.tuples as kopf.Index<[string, string], boolean>;
    return { web: [...(byApp.get("web") ?? [])].sort(), self: tuples.has([ns, name]) };
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await waitFor(() => seenAtCreate.length === 3, { message: "the create handlers" });
    // Every handler saw the complete index of the initial listing.
    assert.deepEqual(seenAtCreate, [["a", "b"], ["a", "b"], ["a", "b"]]);
    assert.equal(timerSaw[0], 2, "timers start only once the indexes are built");
    await c.api("PATCH", res.path(ns, "c"), { metadata: { labels: { app: "web" } } }, {
      contentType: "application/merge-patch+json",
    });
    await waitFor(async () => {
      const o = await getObject(c, res, ns, "a");
      const report = o?.status?.report;
      return report?.self === true && JSON.stringify(report.web) === '["a","b","c"]';
    }, { message: "the timer to see c in the index" });
    await c.api("DELETE", res.path(ns, "b"));
    await waitFor(async () => {
      const o = await getObject(c, res, ns, "a");
      return JSON.stringify(o?.status?.report?.web) === JSON.stringify(["a", "c"]);
    }, { message: "b to leave the index" });
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("the health endpoint serves probes (with indexes) and readiness over HTTP", async () => {
  const ns = await c.namespace("health");
  await createObject(c, res, ns, "p1");
  await createObject(c, res, ns, "p2");
  const registry = new kopf.Registry();
  registry.index(res.plural, { id: "names" }, ({ name }) => name);
  let probes = 0;
  registry.on.probe({ id: "object_count" }, ({ indices }) => {
    probes += 1;
    return (indices.names as kopf.Index).get(null)?.size ?? 0;
  });
  registry.on.probe({ id: "status" }, () => ({ ok: true }));
  // Find a free port: the operator binds to the address given.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    liveness: `http://127.0.0.1:${port}/healthz`,
  });
  try {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200, JSON.stringify(await ready.json()));
    const live = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { object_count: 2, status: { ok: true } });
    const again = await fetch(`http://127.0.0.1:${port}/healthz`);
    await again.body?.cancel();
    assert.equal(probes, 1, "probe results are cached");
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), "the endpoint closes on stop");
});

Deno.test("startup runs before watching and may change settings; cleanup runs after stopping", async () => {
  const ns = await c.namespace("activities");
  const registry = new kopf.Registry();
  const order: string[] = [];
  registry.on.startup({ id: "retried" }, ({ retry }) => {
    order.push(`startup:${retry}`);
    if (retry < 2) throw new kopf.TemporaryError("not yet", { delay: 0.1 });
  });
  registry.on.startup({ id: "configure" }, ({ settings, memo }) => {
    settings.persistence.finalizer = "example.com/custom-finalizer";
    memo.shared = "from startup";
  });
  registry.on.cleanup(() => void order.push("cleanup"));
  registry.on.create(res.plural, { id: "create_fn" }, ({ memo }) => {
    order.push("create");
    return { memo: memo.shared };
  });
  registry.on.delete(res.plural, { id: "delete_fn" }, () => {});
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "s1");
    const obj = await waitFor(async () => {
      const o = await getObject(c, res, ns, "s1");
      return o?.status?.create_fn && o.metadata.finalizers?.length && o;
    }, { message: "the create handler" });
    assert.deepEqual(obj.status.create_fn, { memo: "from startup" });
    assert.deepEqual(obj.metadata.finalizers, ["example.com/custom-finalizer"]);
    assert.equal(order.includes("cleanup"), false);
  } finally {
    await operator.stop();
    await c.api("PATCH", res.path(ns, "s1"), { metadata: { finalizers: null } }, {
      contentType: "application/merge-patch+json",
    }).catch(() => {});
    await c.deleteNamespace(ns);
  }
  assert.deepEqual(order, ["startup:0", "startup:1", "startup:2", "create", "cleanup"]);
});

Deno.test("a startup handler failing for good stops the operator before it watches anything", async () => {
  const registry = new kopf.Registry();
  registry.on.startup({ id: "broken" }, () => {
    throw new kopf.PermanentError("Unable to start!");
  });
  registry.on.create(res.plural, () => {});
  const m0 = await c.metrics();
  await assert.rejects(
    kopf.run({ registry, clusterwide: true, kubeconfig: c.kubeconfig }),
    (error: unknown) =>
      error instanceof kopf.ActivityError && /Unable to start!/.test(error.message),
  );
  const counts = (await c.metrics()).since(m0);
  assert.equal(counts.count({ resource: res.plural }), 0, `${counts}`);
});

Deno.test("kopf.on.login credentials are used, and a 401 brings a new login", async () => {
  const ns = await c.namespace("login");
  const registry = new kopf.Registry();
  let logins = 0;
  registry.on.login({ id: "login_fn" }, () => {
    logins += 1;
    // The first credentials are wrong: the API server answers 401 and we log in again.
    return new kopf.ConnectionInfo({
      server: c.server,
      caData: c.caPem,
      token: logins === 1 ? "not-a-valid-token" : c.token,
      defaultNamespace: ns,
    });
  });
  registry.on.create(res.plural, { id: "create_fn" }, () => ({ via: "login" }));
  const controller = new AbortController();
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => ready = resolve);
  // No kubeconfig: the login handler is the only source of credentials.
  const done = kopf.run({ registry, namespaces: [ns], signal: controller.signal, ready });
  try {
    await Promise.race([isReady, done]);
    await createObject(c, res, ns, "l1");
    await waitFor(async () => (await getObject(c, res, ns, "l1"))?.status?.create_fn?.via, {
      message: "the handler's result written with the login's credentials",
    });
    assert.equal(logins, 2);
  } finally {
    controller.abort();
    await done;
    await c.deleteNamespace(ns);
  }
});
