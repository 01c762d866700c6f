// Progress and diff-base storages; byte-level expectations come from Python Kopf's own storages
// (tests/support/fixtures/storage_kopf_vectors.py).

import assert from "node:assert/strict";
import {
  AnnotationsDiffBaseStorage,
  essenceDigest,
  isDigestEssence,
  MultiDiffBaseStorage,
  StatusDiffBaseStorage,
} from "../../src/storage/diffbase.ts";
import type { JsonObject, RawBody } from "../../src/storage/fields.ts";
import {
  AnnotationsProgressStorage,
  type ProgressRecord,
  SmartProgressStorage,
  StatusProgressStorage,
} from "../../src/storage/progress.ts";

const kopf = JSON.parse(
  await Deno.readTextFile(
    new URL("../support/fixtures/storage_kopf_vectors.json", import.meta.url),
  ),
);
const body: RawBody = kopf.essence_body;
const record: ProgressRecord = kopf.progress_record;

Deno.test("essence matches Kopf's: no identity, no system metadata, no Kopf annotations, no status", () => {
  const storage = new AnnotationsDiffBaseStorage();
  assert.deepEqual(storage.build(body), kopf.essence);
  assert.deepEqual(storage.build(body, ["status.phase"]), kopf.essence_extra);
  const ignoring = new AnnotationsDiffBaseStorage({ ignoredFields: ["spec.nested.x", "data"] });
  assert.deepEqual(ignoring.build(body), kopf.essence_ignored);
});

Deno.test("progress storages clear their own fields from essences like Kopf's", () => {
  const essence = {
    ...kopf.essence_extra,
    status: { phase: "Running", kopf: { progress: { a: 1 } } },
  };
  assert.deepEqual(new SmartProgressStorage().clear(essence), kopf.progress_clear);
});

Deno.test("the diff-base is written byte-for-byte as Kopf writes it (ASCII-escaped, newline)", () => {
  const patch: JsonObject = {};
  new AnnotationsDiffBaseStorage().store(body, patch, { spec: { x: "ü", y: 1.5, z: [1, null] } });
  assert.deepEqual(patch, kopf.diffbase_patch);
});

Deno.test("the diff-base round-trips and corrupt JSON reads as absent", () => {
  const storage = new AnnotationsDiffBaseStorage();
  const patch: JsonObject = {};
  storage.store(body, patch, { spec: { a: 1 } });
  const annotations = (patch.metadata as { annotations: Record<string, string> }).annotations;
  assert.deepEqual(storage.fetch({ metadata: { annotations } }), { spec: { a: 1 } });
  const key = "kopf.zalando.org/last-handled-configuration";
  assert.equal(storage.fetch({ metadata: { annotations: { [key]: "{not json" } } }), null);
  assert.equal(storage.fetch({ metadata: { annotations: { [key]: "[1,2]" } } }), null);
  assert.equal(storage.fetch({ metadata: {} }), null);
});

Deno.test("an oversized diff-base degrades to a digest, and is skipped during deletion", () => {
  const storage = new AnnotationsDiffBaseStorage();
  const key = "kopf.zalando.org/last-handled-configuration";
  const big = { spec: { blob: "x".repeat(300 * 1024) } };

  const patch: JsonObject = {};
  storage.store({ metadata: { name: "n" } }, patch, big);
  const stored = (patch.metadata as { annotations: Record<string, string> }).annotations[key];
  const decoded = JSON.parse(stored);
  assert.ok(isDigestEssence(decoded));
  assert.equal(decoded["$kopf-digest"], essenceDigest(big));
  assert.ok(stored.length < 100);

  const deleting: JsonObject = {};
  storage.store(
    { metadata: { name: "n", deletionTimestamp: "2026-01-01T00:00:00Z" } },
    deleting,
    big,
  );
  assert.deepEqual(deleting, {});

  // Existing annotations count towards the limit too.
  const crowded: JsonObject = {};
  const annotations = { "example.com/big": "y".repeat(250 * 1024) };
  storage.store({ metadata: { annotations } }, crowded, { spec: { small: "z".repeat(10 * 1024) } });
  const crowdedValue =
    (crowded.metadata as { annotations: Record<string, string> }).annotations[key];
  assert.ok(isDigestEssence(JSON.parse(crowdedValue)));
});

Deno.test("the essence digest ignores key order and sees any change", () => {
  assert.equal(
    essenceDigest({ a: 1, b: { c: 2, d: 3 } }),
    essenceDigest({ b: { d: 3, c: 2 }, a: 1 }),
  );
  assert.notEqual(essenceDigest({ a: 1 }), essenceDigest({ a: 2 }));
  assert.notEqual(essenceDigest({ a: [1, 2] }), essenceDigest({ a: [2, 1] }));
});

