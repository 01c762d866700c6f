// Registry queries: filter order and laziness, reason/resume rules, deduplication, finalizer
// requirements, essence extra fields, server-side label selectors, and sub-handlers.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import type { KubeObject } from "../../mod.ts";
import { kex, pods } from "../support/engines.ts";
import type { ChangingHandler } from "../../src/registry/records.ts";
import { type ChangingMatchCause, selectChangingHandlers } from "../../src/registry/registry.ts";
import type { MatchCause } from "../../src/registry/matching.ts";
import { Subhandlers, withSubhandlers } from "../../src/registry/subhandlers.ts";

function cause(
  body: KubeObject,
  extra: Partial<ChangingMatchCause> = {},
): ChangingMatchCause & { built: number } {
  const result = {
    resource: kex,
    body,
    reason: "create",
    initial: false,
    essences: { old: null, new: { spec: body.spec ?? {} } },
    built: 0,
    context: () => {
      result.built++;
      return { body, spec: body.spec, name: body.metadata?.name };
    },
    ...extra,
  };
  return result;
}

Deno.test("filters run in Kopf's order and stop at the first mismatch; context built at most once", () => {
  const r = new kopf.Registry();
  const calls: string[] = [];
  r.on.create("kex", {
    labels: { a: (v: string | undefined) => (calls.push("labels"), v === "1") },
    annotations: { b: (v: string | undefined) => (calls.push("annotations"), v === "2") },
    field: "spec.x",
    value: (v: unknown) => (calls.push("value"), v === 3),
    when: () => (calls.push("when"), true),
  }, function fn() {});
  const c = cause({ metadata: { labels: { a: "1" }, annotations: { b: "2" } }, spec: { x: 3 } });
  assert.equal(r.selectChanging(c).length, 1);
  assert.deepEqual(calls, ["labels", "annotations", "value", "when"]);
  assert.equal(c.built, 1);

  calls.length = 0;
  const miss = cause({ metadata: { labels: { a: "0" } }, spec: { x: 3 } });
  assert.equal(r.selectChanging(miss).length, 0);
  assert.deepEqual(calls, ["labels"]);
});

Deno.test("no callbacks, no context: exact, PRESENT and ABSENT filters need no kwargs", () => {
  const r = new kopf.Registry();
  r.on.create("kex", { labels: { a: "1", b: kopf.PRESENT, c: kopf.ABSENT } }, function fn() {});
  const yes = cause({ metadata: { labels: { a: "1", b: "" } } });
  assert.equal(r.selectChanging(yes).length, 1);
  assert.equal(yes.built, 0);
  assert.equal(
    r.selectChanging(cause({ metadata: { labels: { a: "1", b: "", c: "x" } } })).length,
    0,
  );
  assert.equal(r.selectChanging(cause({ metadata: { labels: { a: "2", b: "" } } })).length, 0);
  assert.equal(r.selectChanging(cause({ metadata: { labels: { a: "1" } } })).length, 0);
});

Deno.test("field values match the new or the old essence; literals compare deeply", () => {
  const r = new kopf.Registry();
  r.on.create("kex", { field: "spec.items", value: ["a", "b"], id: "lit" }, function fn() {});
  r.on.create("kex", { field: "spec.gone", value: kopf.ABSENT, id: "absent" }, function fn() {});
  r.on.create("kex", { field: "spec.x", id: "exists" }, function fn() {});
  const c = cause({ metadata: {}, spec: {} }, {
    essences: { old: { spec: { x: 1, items: ["a", "b"] } }, new: { spec: { items: ["a"] } } },
  });
  assert.deepEqual(r.selectChanging(c).map((h) => h.id), [
    "lit/spec.items",
    "absent/spec.gone",
    "exists/spec.x",
  ]);
});

Deno.test("update/field handlers need the field to change and old/new filters to pass", () => {
  const r = new kopf.Registry();
  r.on.update("kex", { field: "spec.size", id: "any" }, function fn() {});
  r.on.update(
    "kex",
    { field: "spec.size", old: 1, new: (v: unknown) => v === 2, id: "oldnew" },
    function fn() {},
  );
  r.on.field("kex", { field: "spec.size", old: kopf.ABSENT, id: "added" }, function fn() {});
  const changed = (old: unknown, new_: unknown) =>
    cause({ metadata: {} }, {
      reason: "update",
      essences: { old: { spec: { size: old } }, new: { spec: { size: new_ } } },
    });
  assert.deepEqual(r.selectChanging(changed(1, 2)).map((h) => h.id), [
    "any/spec.size",
    "oldnew/spec.size",
  ]);
  assert.deepEqual(r.selectChanging(changed(1, 3)).map((h) => h.id), ["any/spec.size"]);
  assert.deepEqual(r.selectChanging(changed(1, 1)).map((h) => h.id), []);
  const added = cause({ metadata: {} }, {
    reason: "update",
    essences: { old: { spec: {} }, new: { spec: { size: 1 } } },
  });
  assert.deepEqual(r.selectChanging(added).map((h) => h.id), ["any/spec.size", "added/spec.size"]);
});

