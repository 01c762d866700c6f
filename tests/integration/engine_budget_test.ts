// The engine's write budgets, counted by the real API server (its /metrics): what one object
// costs with one create handler, with create + delete handlers, with three create handlers, and
// what an idle operator costs. The resource is this file's own CRD, so other tests running on
// the same control plane do not add to the counts.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import {
  createObject,
  getObject,
  objectMessages,
  startOperator,
  stripFinalizers,
  testResource,
  writesTo,
} from "../support/engine.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "enginebudgets");
const FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";

// Writes that arrive after the handlers' results are visible would still be counted: settle.
const SETTLE_MS = 2000;

Deno.test("one create handler returning a value costs at most 2 writes", async () => {
  const ns = await c.namespace("budget-one");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "create_fn" }, () => ({ message: "hello" }));
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const m0 = await c.metrics();
    await createObject(c, res, ns, "one", { field: "value" });
    const obj = await waitFor(async () => {
      const o = await getObject(c, res, ns, "one");
      return o?.status?.create_fn?.message === "hello" &&
        o.metadata.annotations?.["kopf.zalando.org/last-handled-configuration"] && o;
    }, { message: "the result and the diff-base" });
    await sleep(SETTLE_MS);
    const counts = (await c.metrics()).since(m0);
    assert.ok(writesTo(counts, res) <= 2, `writes:\n${counts}`);
    assert.deepEqual(obj.metadata.finalizers ?? [], [], "no finalizer without delete handlers");
    assert.equal(
      JSON.parse(obj.metadata.annotations["kopf.zalando.org/last-handled-configuration"]).spec
        .field,
      "value",
    );
    const messages = objectMessages("one", ns);
    assert.ok(messages.includes("Handler 'create_fn' succeeded."), messages.join("\n"));
    assert.ok(messages.includes("Creation is processed: 1 succeeded; 0 failed."));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

for (const finalizerFirst of [true, false]) {
  // The finalizer first (the default): one write of its own before the first handler, so that an
  // object deleted while its create handler runs still gets its delete handler — 4 writes.
  // Without it, the finalizer goes with the first outcome — 3 writes, and that guarantee is lost.
  const budget = finalizerFirst ? 4 : 3;
  Deno.test(`create → delete with create + delete handlers, finalizerFirst=${finalizerFirst}: ≤ ${budget} writes, 0 Events`, async () => {
    const ns = await c.namespace("budget-del");
    const registry = new kopf.Registry();
    const deleted: string[] = [];
    registry.on.create(res.plural, { id: "create_fn" }, () => ({ message: "created" }));
    registry.on.delete(res.plural, { id: "delete_fn" }, ({ name }) => {
      deleted.push(name);
    });
    const settings = new kopf.Settings();
    settings.persistence.finalizerFirst = finalizerFirst;
    const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
    try {
      const m0 = await c.metrics();
      await createObject(c, res, ns, "two", { field: "value" });
      const handled = await waitFor(async () => {
        const o = await getObject(c, res, ns, "two");
        return o?.status?.create_fn?.message === "created" &&
          o.metadata.annotations?.["kopf.zalando.org/last-handled-configuration"] && o;
      }, { message: "the create handler's outcome" });
      assert.deepEqual(handled.metadata.finalizers, [FINALIZER], "the finalizer is there");
      await sleep(SETTLE_MS);
      await c.api("DELETE", res.path(ns, "two"));
      await waitFor(async () => (await getObject(c, res, ns, "two")) === null, {
        message: "the object to be deleted",
      });
      await sleep(SETTLE_MS);
      const counts = (await c.metrics()).since(m0);
      assert.deepEqual(deleted, ["two"]);
      assert.ok(writesTo(counts, res) <= budget, `writes:\n${counts}`);
      const events = await c.api("GET", `/api/v1/namespaces/${ns}/events`);
      assert.equal(
        events.items.length,
        0,
        JSON.stringify(events.items.map((e: kopf.KubeObject) => e.message)),
      );
      const messages = objectMessages("two", ns);
      assert.ok(messages.includes("Handler 'delete_fn' succeeded."), messages.join("\n"));
      assert.ok(messages.includes("Deletion is processed: 1 succeeded; 0 failed."));
    } finally {
      // Stopped first: a running operator would put its finalizer back.
      await operator.stop();
      await stripFinalizers(c, res, ns);
      await c.deleteNamespace(ns);
    }
  });
}

Deno.test("three create handlers cost no more writes than one", async () => {
  const ns = await c.namespace("budget-three");
  const registry = new kopf.Registry();
  const called: string[] = [];
  for (const id of ["first", "second", "third"]) {
    registry.on.create(res.plural, { id }, () => {
      called.push(id);
      return { id };
    });
  }
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const m0 = await c.metrics();
    await createObject(c, res, ns, "three");
    await waitFor(async () => {
      const o = await getObject(c, res, ns, "three");
      return o?.status?.third?.id === "third" &&
        o.metadata.annotations?.["kopf.zalando.org/last-handled-configuration"];
    }, { message: "all three results" });
    await sleep(SETTLE_MS);
    const counts = (await c.metrics()).since(m0);
    assert.deepEqual(called, ["first", "second", "third"], "in registration order, once each");
    assert.ok(writesTo(counts, res) <= 2, `writes:\n${counts}`);
    const obj = await getObject(c, res, ns, "three");
    const progress = Object.keys(obj!.metadata.annotations).filter((k) =>
      k.startsWith("kopf.zalando.org/") && k !== "kopf.zalando.org/last-handled-configuration"
    );
    assert.deepEqual(progress, [], "no progress records are left behind");
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("an idle operator makes no LISTs and no writes", async () => {
  const ns = await c.namespace("budget-idle");
  const registry = new kopf.Registry();
  // The label keeps this cluster-wide operator off the other tests' objects (and becomes a
  // server-side label selector).
  const labels = { "engine-test": "idle" };
  registry.on.create(res.plural, { id: "create_fn", labels }, () => ({ message: "hello" }));
  registry.on.update(res.plural, { id: "update_fn", labels }, () => {});
  registry.on.delete(res.plural, { id: "delete_fn", labels }, () => {});
  await createObject(c, res, ns, "idle-a", {}, { labels });
  await createObject(c, res, ns, "idle-b", {}, { labels });
  // Cluster-wide, so that its LISTs are told apart from the namespace controller's: deleting a
  // namespace (here or in any other test) LISTs every namespaced resource in it.
  const operator = await startOperator(c, { registry, clusterwide: true });
  try {
    for (const name of ["idle-a", "idle-b"]) {
      await waitFor(async () => (await getObject(c, res, ns, name))?.status?.create_fn, {
        message: `${name} to be handled`,
      });
    }
    await sleep(SETTLE_MS);
    const m0 = await c.metrics();
    await sleep(8000);
    const counts = (await c.metrics()).since(m0);
    assert.equal(
      counts.count({ verb: "LIST", resource: res.plural, scope: "cluster" }),
      0,
      `${counts}`,
    );
    assert.equal(writesTo(counts, res), 0, `${counts}`);
  } finally {
    // Stopped first: a running operator would put its finalizer back.
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});
