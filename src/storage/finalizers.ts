/**
 * Finalizers: whether deletion is ongoing or blocked by ours, and the JSON-patches that add or
 * remove ours without touching other controllers' finalizers.
 *
 * Kopf merge-patched the whole `metadata.finalizers` list, clobbering finalizers added
 * concurrently by others (nolar/kopf#1106); it now uses a JSON-patch guarded by a
 * `test /metadata/resourceVersion` op, and so do we: a conflict fails the patch with 422
 * instead of losing someone's finalizer, and the next cycle retries on the fresh object.
 *
 * @module
 */

import type { RawBody } from "./fields.ts";

/** Kopf's finalizer name, shared with Python Kopf operators. */
export const DEFAULT_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";

/** One RFC 6902 JSON-patch operation. */
export interface JsonPatchOp {
  /** The operation. */
  op: "add" | "remove" | "replace" | "test" | "move" | "copy";
  /** A JSON pointer. */
  path: string;
  /** The value for add/replace/test. */
  value?: unknown;
  /** The source pointer for move/copy. */
  from?: string;
}

/** Whether the object is marked for deletion (has a `deletionTimestamp`). */
export function isDeletionOngoing(body: RawBody): boolean {
  return body.metadata?.deletionTimestamp !== undefined &&
    body.metadata?.deletionTimestamp !== null;
}

/** Whether our finalizer is on the object. */
export function isDeletionBlocked(body: RawBody, finalizer: string = DEFAULT_FINALIZER): boolean {
  const finalizers = body.metadata?.finalizers;
  return Array.isArray(finalizers) && finalizers.includes(finalizer);
}

/** Escape a key for a JSON pointer (RFC 6901). */
export function escapePointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** The guard op that makes a JSON-patch fail (422) if the object changed since it was read. */
export function resourceVersionTest(body: RawBody): JsonPatchOp[] {
  const rv = body.metadata?.resourceVersion;
  return rv === undefined ? [] : [{ op: "test", path: "/metadata/resourceVersion", value: rv }];
}
