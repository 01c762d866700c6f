// Our finalizer's edits: only ours added or removed, never on an object being deleted, and the
// guarded JSON patch the outcome writer makes of them (sent to the real server in
// tests/integration/storage_apiserver_test.ts).

import assert from "node:assert/strict";
import { addFinalizer, removeFinalizer } from "../../src/actions/finalizers.ts";
import { jsonPatchForFns } from "../../src/storage/patch.ts";
import type { RawBody } from "../../src/storage/fields.ts";
import { DEFAULT_FINALIZER } from "../../src/storage/finalizers.ts";

const OURS = DEFAULT_FINALIZER;

/** The object after the edits; the JSON patch made of them starts with the version test. */
function edited(body: RawBody, ...fns: ((b: RawBody) => void)[]): RawBody {
  assert.deepEqual(jsonPatchForFns(body, fns)[0], {
    op: "test",
    path: "/metadata/resourceVersion",
    value: body.metadata!.resourceVersion,
  });
  const copy = structuredClone(body);
  for (const fn of fns) fn(copy);
  return copy;
}

Deno.test("addFinalizer: ours after the others; nothing when present or while deleting", () => {
  const fresh: RawBody = { metadata: { resourceVersion: "7" } };
  assert.deepEqual(edited(fresh, addFinalizer(OURS)).metadata!.finalizers, [OURS]);
  const others: RawBody = { metadata: { resourceVersion: "8", finalizers: ["other/x"] } };
  assert.deepEqual(edited(others, addFinalizer(OURS)).metadata!.finalizers, ["other/x", OURS]);
  const ours: RawBody = { metadata: { resourceVersion: "9", finalizers: [OURS] } };
  assert.deepEqual(jsonPatchForFns(ours, [addFinalizer(OURS)]), []);
  const deleting: RawBody = {
    metadata: { resourceVersion: "9", deletionTimestamp: "2026-01-01T00:00:00Z" },
  };
  assert.deepEqual(jsonPatchForFns(deleting, [addFinalizer(OURS)]), []);
});

Deno.test("removeFinalizer: every occurrence of ours, the others kept in order", () => {
  const body: RawBody = {
    metadata: { resourceVersion: "9", finalizers: ["a", OURS, "b", OURS] },
  };
  assert.deepEqual(edited(body, removeFinalizer(OURS)).metadata!.finalizers, ["a", "b"]);
  const others: RawBody = { metadata: { resourceVersion: "8", finalizers: ["other/x"] } };
  assert.deepEqual(jsonPatchForFns(others, [removeFinalizer(OURS)]), []);
});
