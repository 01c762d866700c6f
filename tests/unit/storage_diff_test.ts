// Diffs and cause detection; diff expectations come from Python Kopf's own `diffs.diff`
// (tests/support/fixtures/storage_kopf_vectors.py).

import assert from "node:assert/strict";
import { computeEssences, detectReason, type RawEventType } from "../../src/handling/causes.ts";
import { diff, diffItem, reduceDiff } from "../../src/storage/diff.ts";
import { AnnotationsDiffBaseStorage, essenceDigest } from "../../src/storage/diffbase.ts";
import type { RawBody } from "../../src/storage/fields.ts";
import { DEFAULT_FINALIZER } from "../../src/storage/finalizers.ts";
import { SmartProgressStorage } from "../../src/storage/progress.ts";

const kopf = JSON.parse(
  await Deno.readTextFile(
    new URL("../support/fixtures/storage_kopf_vectors.json", import.meta.url),
  ),
);

// Kopf writes None for missing sides; we use undefined. Compare as JSON (both become null).
function normalized(d: readonly unknown[]): string[] {
  return d.map((item) => JSON.stringify(item, (_k, v) => v === undefined ? null : v)).sort();
}

Deno.test("diff matches Kopf's (recursive objects, whole lists, null = absent)", () => {
  const ours = diff(kopf.diff_a, kopf.diff_b);
  assert.deepEqual(normalized(ours), normalized(kopf.diff));
});

Deno.test("reduced diffs match Kopf's, both below and above the field", () => {
  const full = diff(kopf.diff_a, kopf.diff_b);
  assert.deepEqual(normalized(reduceDiff(full, "spec.c")), normalized(kopf.reduce_spec_c));
  const fromRoot = diff(null, kopf.diff_b);
  assert.deepEqual(
    normalized(reduceDiff(fromRoot, ["spec", "c"])),
    normalized(kopf.reduce_from_root),
  );
  assert.deepEqual(reduceDiff(full, "spec.unrelated"), []);
});

Deno.test("diff items work as tuples and by name", () => {
  const [item] = diff({ a: 1 }, { a: 2 });
  const [op, field, old, new_] = item;
  assert.deepEqual([op, field, old, new_], ["change", ["a"], 1, 2]);
  assert.equal(item.operation, "change");
  assert.deepEqual(item.field, ["a"]);
  assert.equal(item.old, 1);
  assert.equal(item.new, 2);
  assert.equal(JSON.stringify(diffItem("add", ["x"], undefined, 1)), '["add",["x"],null,1]');
});

Deno.test("no diff for equal data regardless of key order; root-level add/remove", () => {
  assert.deepEqual(diff({ a: { b: 1, c: 2 } }, { a: { c: 2, b: 1 } }), []);
  assert.deepEqual(diff(null, undefined), []);
  assert.deepEqual([...diff(null, { a: 1 })[0]], ["add", [], undefined, { a: 1 }]);
  assert.deepEqual([...diff({ a: 1 }, null)[0]], ["remove", [], { a: 1 }, undefined]);
  assert.deepEqual([...diff("x", 1)[0]], ["change", [], "x", 1]);
});

function reason(
  eventType: RawEventType,
  body: RawBody,
  old: object | null,
  changed: boolean,
  initial = false,
) {
  return detectReason({
    eventType,
    body,
    old: old as never,
    diff: changed ? diff({}, { a: 1 }) : [],
    initial,
  });
}

Deno.test("cause reasons follow Kopf's order", () => {
  const blocked = { metadata: { deletionTimestamp: "t", finalizers: [DEFAULT_FINALIZER] } };
  const free = { metadata: { deletionTimestamp: "t", finalizers: ["other"] } };
  const live = { metadata: {} };
  // DELETED wins over everything.
  assert.equal(reason("DELETED", blocked, null, true).reason, "gone");
  assert.equal(reason("MODIFIED", free, {}, true).reason, "free");
  assert.equal(reason("MODIFIED", blocked, null, true).reason, "delete");
  assert.equal(reason("ADDED", live, null, false, true).reason, "create");
  assert.equal(reason("ADDED", live, null, false, true).initial, false, "creation never resumes");
  assert.equal(reason(null, live, {}, false, true).reason, "resume");
  assert.equal(reason(null, live, {}, false, false).reason, "noop");
  assert.equal(reason("MODIFIED", live, {}, true, true).reason, "update");
  assert.equal(reason("MODIFIED", live, {}, true, true).initial, true, "resume mixed into update");
  assert.equal(
    detectReason({
      eventType: "MODIFIED",
      body: { metadata: { deletionTimestamp: "t", finalizers: ["x/y"] } },
      finalizer: "x/y",
      old: {},
      diff: [],
      initial: false,
    }).reason,
    "delete",
  );
});

Deno.test("essences are computed against the stored diff-base, ignoring own storage fields", () => {
  const diffbaseStorage = new AnnotationsDiffBaseStorage();
  const progressStorage = new SmartProgressStorage();
  const body: RawBody = {
    metadata: {
      name: "x",
      annotations: {
        "kopf.zalando.org/last-handled-configuration": '{"spec":{"size":1}}\n',
        "kopf.zalando.org/create_fn": '{"retries":1}',
      },
    },
    spec: { size: 2 },
    status: { phase: "A" },
  };
  const e = computeEssences({
    body,
    diffbaseStorage,
    progressStorage,
    extraFields: ["status.phase"],
  });
  assert.deepEqual(e.old, { spec: { size: 1 } });
  assert.deepEqual(e.new, { spec: { size: 2 }, status: { phase: "A" } });
  assert.deepEqual(
    normalized(e.diff),
    normalized([
      ["add", ["status"], null, { phase: "A" }],
      ["change", ["spec", "size"], 1, 2],
    ]),
  );
  assert.equal(e.degraded, false);

  const fresh = computeEssences({
    body: { metadata: {}, spec: {} },
    diffbaseStorage,
    progressStorage,
  });
  assert.equal(fresh.old, null);
});

Deno.test("a digest diff-base detects changes without per-field diffs", () => {
  const diffbaseStorage = new AnnotationsDiffBaseStorage();
  const progressStorage = new SmartProgressStorage();
  const spec = { size: 1 };
  const digest = JSON.stringify({ "$kopf-digest": essenceDigest({ spec }) });
  const key = "kopf.zalando.org/last-handled-configuration";
  const same = computeEssences({
    body: { metadata: { annotations: { [key]: digest } }, spec },
    diffbaseStorage,
    progressStorage,
  });
  assert.equal(same.degraded, true);
  assert.deepEqual(same.diff, []);
  assert.deepEqual(same.old, { spec });
  const changed = computeEssences({
    body: { metadata: { annotations: { [key]: digest } }, spec: { size: 2 } },
    diffbaseStorage,
    progressStorage,
  });
  assert.deepEqual(changed.old, {});
  assert.deepEqual(normalized(changed.diff), normalized([["add", ["spec"], null, { size: 2 }]]));
});
