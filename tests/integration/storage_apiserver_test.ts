// The patch fragments that storage, results and finalizers produce, sent to the real API server
// with the harness's own raw requests (independent of our client): the server accepts the
// mangled annotation keys, the status half goes to /status, our own writes cause no essential
// diff, finalizer JSON-patches are guarded by resourceVersion, and an oversized diff-base that
// Kopf would write (and the server reject) is degraded so the write goes through.

import { addFinalizer, removeFinalizer } from "../../src/actions/finalizers.ts";
import { jsonPatchForFns } from "../../src/storage/patch.ts";
import assert from "node:assert/strict";
import { computeEssences, detectReason } from "../../src/handling/causes.ts";
import { mergePatches, splitPatch } from "../../src/storage/patch.ts";
import { HandlerState, State } from "../../src/handling/progression.ts";
import { AnnotationsDiffBaseStorage, isDigestEssence } from "../../src/storage/diffbase.ts";
import { compactJson, type JsonObject, type RawBody } from "../../src/storage/fields.ts";
import { isDeletionBlocked } from "../../src/storage/finalizers.ts";
import { SmartProgressStorage } from "../../src/storage/progress.ts";
import { cluster, HarnessApiError } from "../support/cluster.ts";

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);

const MERGE = { contentType: "application/merge-patch+json" };
const JSON_PATCH = { contentType: "application/json-patch+json" };

async function createExample(
  namespace: string,
  spec: JsonObject,
): Promise<{ path: string; body: RawBody }> {
  const base = `/apis/kopf.dev/v1/namespaces/${namespace}/kopfexamples`;
  const body = await c.api("POST", base, {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name: "kex", labels: { app: "demo" }, annotations: { someannotation: "v" } },
    spec,
  });
  return { path: `${base}/kex`, body: body as RawBody };
}

Deno.test("storage patches are accepted as they are and cause no essential diff afterwards", async () => {
  const ns = await c.namespace("storage");
  try {
    const { path, body } = await createExample(ns, { size: 1 });
    const progressStorage = new SmartProgressStorage({ prefix: "my-operator.example.com" });
    const diffbaseStorage = new AnnotationsDiffBaseStorage({ prefix: "my-operator.example.com" });

    // A cycle's worth of writes: progress of a long sub-handler id (hashed V1/V2 keys), the
    // diff-base, results in status.
    const now = new Date();
    const longId = `create_fn/${"very-long-sub-handler-name-".repeat(3)}x`;
    const state = new State(new Map([[longId, HandlerState.fromScratch(now, "create")]]), "create");
    const storagePatch: JsonObject = {};
    state.store(body, storagePatch, progressStorage);
    const essences = computeEssences({ body, diffbaseStorage, progressStorage });
    assert.equal(
      detectReason({
        eventType: "ADDED",
        body,
        old: essences.old,
        diff: essences.diff,
        initial: false,
      }).reason,
      "create",
    );
    diffbaseStorage.store(body, storagePatch, essences.new);
    const merged = mergePatches(storagePatch, { status: { create_fn: { message: "hello" } } });
    const split = splitPatch(merged, true);
    assert.ok(split.body && split.status);

    await c.api("PATCH", path, split.body, MERGE);
    const patched = await c.api("PATCH", `${path}/status`, split.status, MERGE) as RawBody;

    const annotations = patched.metadata!.annotations!;
    assert.equal(annotations["my-operator.example.com/kopf-managed"], "yes");
    const keys = Object.keys(annotations).filter((k) =>
      k.startsWith("my-operator.example.com/create_fn")
    );
    assert.equal(keys.length, 2, `V1 and V2 keys: ${keys}`);
    assert.ok(keys.every((k) => k.split("/")[1].length <= 63));
    assert.deepEqual(progressStorage.fetch(longId, patched), state.get(longId)!.asStored());
    assert.deepEqual((patched.status as JsonObject).create_fn, { message: "hello" });

    // Our own annotations and status are not part of the essence: the next cycle sees no change.
    const after = computeEssences({ body: patched, diffbaseStorage, progressStorage });
    assert.deepEqual(after.diff, []);
    assert.equal(
      detectReason({
        eventType: "MODIFIED",
        body: patched,
        old: after.old,
        diff: after.diff,
        initial: false,
      }).reason,
      "noop",
    );

    // A real change is an update with a precise diff.
    const changed = await c.api("PATCH", path, { spec: { size: 2 } }, MERGE) as RawBody;
    const update = computeEssences({ body: changed, diffbaseStorage, progressStorage });
    assert.deepEqual(update.diff.map((d) => [...d]), [["change", ["spec", "size"], 1, 2]]);
  } finally {
    await c.deleteNamespace(ns);
  }
});