Deno.test("reasons: resume handlers only for initial causes, not on deletion unless asked", () => {
  const r = new kopf.Registry();
  r.on.create("kex", function on_create() {});
  r.on.resume("kex", function on_resume() {});
  r.on.resume("kex", { deleted: true }, function on_resume_deleted() {});
  r.on.delete("kex", function on_delete() {});
  const ids = (c: ChangingMatchCause) => r.selectChanging(c).map((h) => h.id);
  assert.deepEqual(ids(cause({ metadata: {} }, { reason: "create" })), ["on_create"]);
  assert.deepEqual(ids(cause({ metadata: {} }, { reason: "resume", initial: true })), [
    "on_resume",
    "on_resume_deleted",
  ]);
  assert.deepEqual(ids(cause({ metadata: {} }, { reason: "update", initial: true })), [
    "on_resume",
    "on_resume_deleted",
  ]);
  assert.deepEqual(ids(cause({ metadata: {} }, { reason: "update", initial: false })), []);
  const deleting = { metadata: { deletionTimestamp: "t" } };
  assert.deepEqual(ids(cause(deleting, { reason: "delete", initial: true })), [
    "on_resume_deleted",
    "on_delete",
  ]);
});

Deno.test("one function registered for create and resume runs once per cause", () => {
  const r = new kopf.Registry();
  function fn() {}
  r.on.create("kex", fn);
  r.on.resume("kex", fn);
  r.on.create("kex", { id: "other" }, fn);
  assert.deepEqual(
    r.selectChanging(cause({ metadata: {} }, { reason: "create", initial: true })).map((h) => h.id),
    [
      "fn",
      "other",
    ],
  );
});

Deno.test("handlers match only their resources", () => {
  const r = new kopf.Registry();
  r.on.create("pods", function fn() {});
  r.on.event("kopfexamples", function ev() {});
  assert.equal(r.selectChanging(cause({ metadata: {} })).length, 0);
  assert.equal(r.selectChanging(cause({ metadata: {} }, { resource: pods })).length, 1);
  assert.equal(r.hasHandlers(kex), true);
  assert.equal(r.hasHandlers(kex, "changing"), false);
  assert.equal(r.needsPatching(kex), false);
  assert.equal(r.needsPatching(pods), true);
  const plain: MatchCause = { resource: kex, body: { metadata: {} }, context: () => ({}) };
  assert.equal(r.selectWatching(plain).length, 1);
});

Deno.test("stealth mode: prematch ignores field changes but honours other filters", () => {
  const r = new kopf.Registry();
  r.on.update("kex", { labels: { app: "x" }, field: "spec.a" }, function fn() {});
  const unchanged = cause({ metadata: { labels: { app: "x" } }, spec: { a: 1 } }, {
    essences: { old: { spec: { a: 1 } }, new: { spec: { a: 1 } } },
  });
  assert.equal(r.prematchesChanging(unchanged), true);
  assert.equal(
    r.prematchesChanging(cause({ metadata: { labels: { app: "y" } }, spec: { a: 1 } })),
    false,
  );
});

Deno.test("finalizers: non-optional delete handlers that pre-match; daemons/timers only when asked", () => {
  const none = new kopf.Registry();
  none.on.create("kex", function fn() {});
  none.on.delete("kex", { optional: true }, function fn() {});
  none.daemon("kex", function d() {});
  assert.equal(none.requiresFinalizer(cause({ metadata: {} })), false);

  const deletes = new kopf.Registry();
  deletes.on.delete("kex", { labels: { app: "x" } }, function fn() {});
  assert.equal(deletes.requiresFinalizer(cause({ metadata: { labels: { app: "x" } } })), true);
  assert.equal(deletes.requiresFinalizer(cause({ metadata: { labels: { app: "y" } } })), false);

  const daemons = new kopf.Registry();
  daemons.daemon(
    "kex",
    { cancellationBackoff: 1, field: "spec.run", value: true },
    function d() {},
  );
  assert.equal(daemons.requiresFinalizer(cause({ metadata: {}, spec: { run: true } })), true);
  assert.equal(daemons.requiresFinalizer(cause({ metadata: {}, spec: { run: false } })), false);
  assert.equal(
    daemons.requiresFinalizer(
      cause({ metadata: {}, spec: { run: true } }),
      new Set(["d/spec.run"]),
    ),
    false,
  );
});

