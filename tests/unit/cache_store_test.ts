// The informer's cache: latest state per key, no-op changes dropped, managedFields stripped.
import assert from "node:assert/strict";
import { ObjectStore, stripManagedFields } from "../../src/cache/store.ts";
import { obj, THINGS } from "../support/scripted_transport.ts";

// Keys are ObjectKeys: the resource's key, then namespace/name (or name).
const KEY = "things.v1.example.com";

Deno.test("ObjectStore keeps the latest state per object key and reports what changed", () => {
  const store = new ObjectStore(THINGS);
  const a1 = obj("a", "1");
  assert.deepEqual(store.apply({ type: "ADDED", object: a1, initial: true }), {
    type: "ADDED",
    key: `${KEY}/ns/a`,
    object: a1,
    previous: undefined,
    initial: true,
  });
  const a2 = obj("a", "2");
  const modified = store.apply({ type: "MODIFIED", object: a2, initial: false });
  assert.equal(modified?.type, "MODIFIED");
  assert.equal(modified?.previous, a1);
  assert.equal(store.get(`${KEY}/ns/a`), a2);
  assert.equal(store.getByName("a", "ns"), a2);
  assert.equal(store.size, 1);
});

Deno.test("ObjectStore drops a state it already has and deletions of unknown objects", () => {
  const store = new ObjectStore(THINGS);
  store.apply({ type: "ADDED", object: obj("a", "1"), initial: false });
  assert.equal(store.apply({ type: "MODIFIED", object: obj("a", "1"), initial: false }), undefined);
  assert.equal(store.apply({ type: "DELETED", object: obj("b", "1"), initial: false }), undefined);
});

Deno.test("ObjectStore announces its own last copy for a deletion whose final state is unknown", () => {
  const store = new ObjectStore(THINGS);
  const full = obj("a", "1", { spec: { x: 1 } });
  store.apply({ type: "ADDED", object: full, initial: true });
  const change = store.apply({
    type: "DELETED",
    object: obj("a", "1"),
    initial: false,
    finalStateUnknown: true,
  });
  assert.equal(change?.object, full);
  assert.equal(store.has(`${KEY}/ns/a`), false);
});

Deno.test("ObjectStore keys cluster-scoped objects by name", () => {
  const store = new ObjectStore(THINGS);
  store.apply({
    type: "ADDED",
    object: { metadata: { name: "n1", resourceVersion: "1" } },
    initial: true,
  });
  assert.deepEqual([...store.keys()], [`${KEY}/n1`]);
  assert.ok(store.getByName("n1"));
});

Deno.test("stripManagedFields() removes managedFields and keeps everything else", () => {
  const o = stripManagedFields({
    metadata: { name: "x", labels: { a: "b" }, managedFields: [{ manager: "kubectl" }] },
    spec: { y: 1 },
  });
  assert.deepEqual(o, { metadata: { name: "x", labels: { a: "b" } }, spec: { y: 1 } });
});
