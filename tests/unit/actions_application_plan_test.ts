// What daemons and timers write: merge-patches that change nothing are not sent; status goes to
// /status with a status subresource; patch.fns become a guarded JSON-patch only if they change
// something.

import assert from "node:assert/strict";
import { Patch } from "../../src/storage/patch.ts";
import { mergePatchChanges, planWrite } from "../../src/actions/application.ts";
import { kex } from "../support/engines.ts";

Deno.test("mergePatchChanges follows RFC 7386", () => {
  const body = { status: { a: 1, list: [1, 2], nested: { x: "y" } }, spec: {} };
  assert.equal(mergePatchChanges(body, {}), false);
  assert.equal(mergePatchChanges(body, { status: { a: 1 } }), false);
  assert.equal(mergePatchChanges(body, { status: { list: [1, 2] } }), false);
  assert.equal(mergePatchChanges(body, { status: { list: [2, 1] } }), true);
  assert.equal(mergePatchChanges(body, { status: { gone: null } }), false);
  assert.equal(mergePatchChanges(body, { status: { a: null } }), true);
  assert.equal(mergePatchChanges(body, { status: { nested: { x: "y" } } }), false);
  assert.equal(mergePatchChanges(body, { status: { nested: { z: 1 } } }), true);
  assert.equal(mergePatchChanges(body, { spec: {} }), false);
  assert.equal(mergePatchChanges(body, { other: {} }), true, "an empty object is still created");
  assert.equal(mergePatchChanges(body, { status: { a: { b: 1 } } }), true);
});

Deno.test("planWrite splits status off and keeps only the halves that change something", () => {
  const body = { metadata: { name: "a", labels: { x: "1" } }, status: { t: { v: 1 } } };
  const patch = new Patch();
  patch.status.t = { v: 1 };
  patch.metadata.labels.x = "2";
  assert.deepEqual(planWrite(kex, [body], patch), {
    body: { metadata: { labels: { x: "2" } } },
    status: null,
    json: [],
  });
  const noStatusSubresource = { ...kex, subresources: [] };
  const patch2 = new Patch();
  patch2.status.t = { v: 2 };
  assert.deepEqual(planWrite(noStatusSubresource, [body], patch2).body, {
    status: { t: { v: 2 } },
  });
});

Deno.test("planWrite skips a part that is a no-op against any known state (e.g. our last write)", () => {
  const stale = { metadata: { name: "a" }, status: {} };
  const written = { metadata: { name: "a" }, status: { t: 1 } };
  const patch = new Patch();
  patch.status.t = 1;
  assert.equal(planWrite(kex, [stale], patch).status !== null, true);
  assert.equal(planWrite(kex, [stale, written], patch).status, null);
});

Deno.test("planWrite turns fns into a resourceVersion-guarded JSON-patch only if they change something", () => {
  const body = { metadata: { name: "a", resourceVersion: "7", finalizers: ["x"] } };
  const noop = new Patch({}, [(b) => void b]);
  assert.deepEqual(planWrite(kex, [body], noop).json, []);
  const change = new Patch({}, [(b) => b.metadata!.finalizers!.push("y")]);
  assert.deepEqual(planWrite(kex, [body], change).json, [
    { op: "test", path: "/metadata/resourceVersion", value: "7" },
    { op: "add", path: "/metadata/finalizers/-", value: "y" },
  ]);
});
