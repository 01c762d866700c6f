// Registration: the Kopf-style call forms, handler ids, recorded options, and validation errors
// (Kopf's rules from kopf.md §1.2b plus our stricter checks), each naming handler and option.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import type { ChangingHandler, DaemonHandler, TimerHandler } from "../../mod.ts";
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
  assert.equal(r.handlers[0].id, `lambda:registry_registration_test.ts:${Number(line) + 1}`);
  assert.match(
    r.handlers[0].source,
    /^kopf\.on\.create\(anonymous function at registry_registration_test\.ts:\d+\)$/,
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

Deno.test("the registry option and registry.on register into that registry, kopf.on into the global", () => {
  const previous = kopf.setDefaultRegistry(fresh());
  try {
    const mine = fresh();
    kopf.on.create("kex", { registry: mine }, function a() {});
    mine.on.create("kex", function b() {});
    kopf.on.create("kex", function c() {});
    assert.deepEqual(mine.handlers.map((h) => h.id), ["a", "b"]);
    assert.deepEqual(kopf.defaultRegistry().handlers.map((h) => h.id), ["c"]);
  } finally {
    kopf.setDefaultRegistry(previous);
  }
});

Deno.test("the global registry is shared through globalThis", () => {
  assert.equal(
    (globalThis as Record<symbol, unknown>)[Symbol.for("kopf.registry")],
    kopf.defaultRegistry(),
  );
});

Deno.test("registrations return the handler function", () => {
  const fn = function fn() {};
  assert.equal(fresh().on.create("kex", fn), fn);
  assert.equal(fresh().daemon("kex", {}, fn), fn);
});

// Each invalid registration throws a TypeError whose message names the registration and option.
const invalid: [string, (r: kopf.Registry) => unknown, RegExp][] = [
  [
    "value without field",
    (r) => r.on.create("kex", { value: 1 } as never, function fn() {}),
    /^kopf\.on\.create\(fn\): value filters need a field/,
  ],
  [
    "old without field",
    (r) => r.on.update("kex", { old: 1 }, function fn() {}),
    /kopf\.on\.update\(fn\): old filters need a field/,
  ],
  [
    "value with old/new",
    (r) => r.on.update("kex", { field: "a", value: 1, new: 2 }, function fn() {}),
    /either value or old\/new/,
  ],
  [
    "null label",
    (r) => r.on.create("kex", { labels: { app: null as never } }, function fn() {}),
    /labels\["app"\] is null; use kopf\.PRESENT or kopf\.ABSENT/,
  ],
  [
    "undefined annotation",
    (r) => r.on.create("kex", { annotations: { a: undefined as never } }, function fn() {}),
    /annotations\["a"\] is undefined/,
  ],
  [
    "numeric label",
    (r) => r.on.create("kex", { labels: { a: 1 as never } }, function fn() {}),
    /labels\["a"\] must be a string/,
  ],
  [
    "field required",
    (r) => r.on.field("kex", {} as never, function fn() {}),
    /kopf\.on\.field\(fn\): field is required/,
  ],
  [
    "unknown option",
    (r) => r.on.create("kex", { feild: "spec" } as never, function fn() {}),
    /unknown option "feild"; known options: .*field/,
  ],
  [
    "snake_case hint",
    (r) => r.daemon("kex", { initial_delay: 1 } as never, function fn() {}),
    /unknown option "initial_delay" \(did you mean "initialDelay"\?\)/,
  ],
  [
    "old on create",
    (r) => r.on.create("kex", { field: "a", old: 1 } as never, function fn() {}),
    /unknown option "old"/,
  ],
  [
    "optional on create",
    (r) => r.on.create("kex", { optional: true } as never, function fn() {}),
    /unknown option "optional"/,
  ],
  [
    "retries on event",
    (r) => r.on.event("kex", { retries: 1 } as never, function fn() {}),
    /kopf\.on\.event\(fn\): unknown option "retries"/,
  ],
  [
    "errors mode",
    (r) => r.on.create("kex", { errors: "sometimes" as never }, function fn() {}),
    /errors must be one of "temporary", "permanent", "ignored"/,
  ],
  [
    "zero retries",
    (r) => r.on.create("kex", { retries: 0 }, function fn() {}),
    /retries must be a positive integer/,
  ],
  [
    "negative timeout",
    (r) => r.on.create("kex", { timeout: -1 }, function fn() {}),
    /timeout must be a non-negative number of seconds/,
  ],
  [
    "zero interval",
    (r) => r.timer("kex", { interval: 0 }, function fn() {}),
    /interval must be a positive number/,
  ],
  [
    "sharp without interval",
    (r) => r.timer("kex", { sharp: true }, function fn() {}),
    /sharp needs an interval/,
  ],
  [
    "when not a function",
    (r) => r.on.create("kex", { when: true as never }, function fn() {}),
    /when must be a function/,
  ],
  [
    "empty id",
    (r) => r.on.create("kex", { id: "" }, function fn() {}),
    /id must be a non-empty string/,
  ],
  [
    "empty field",
    (r) => r.on.create("kex", { field: "" }, function fn() {}),
    /field must be a dotted path/,
  ],
  [
    "handler last",
    (r) => (r.on.create as (...a: unknown[]) => unknown)("kex", {}),
    /kopf\.on\.create\(…\): the handler function must be the last argument/,
  ],
  [
    "no selector",
    (r) => r.on.create({}, function fn() {}),
    /kopf\.on\.create\(fn\): Resource selector without a name/,
  ],
  [
    "ambiguous selector",
    (r) => r.on.create({ kind: "A", plural: "b" }, function fn() {}),
    /kopf\.on\.create\(fn\): Ambiguous resource selector/,
  ],
  [
    "too many selector args",
    (r) => (r.on.create as (...a: unknown[]) => unknown)("a", "b", "c", "d", function fn() {}),
    /too many positional arguments/,
  ],
  [
    "activity selector",
    (r) => (r.on.startup as (...a: unknown[]) => unknown)("kex", function fn() {}),
    /activities take no resource selector/,
  ],
  [
    "bad registry",
    (r) => r.on.create("kex", { registry: {} as never }, function fn() {}),
    /registry must be a kopf\.Registry/,
  ],
];

for (const [name, register, message] of invalid) {
  Deno.test(`invalid registration fails with a clear message: ${name}`, () => {
    const r = fresh();
    assert.throws(() => register(r), (error: unknown) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, message);
      assert.equal(error.message.includes("\n"), false, "one line");
      return true;
    });
    assert.equal(r.handlers.length, 0, "nothing registered");
  });
}