Deno.test("status diff-base storage keeps a JSON string and excludes itself", () => {
  const storage = new StatusDiffBaseStorage();
  const patch: JsonObject = {};
  storage.store(body, patch, { spec: { a: 1 } });
  assert.deepEqual(patch, {
    status: { kopf: { "last-handled-configuration": '{"spec":{"a":1}}' } },
  });
  assert.deepEqual(storage.fetch(patch as RawBody), { spec: { a: 1 } });
  const essence = storage.build(
    { spec: { a: 1 }, status: { kopf: { "last-handled-configuration": "{}" } } },
    ["status.kopf"],
  );
  assert.deepEqual(essence, { spec: { a: 1 } });
});

Deno.test("multi diff-base storage writes to all and reads the first found", () => {
  const storage = new MultiDiffBaseStorage([
    new AnnotationsDiffBaseStorage(),
    new StatusDiffBaseStorage(),
  ]);
  const patch: JsonObject = {};
  storage.store(body, patch, { spec: { a: 1 } });
  assert.ok((patch.metadata as JsonObject).annotations);
  assert.ok(patch.status);
  assert.deepEqual(storage.fetch(patch as RawBody), { spec: { a: 1 } });
  assert.deepEqual(storage.build(body), kopf.essence);
});

Deno.test("progress records are stored as Kopf stores them (nulls dropped, ASCII-escaped)", () => {
  const patch: JsonObject = {};
  new SmartProgressStorage().store("create_fn/sub", record, body, patch);
  assert.deepEqual(patch, kopf.progress_store_patch);

  const marked: JsonObject = {};
  new AnnotationsProgressStorage({ prefix: "my-op.example.com" }).store(
    "create_fn",
    record,
    body,
    marked,
  );
  assert.deepEqual(marked, kopf.progress_store_patch_marked);
});

Deno.test("progress records are purged as Kopf purges them (annotations and legacy status)", () => {
  const storage = new SmartProgressStorage();
  const patch: JsonObject = {};
  storage.purge("create_fn", body, patch);
  storage.purge("fn", body, patch);
  assert.deepEqual(patch, kopf.progress_purge_patch);

  // A record only pending in the patch is dropped from the patch rather than nulled.
  const pending: JsonObject = {};
  storage.store("new_fn", record, { metadata: {} }, pending);
  storage.purge("new_fn", { metadata: {} }, pending);
  assert.deepEqual(pending, {});
});

Deno.test("progress fetch prefers annotations, falls back to legacy status, ignores corrupt JSON", () => {
  const storage = new SmartProgressStorage();
  assert.deepEqual(storage.fetch("fn", body), { retries: 1 });
  const annotated = {
    metadata: { annotations: { "kopf.zalando.org/fn": '{"retries":5}' } },
    status: body.status,
  };
  assert.deepEqual(storage.fetch("fn", annotated), { retries: 5 });
  const corrupt = { metadata: { annotations: { "kopf.zalando.org/fn": "{{" } } };
  assert.equal(storage.fetch("fn", corrupt), null);
  assert.equal(storage.fetch("absent", body), null);
});

Deno.test("the legacy status storage never writes, but a full status storage does", () => {
  const smart: JsonObject = {};
  new SmartProgressStorage().store("fn", { retries: 1 }, body, smart);
  assert.equal(smart.status, undefined);

  const status: JsonObject = {};
  new StatusProgressStorage().store("fn", { retries: 1 }, body, status);
  const stored = (status.status as JsonObject).kopf as JsonObject;
  assert.equal(((stored.progress as JsonObject).fn as JsonObject).retries, 1);
  assert.equal(((stored.progress as JsonObject).fn as JsonObject).message, null);
});

Deno.test("touch sets and clears the touch-dummy annotation only when it differs", () => {
  const storage = new AnnotationsProgressStorage();
  const patch: JsonObject = {};
  storage.touch({ metadata: {} }, patch, "2026-01-01T00:00:00");
  assert.deepEqual(patch, {
    metadata: { annotations: { "kopf.zalando.org/touch-dummy": "2026-01-01T00:00:00" } },
  });
  const same: JsonObject = {};
  storage.touch({ metadata: { annotations: { "kopf.zalando.org/touch-dummy": "t" } } }, same, "t");
  assert.deepEqual(same, {});
  const clear: JsonObject = {};
  storage.touch(
    { metadata: { annotations: { "kopf.zalando.org/touch-dummy": "t" } } },
    clear,
    null,
  );
  assert.deepEqual(clear, { metadata: { annotations: { "kopf.zalando.org/touch-dummy": null } } });
});