// The finalizer edits of actions/finalizers.ts, as the outcome writer sends them: one guarded
// JSON patch computed against the body at hand.
const FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";

Deno.test("finalizer JSON-patches add and remove only ours, and fail on a stale object", async () => {
  const ns = await c.namespace("finalizers");
  try {
    const { path, body } = await createExample(ns, {});
    await c.api("PATCH", path, [{
      op: "add",
      path: "/metadata/finalizers",
      value: ["example.com/other"],
    }], JSON_PATCH);
    const withOther = await c.api("GET", path) as RawBody;

    const blocked = await c.api(
      "PATCH",
      path,
      jsonPatchForFns(withOther, [addFinalizer(FINALIZER)]),
      JSON_PATCH,
    ) as RawBody;
    assert.deepEqual(blocked.metadata!.finalizers, [
      "example.com/other",
      "kopf.zalando.org/KopfFinalizerMarker",
    ]);

    // The body read before the other finalizer was added is stale: the resourceVersion test fails.
    await assert.rejects(
      () => c.api("PATCH", path, jsonPatchForFns(body, [addFinalizer(FINALIZER)]), JSON_PATCH),
      (e: unknown) => e instanceof HarnessApiError && e.status === 422,
    );

    await c.api("DELETE", path);
    const deleting = await c.api("GET", path) as RawBody;
    assert.ok(deleting.metadata!.deletionTimestamp);
    assert.equal(
      detectReason({ eventType: "MODIFIED", body: deleting, old: {}, diff: [], initial: false })
        .reason,
      "delete",
    );

    const released = await c.api(
      "PATCH",
      path,
      jsonPatchForFns(deleting, [removeFinalizer(FINALIZER)]),
      JSON_PATCH,
    ) as RawBody;
    assert.equal(isDeletionBlocked(released), false);
    assert.deepEqual(released.metadata!.finalizers, ["example.com/other"]);
    assert.equal(
      detectReason({ eventType: "MODIFIED", body: released, old: {}, diff: [], initial: false })
        .reason,
      "free",
    );
  } finally {
    await c.deleteNamespace(ns);
  }
});

Deno.test("an oversized diff-base degrades to a digest that the server accepts (Kopf's is rejected)", async () => {
  const ns = await c.namespace("bigdiffbase");
  try {
    const { path } = await createExample(ns, { blob: "x".repeat(150 * 1024), other: 1 });
    const diffbaseStorage = new AnnotationsDiffBaseStorage();
    const progressStorage = new SmartProgressStorage();

    // Another tool keeps a big annotation on the object too (it is part of the essence).
    await c.api("PATCH", path, {
      metadata: { annotations: { "example.com/copy": "y".repeat(100 * 1024) } },
    }, MERGE);
    const crowded = await c.api("GET", path) as RawBody;
    const essence = computeEssences({ body: crowded, diffbaseStorage, progressStorage }).new;

    // What Kopf writes: the whole essence in one annotation, which pushes the annotations past
    // 256 KiB: the API server rejects the PATCH (nolar/kopf#1087).
    const kopfStyle = {
      metadata: {
        annotations: { "kopf.zalando.org/last-handled-configuration": `${compactJson(essence)}\n` },
      },
    };
    await assert.rejects(
      () => c.api("PATCH", path, kopfStyle, MERGE),
      (e: unknown) => e instanceof HarnessApiError && e.status === 422,
    );

    const ours: JsonObject = {};
    diffbaseStorage.store(crowded, ours, essence);
    const stored = await c.api("PATCH", path, ours, MERGE) as RawBody;
    const fetched = diffbaseStorage.fetch(stored);
    assert.ok(isDigestEssence(fetched));

    // Changes are still detected; no change reads as no change.
    const same = computeEssences({ body: stored, diffbaseStorage, progressStorage });
    assert.equal(same.degraded, true);
    assert.equal(same.diff.length, 0);
    const changed = await c.api("PATCH", path, { spec: { other: 2 } }, MERGE) as RawBody;
    const update = computeEssences({ body: changed, diffbaseStorage, progressStorage });
    assert.ok(update.degraded && update.diff.length > 0);
  } finally {
    await c.deleteNamespace(ns);
  }
});
