// Handler kinds on the real API server: on.event (every raw event, in order, errors ignored,
// results written only when they change the status), update and field handlers (field-scoped
// old/new/diff; status changes are not updates), resume (once per object per start), and
// sub-handlers (run after the parent, retried until done, parent finishes with them).

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
const res = await testResource(c, "enginehandlers");
const MERGE = { contentType: "application/merge-patch+json" };
const SETTLE_MS = 1500;

Deno.test("on.event sees every raw event in order; errors are ignored; results written once", async () => {
  const ns = await c.namespace("events");
  await createObject(c, res, ns, "before", { n: 0 });
  const registry = new kopf.Registry();
  const seen: string[] = [];
  registry.on.event(res.plural, { id: "spy" }, ({ type, name, body }) => {
    seen.push(`${name}:${type}:${(body.spec as { n?: number }).n}`);
    return { seen: true };
  });
  registry.on.event(res.plural, { id: "failing" }, () => {
    throw new Error("this one always fails");
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await waitFor(() => seen.includes("before:null:0"), { message: "the listed object" });
    await createObject(c, res, ns, "after", { n: 1 });
    await waitFor(
      async () => (await getObject(c, res, ns, "after"))?.status?.spy?.seen === true,
      { message: "the spy's result" },
    );
    for (const n of [2, 3, 4]) {
      await c.api("PATCH", res.path(ns, "after"), { spec: { n } }, MERGE);
    }
    await waitFor(() => seen.includes("after:MODIFIED:4"), { message: "the last change" });
    await sleep(SETTLE_MS);
    const m0 = await c.metrics();
    await c.api("PATCH", res.path(ns, "after"), { spec: { n: 5 } }, MERGE);
    await waitFor(() => seen.includes("after:MODIFIED:5"), { message: "one more change" });
    await sleep(SETTLE_MS);
    const counts = (await c.metrics()).since(m0);
    assert.equal(writesTo(counts, res), 1, `the result is already there:\n${counts}`);

    await c.api("DELETE", res.path(ns, "after"));
    await waitFor(() => seen.includes("after:DELETED:5"), { message: "the deletion" });
    const own = seen.filter((s) => s.startsWith("after:"));
    const ns_ = own.map((s) => Number(s.split(":")[2]));
    assert.deepEqual([...ns_].sort((a, b) => a - b), ns_, `in order: ${own}`);
    assert.equal(own[0], "after:ADDED:1");
    for (const n of [2, 3, 4, 5]) assert.ok(own.includes(`after:MODIFIED:${n}`), `${own}`);
    const messages = objectMessages("after", ns);
    assert.ok(
      messages.some((m) =>
        m.startsWith("Handler 'failing' failed with an exception and will ignore it")
      ),
      messages.join("\n"),
    );
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("update and field handlers get field-scoped old/new/diff; status changes are no updates", async () => {
  const ns = await c.namespace("updates");
  const registry = new kopf.Registry();
  const updates: unknown[] = [];
  const fields: unknown[] = [];
  registry.on.create(res.plural, { id: "create_fn" }, () => ({ created: true }));
  registry.on.update(res.plural, { id: "update_fn" }, ({ diff, reason }) => {
    updates.push({ reason, diff: diff.map((d) => [...d]) });
  });
  registry.on.field(
    res.plural,
    { id: "size_fn", field: "spec.size" },
    ({ old, new: value, diff }) => {
      fields.push({ old, new: value, diff: diff.map((d) => [...d]) });
      return { size: value };
    },
  );
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "upd", { size: 1, other: "a" });
    await waitFor(async () => (await getObject(c, res, ns, "upd"))?.status?.create_fn);
    await c.api("PATCH", res.path(ns, "upd") + "/status", { status: { phase: "x" } }, MERGE);
    await c.api("PATCH", res.path(ns, "upd"), { spec: { other: "b" } }, MERGE);
    await waitFor(() => updates.length === 1, { message: "the first update" });
    await c.api("PATCH", res.path(ns, "upd"), { spec: { size: 2 } }, MERGE);
    // The field joins the id (Kopf's rule): `size_fn/spec.size`.
    await waitFor(async () =>
      (await getObject(c, res, ns, "upd"))?.status?.["size_fn/spec.size"]?.size === 2
    );
    await sleep(SETTLE_MS);
    assert.deepEqual(updates, [
      { reason: "update", diff: [["change", ["spec", "other"], "a", "b"]] },
      { reason: "update", diff: [["change", ["spec", "size"], 1, 2]] },
    ]);
    // Field handlers see the field appear on creation, as in Kopf.
    assert.deepEqual(fields, [
      { old: undefined, new: 1, diff: [["add", [], undefined, 1]] },
      { old: 1, new: 2, diff: [["change", [], 1, 2]] },
    ]);
    const messages = objectMessages("upd", ns);
    assert.equal(
      messages.filter((m) => m === "Updating is processed: 1 succeeded; 0 failed.").length,
      1,
    );
    assert.equal(
      messages.filter((m) => m === "Updating is processed: 2 succeeded; 0 failed.").length,
      1,
    );
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("resume handlers run once per object per operator start", async () => {
  const ns = await c.namespace("resume");
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create(res.plural, { id: "create_fn" }, ({ name }) => {
    calls.push(`create:${name}`);
  });
  registry.on.resume(res.plural, { id: "resume_fn" }, ({ name, reason }) => {
    calls.push(`resume:${name}:${reason}`);
  });
  registry.on.update(res.plural, { id: "update_fn" }, ({ name }) => {
    calls.push(`update:${name}`);
  });
  let operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "res", { size: 1 });
    await waitFor(() => calls.includes("create:res"));
    await sleep(SETTLE_MS);
    assert.deepEqual(calls, ["create:res"], "objects created while running are not resumed");
    await operator.stop();

    calls.length = 0;
    operator = await startOperator(c, { registry, namespaces: [ns] });
    await waitFor(() => calls.includes("resume:res:resume"), { message: "the resume" });
    await c.api("PATCH", res.path(ns, "res"), { spec: { size: 2 } }, MERGE);
    await waitFor(() => calls.includes("update:res"));
    await sleep(SETTLE_MS);
    assert.deepEqual(calls, ["resume:res:resume", "update:res"]);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("sub-handlers run after their parent, retry on their own, and finish the parent", async () => {
  const ns = await c.namespace("subhandlers");
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create(res.plural, { id: "parent" }, ({ spec, subhandler, retry }) => {
    calls.push(`parent#${retry}`);
    for (const item of spec.items as string[]) {
      subhandler({ id: `item-${item}` }, ({ retry }) => {
        calls.push(`${item}#${retry}`);
        if (item === "b" && retry < 1) {
          throw new kopf.TemporaryError("b is not ready", { delay: 1 });
        }
        return { item };
      });
    }
    kopf.subhandler({ id: "global" }, () => {
      calls.push(`global#${retry}`);
    });
    return { parent: "done" };
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "sub", { items: ["a", "b"] });
    const obj = await waitFor(async () => {
      const o = await getObject(c, res, ns, "sub");
      return o?.metadata.annotations?.["kopf.zalando.org/last-handled-configuration"] && o;
    }, { message: "the parent to finish" });
    // Kopf's default lifecycle (asap): one sub-handler per invocation of the parent, the least
    // retried first; the parent is invoked again for each (Kopf's docs, "Sub-handlers").
    assert.deepEqual(calls, [
      "parent#0",
      "a#0",
      "parent#1",
      "b#0",
      "parent#2",
      "global#2",
      "parent#3",
      "b#1",
    ]);
    assert.deepEqual(obj.status["parent/item-a"], { item: "a" });
    assert.deepEqual(obj.status["parent/item-b"], { item: "b" });
    assert.deepEqual(obj.status.parent, { parent: "done" });
    const leftovers = Object.keys(obj.metadata.annotations).filter((k) =>
      k !== "kopf.zalando.org/last-handled-configuration" && k.startsWith("kopf.zalando.org/")
    );
    assert.deepEqual(leftovers, [], "sub-handlers' records are purged with the parent's");
    const messages = objectMessages("sub", ns);
    assert.ok(messages.includes("Handler 'parent/item-b' failed temporarily: b is not ready"));
    assert.ok(messages.includes("Creation is processed: 1 succeeded; 0 failed."));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a foreign finalizer: deletion without ours is not ours to care about", async () => {
  const ns = await c.namespace("free");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "create_fn" }, () => {});
  registry.on.delete(res.plural, { id: "optional_fn", optional: true }, () => {});
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "free", {}, { finalizers: ["example.com/keep"] });
    await waitFor(async () =>
      (await getObject(c, res, ns, "free"))?.metadata.annotations?.[
        "kopf.zalando.org/last-handled-configuration"
      ]
    );
    const obj = await getObject(c, res, ns, "free");
    assert.deepEqual(obj!.metadata.finalizers, ["example.com/keep"], "optional: no finalizer");
    await c.api("DELETE", res.path(ns, "free"));
    await waitFor(() =>
      objectMessages("free", ns).includes("Deletion, but we are done with it, and we do not care.")
    );
  } finally {
    // Stopped first: a running operator would put its finalizer back.
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("persistence.finalizerFirst adds the finalizer in a write of its own first", async () => {
  const ns = await c.namespace("finalizer-first");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "create_fn" }, () => ({ ok: 1 }));
  registry.on.delete(res.plural, { id: "delete_fn" }, () => {});
  const settings = new kopf.Settings();
  settings.persistence.finalizerFirst = true;
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  try {
    const m0 = await c.metrics();
    await createObject(c, res, ns, "ff");
    await waitFor(async () => (await getObject(c, res, ns, "ff"))?.status?.create_fn);
    await sleep(SETTLE_MS);
    const counts = (await c.metrics()).since(m0);
    assert.equal(writesTo(counts, res), 3, `finalizer, then status and object:\n${counts}`);
  } finally {
    // Stopped first: a running operator would put its finalizer back.
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("an object leaving the label selector gets its finalizer released", async () => {
  const ns = await c.namespace("labels");
  const registry = new kopf.Registry();
  const labels = { app: "served" };
  registry.on.create(res.plural, { id: "create_fn", labels }, () => {});
  registry.on.delete(res.plural, { id: "delete_fn", labels }, () => {});
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "leaver", {}, { labels });
    await waitFor(async () =>
      (await getObject(c, res, ns, "leaver"))?.metadata.finalizers?.includes(
        "kopf.zalando.org/KopfFinalizerMarker",
      )
    );
    await c.api("PATCH", res.path(ns, "leaver"), { metadata: { labels: { app: "other" } } }, MERGE);
    await waitFor(async () => !(await getObject(c, res, ns, "leaver"))?.metadata.finalizers, {
      message: "the finalizer to be released",
    });
  } finally {
    // Stopped first: a running operator would put its finalizer back.
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});
