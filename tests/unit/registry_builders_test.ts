// Handler records from registration calls: the Kopf-style selector forms, handler ids, and the
// options recorded with Kopf's semantics per decorator.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import type { ChangingHandler, DaemonHandler, TimerHandler } from "../../src/registry/records.ts";
import { callableId, generateId } from "../../src/registry/ids.ts";

function fresh(): kopf.Registry {
  return new kopf.Registry();
}

Deno.test("named functions give their names as ids; field handlers get the field suffix", () => {
  const r = fresh();
  function create_fn() {}
  const updateFn = () => {};
  r.on.create("kopfexamples", create_fn);
  r.on.update("kopfexamples", { field: "spec.size" }, updateFn);
  r.on.field("kopfexamples", { field: ["spec", "items"] }, create_fn);
  r.on.create("kopfexamples", { id: "explicit" }, create_fn);
  r.on.create("kopfexamples", create_fn.bind(null));
  r.index("kopfexamples", { field: "spec.x", id: "idx" }, create_fn);
  assert.deepEqual(r.handlers.map((h) => h.id), [
    "create_fn",
    "updateFn/spec.size",
    "create_fn/spec.items",
    "explicit",
    "create_fn",
    "idx", // Kopf does not suffix index ids
  ]);
  assert.equal(r.handlers[0].title, "Handler 'create_fn'");
});

Deno.test("anonymous functions get lambda:<file>:<line> of the registration call", () => {
  const r = fresh();
  const line = new Error().stack!.split("\n")[1].match(/:(\d+):\d+\)?$/)![1];
  r.on.create("kopfexamples", () => {}); // must stay on the line right after `line`
  assert.equal(r.handlers[0].id, `lambda:registry_builders_test.ts:${Number(line) + 1}`);
  assert.match(
    r.handlers[0].source,
    /^kopf\.on\.create\(anonymous function at registry_builders_test\.ts:\d+\)$/,
  );
});

Deno.test("the id rules compose: explicit id or name, /field suffix, parent/ prefix", () => {
  const fn = function fn() {};
  assert.equal(generateId({ fn, site: null }), "fn");
  assert.equal(
    generateId({ fn, id: "x", suffix: "spec.a", prefix: "p", site: null }),
    "p/x/spec.a",
  );
  assert.equal(callableId(() => {}, { file: "op.ts", line: 3 }), "lambda:op.ts:3");
  assert.throws(() => callableId(() => {}, null), /pass \{ id \}/);
});

Deno.test("every selector form is accepted; keyword selectors may come in the options", () => {
  const r = fresh();
  const fn = function fn() {};
  r.on.create("kopfexamples", fn);
  r.on.create("kopfexamples.kopf.dev", fn);
  r.on.create("kopf.dev", "kopfexamples", fn);
  r.on.create("kopf.dev/v1", "kopfexamples", fn);
  r.on.create("kopf.dev", "v1", "kopfexamples", { id: "x" }, fn);
  r.on.create("", "v1", "pods", fn);
  r.on.create({ group: "kopf.dev", kind: "KopfExample" }, fn);
  r.on.create({ group: "kopf.dev", plural: "kopfexamples" }, fn);
  r.on.create(kopf.EVERYTHING, fn);
  r.on.create((resource) => resource.group === "kopf.dev", fn);
  const selectors = r.handlers.map((h) => (h as ChangingHandler).selector!);
  assert.equal(selectors[1].group, "kopf.dev");
  assert.equal(selectors[4].version, "v1");
  assert.equal(selectors[6].kind, "KopfExample");
  assert.equal(selectors[7].plural, "kopfexamples");
  assert.equal(selectors[8].anyName, kopf.EVERYTHING);
  assert.equal(typeof selectors[9].fn, "function");
  assert.equal(r.selectors().length, 10);
});

Deno.test("options are recorded with Kopf's semantics per decorator", () => {
  const r = fresh();
  const fn = function fn() {};
  r.on.resume("kex", { deleted: true }, fn);
  r.on.create("kex", { errors: "permanent", timeout: 10, retries: 3, backoff: 1, param: 7 }, fn);
  r.on.update("kex", { field: "spec.a", old: 1, new: kopf.PRESENT }, fn);
  r.on.delete("kex", fn);
  r.on.delete("kex", { optional: true, id: "opt" }, fn);
  r.on.field("kex", { field: "spec.b", value: "x" }, fn);
  const [resume, create, update, del, optional, field] = r.handlers as ChangingHandler[];
  assert.deepEqual([resume.reason, resume.initial, resume.deleted], [null, true, true]);
  assert.deepEqual([
    create.reason,
    create.errors,
    create.timeout,
    create.retries,
    create.backoff,
    create.param,
  ], [
    "create",
    "permanent",
    10,
    3,
    1,
    7,
  ]);
  assert.deepEqual([update.reason, update.fieldNeedsChange, update.old, update.new], [
    "update",
    true,
    1,
    kopf.PRESENT,
  ]);
  assert.deepEqual([del.reason, del.requiresFinalizer], ["delete", true]);
  assert.equal(optional.requiresFinalizer, false);
  assert.deepEqual([field.reason, field.fieldNeedsChange, field.field, field.value], [null, true, [
    "spec",
    "b",
  ], "x"]);
});

Deno.test("daemons and timers ask for a finalizer only when they need cleanup time", () => {
  const r = fresh();
  const fn = function fn() {};
  r.daemon("kex", fn);
  r.daemon("kex", { id: "d2", cancellationBackoff: 5 }, fn);
  r.daemon("kex", { id: "d3", cancellationTimeout: 5, requiresFinalizer: false }, fn);
  r.timer("kex", { interval: 10, sharp: true, idle: 5, initialDelay: 1 }, fn);
  r.timer("kex", { id: "t2", interval: 10, requiresFinalizer: true }, fn);
  const [d1, d2, d3] = r.handlers as DaemonHandler[];
  const [t1, t2] = r.handlers.slice(3) as TimerHandler[];
  assert.deepEqual([d1.requiresFinalizer, d2.requiresFinalizer, d3.requiresFinalizer], [
    false,
    true,
    false,
  ]);
  assert.deepEqual([t1.requiresFinalizer, t1.interval, t1.sharp, t1.idle, t1.initialDelay], [
    false,
    10,
    true,
    5,
    1,
  ]);
  assert.equal(t2.requiresFinalizer, true);
  assert.equal(d1.title, "Daemon 'fn'");
  assert.equal(t1.title, "Timer 'fn'");
});

Deno.test("activities register without selectors", () => {
  const r = fresh();
  r.on.startup(function startup_fn() {});
  r.on.cleanup({ id: "bye", retries: 2 }, function cleanup_fn() {});
  r.on.login(function login_fn() {});
  r.on.probe(function probe_fn() {});
  assert.deepEqual(r.handlers.map((h) => [h.kind, h.id]), [
    ["activity", "startup_fn"],
    ["activity", "bye"],
    ["activity", "login_fn"],
    ["activity", "probe_fn"],
  ]);
  assert.deepEqual(r.activityHandlers("cleanup").map((h) => h.id), ["bye"]);
});
