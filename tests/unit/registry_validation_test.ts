// Registration rules: Kopf's (kopf.md §1.2b) plus our stricter checks; each invalid registration
// fails with one line naming the handler and the option, and registers nothing.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";

function fresh(): kopf.Registry {
  return new kopf.Registry();
}

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
