// The Patch object handlers fill in, merging fragments into one body + one status patch,
// JSON-patches from fns; and the lifecycles.

import assert from "node:assert/strict";
import {
  allAtOnce,
  asap,
  LIFECYCLES,
  oneByOne,
  randomized,
  shuffled,
} from "../../src/settings/lifecycles.ts";
import {
  applyMergePatch,
  jsonPatchDiff,
  jsonPatchForFns,
  mergePatches,
  Patch,
  splitPatch,
} from "../../src/storage/patch.ts";
import type { RawBody } from "../../src/storage/fields.ts";

Deno.test("views write into one merge-patch; untouched views leave nothing behind", () => {
  const patch = new Patch();
  assert.equal(patch.isEmpty, true);
  void patch.metadata.labels; // reading a view alone must not produce a patch
  void patch.spec;
  assert.equal(patch.isEmpty, true);
  assert.deepEqual(patch.toMergePatch(), {});

  patch.metadata.labels.app = "x";
  patch.meta.annotations["example.com/a"] = null;
  patch.status.phase = "Ready";
  patch.spec.obsolete = null;
  patch.set("data.key", "v");
  assert.deepEqual(patch.toMergePatch(), {
    metadata: { labels: { app: "x" }, annotations: { "example.com/a": null } },
    status: { phase: "Ready" },
    spec: { obsolete: null },
    data: { key: "v" },
  });
  assert.equal(patch.get("status.phase"), "Ready");
  patch.unset("data.key");
  assert.equal(patch.get("data"), undefined);
  assert.equal(JSON.stringify(new Patch({ spec: { a: 1 } })), '{"spec":{"a":1}}');
});

Deno.test("explicitly written empty objects are kept (they create fields)", () => {
  const patch = new Patch();
  patch.status.conditions = {};
  assert.deepEqual(patch.toMergePatch(), { status: { conditions: {} } });
});

Deno.test("fns alone make a patch non-empty", () => {
  const patch = new Patch();
  patch.fns.push((body) => void body);
  assert.equal(patch.isEmpty, false);
});

Deno.test("fragments merge into one patch, later ones winning", () => {
  const user = new Patch();
  user.status.phase = "Ready";
  user.metadata.labels.a = "1";
  const merged = mergePatches(
    { metadata: { annotations: { "kopf.zalando.org/fn": '{"retries":1}' } } },
    { status: { create_fn: { message: "hi" } } },
    user,
    { metadata: { annotations: { "kopf.zalando.org/fn": null } } },
    null,
  );
  assert.deepEqual(merged, {
    metadata: { annotations: { "kopf.zalando.org/fn": null }, labels: { a: "1" } },
    status: { create_fn: { message: "hi" }, phase: "Ready" },
  });
});

Deno.test("status goes to its own patch only with a status subresource", () => {
  const patch = { metadata: { labels: { a: "1" } }, status: { phase: "X" } };
  assert.deepEqual(splitPatch(patch, true), {
    body: { metadata: { labels: { a: "1" } } },
    status: { status: { phase: "X" } },
  });
  assert.deepEqual(splitPatch(patch, false), { body: patch, status: null });
  assert.deepEqual(splitPatch({ status: { phase: "X" } }, true), {
    body: null,
    status: { status: { phase: "X" } },
  });
  assert.deepEqual(splitPatch({}, true), { body: null, status: null });
});

Deno.test("merge-patches apply as RFC 7386 says", () => {
  const target = { a: 1, b: { c: 2, d: 3 }, e: [1, 2] };
  applyMergePatch(target, { a: null, b: { c: null, x: 1 }, e: [3] });
  assert.deepEqual(target, { b: { d: 3, x: 1 }, e: [3] });
});

Deno.test("fns become a JSON-patch against the freshest body, guarded by resourceVersion", () => {
  const body: RawBody = {
    metadata: { resourceVersion: "5", finalizers: ["a", "b"] },
    spec: { x: 1 },
  };
  const ops = jsonPatchForFns(body, [
    (b) => {
      b.metadata!.finalizers = b.metadata!.finalizers!.filter((f) => f !== "a");
    },
    (b) => {
      (b.spec as { y?: number }).y = 2;
    },
  ]);
  assert.deepEqual(ops[0], { op: "test", path: "/metadata/resourceVersion", value: "5" });
  // Replaying the ops reproduces the transformed body.
  const replay = structuredClone(body) as Record<string, unknown>;
  for (const op of ops.slice(1)) applyOp(replay, op);
  assert.deepEqual(replay, {
    metadata: { resourceVersion: "5", finalizers: ["b"] },
    spec: { x: 1, y: 2 },
  });
  assert.deepEqual(jsonPatchForFns(body, [() => {}]), [], "no-op fns give no patch");
  assert.deepEqual(jsonPatchForFns(body, []), []);
  assert.deepEqual(jsonPatchDiff({ "a/b": 1 }, {}), [{ op: "remove", path: "/a~1b" }]);
});

Deno.test("admission JSON-patches include the merge part and the fns", () => {
  const patch = new Patch();
  patch.metadata.labels.x = "1";
  patch.fns.push((b) => void ((b.spec as Record<string, unknown>).z = true));
  const body: RawBody = { metadata: { resourceVersion: "1" }, spec: {} };
  assert.deepEqual(patch.asJsonPatch(body), [
    { op: "add", path: "/metadata/labels", value: { x: "1" } },
    { op: "add", path: "/spec/z", value: true },
  ]);
});

// A minimal RFC 6902 applier for the ops jsonPatchDiff produces (add/remove/replace).
function applyOp(doc: Record<string, unknown>, op: { op: string; path: string; value?: unknown }) {
  const parts = op.path.split("/").slice(1).map((p) =>
    p.replaceAll("~1", "/").replaceAll("~0", "~")
  );
  const last = parts.pop()!;
  let parent: Record<string, unknown> | unknown[] = doc;
  for (const p of parts) parent = (parent as Record<string, unknown>)[p] as Record<string, unknown>;
  if (Array.isArray(parent)) {
    if (op.op === "remove") parent.splice(Number(last), 1);
    else if (last === "-") parent.push(op.value);
    else parent[Number(last)] = op.value;
  } else if (op.op === "remove") {
    delete parent[last];
  } else {
    parent[last] = op.value;
  }
}

const handlers = [{ id: "a" }, { id: "b" }, { id: "c" }];
const retries = (map: Record<string, number>) => ({ retries: (id: string) => map[id] ?? 0 });

Deno.test("lifecycles select handlers as Kopf's do; allAtOnce is the default", () => {
  assert.deepEqual(allAtOnce(handlers, retries({})), handlers);
  assert.deepEqual(oneByOne(handlers, retries({})), [{ id: "a" }]);
  assert.deepEqual(
    asap(handlers, retries({ a: 2, b: 1, c: 1 })),
    [{ id: "b" }],
    "least retried, first registered",
  );
  assert.equal(randomized(handlers, retries({})).length, 1);
  assert.deepEqual(shuffled(handlers, retries({})).map((h) => h.id).sort(), ["a", "b", "c"]);
  assert.deepEqual(randomized([], retries({})), []);
  assert.deepEqual(asap([], retries({})), []);
  assert.deepEqual(Object.keys(LIFECYCLES).sort(), [
    "allAtOnce",
    "asap",
    "oneByOne",
    "randomized",
    "shuffled",
  ]);
});