Deno.test("extra fields are the handlers' fields (not indexes')", () => {
  const r = new kopf.Registry();
  r.on.update("kex", { field: "status.phase" }, function a() {});
  r.on.field("kex", { field: "spec.x" }, function b() {});
  r.on.event("kex", { field: "status.phase" }, function c() {});
  r.index("kex", { field: "status.other" }, function d() {});
  assert.deepEqual(r.extraFields(kex), [["status", "phase"], ["spec", "x"]]);
});

Deno.test("server-side label selectors: only constraints shared by every handler", () => {
  const selector = (...labels: (Record<string, unknown> | undefined)[]) => {
    const r = new kopf.Registry();
    labels.forEach((l, i) =>
      r.on.create("kex", { id: `h${i}`, labels: l as never }, function fn() {})
    );
    r.on.create("pods", { labels: { unrelated: "1" } }, function fn() {});
    return r.labelSelector(kex);
  };
  assert.equal(selector({ app: "x" }), "app=x");
  assert.equal(selector({ app: "x", tier: kopf.PRESENT }), "app=x,tier");
  assert.equal(selector({ app: "x" }, { app: "y" }), "app in (x,y)");
  assert.equal(selector({ app: "x" }, { app: kopf.PRESENT }), "app");
  assert.equal(selector({ app: kopf.ABSENT }, { app: kopf.ABSENT, b: "1" }), "!app");
  assert.equal(selector({ app: kopf.ABSENT }, { app: "x" }), null);
  assert.equal(
    selector({ app: "x" }, undefined),
    null,
    "a handler without label filters sees everything",
  );
  assert.equal(selector({ app: "x" }, { other: "y" }), null);
  assert.equal(selector({ app: () => true }), null, "callbacks cannot be pushed");
  assert.equal(selector({ app: "not a valid value" }), null);
  assert.equal(new kopf.Registry().labelSelector(kex), null);
  // Every kind of handler counts: an event handler without labels disables the selector.
  const r = new kopf.Registry();
  r.on.create("kex", { labels: { app: "x" } }, function fn() {});
  r.on.event("kex", function ev() {});
  assert.equal(r.labelSelector(kex), null);
});

function parent(registry: kopf.Registry, kind: "create" | "update" = "create"): ChangingHandler {
  registry.on[kind]("kex", function parent_fn() {});
  return registry.handlers.at(-1) as ChangingHandler;
}

Deno.test("sub-handlers get parent/child ids and are selected by the same rules", () => {
  const collector = new Subhandlers(parent(new kopf.Registry()));
  const api = collector.api();
  api.subhandler({ id: "a", labels: { app: "x" } }, function child() {});
  api.register(function child_b() {});
  api.subhandler(function child_c() {});
  assert.deepEqual(collector.handlers.map((h) => h.id), [
    "parent_fn/a",
    "parent_fn/child_b",
    "parent_fn/child_c",
  ]);
  const selected = selectChangingHandlers(
    collector.handlers,
    cause({ metadata: { labels: { app: "y" } } }),
  );
  assert.deepEqual(selected.map((h) => h.id), ["parent_fn/child_b", "parent_fn/child_c"]);
});

Deno.test("sub-handler ids must be unique per invocation (e.g. lambdas in a loop)", () => {
  const collector = new Subhandlers(parent(new kopf.Registry()));
  const api = collector.api();
  const fn = function same() {};
  api.register(fn);
  api.register(fn); // the same function again is harmless
  assert.equal(collector.handlers.length, 1);
  assert.throws(() => {
    for (const item of ["a", "b"]) api.register(() => item);
  }, /sub-handler id 'parent_fn\/lambda:registry_matching_test\.ts:\d+' is registered twice/);
});

Deno.test("old/new filters on sub-handlers only under update and field handlers", () => {
  const create = new Subhandlers(parent(new kopf.Registry(), "create")).api();
  assert.throws(
    () => create.subhandler({ field: "spec.a", old: 1 }, function c() {}),
    /Handler 'parent_fn': subhandler\(c\): old\/new filters can only be used in sub-handlers of update and field handlers/,
  );
  const update = new Subhandlers(parent(new kopf.Registry(), "update"));
  update.api().subhandler({ field: "spec.a", old: 1 }, function c() {});
  assert.equal(update.handlers[0].fieldNeedsChange, true);
  assert.equal(update.handlers[0].id, "parent_fn/c", "no field suffix for sub-handlers (as Kopf)");
});

Deno.test("top-level kopf.subhandler/kopf.register find the running handler's collector", async () => {
  const collector = new Subhandlers(parent(new kopf.Registry()));
  await withSubhandlers(collector, async () => {
    await Promise.resolve();
    kopf.subhandler({ id: "x" }, function a() {});
    kopf.register(function b() {});
  });
  assert.deepEqual(collector.handlers.map((h) => h.id), ["parent_fn/x", "parent_fn/b"]);
  assert.throws(
    () => kopf.register(function c() {}),
    /kopf\.register\(\): sub-handlers can only be registered while a changing handler/,
  );
});
