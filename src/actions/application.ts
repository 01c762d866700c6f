/**
 * Writing a cycle's outcome to the API server: at most one merge-patch of `/status` and one
 * write of the object.
 *
 * `/status` goes first: if the operator dies between the two writes, results are stored but the
 * handlers are not marked done, so they run again — at least once, never silently skipped.
 *
 * The object's write is a merge-patch, or — when finalizers change or handlers asked for
 * `patch.fns` — one JSON-patch holding everything, computed against the freshest known body and
 * guarded by a `test` of its resourceVersion, so that other controllers' finalizers are never
 * clobbered. When the test fails (409/422: the object changed meanwhile), the object is re-read
 * and the JSON-patch computed again. A 404 means the object is gone: nothing is left to write.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { KubeClient } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import type { Resource } from "../kube/resource.ts";
import { deepCopy, type JsonObject, type RawBody } from "../storage/fields.ts";
import { resourceVersionTest } from "../storage/finalizers.ts";
import { applyMergePatch, jsonPatchDiff, type PatchFn, splitPatch } from "./patch.ts";

/** How often a guarded JSON-patch is recomputed on a fresh body before giving up. */
const GUARDED_ATTEMPTS = 5;

/** What {@linkcode writeOutcome} writes. */
export interface OutcomeWrite {
  /** The client. */
  readonly client: Pick<KubeClient, "patch" | "get">;
  /** The object's resource. */
  readonly resource: Resource;
  /** The body the outcome was computed from (the cached one). */
  readonly body: RawBody;
  /** The merge-patch of the cycle (body and status parts together). */
  readonly patch: JsonObject;
  /** Transformations of the body sent as one guarded JSON-patch (finalizers, `patch.fns`). */
  readonly fns?: readonly PatchFn[];
  /** The object's logger. */
  readonly logger: Logger;
  /** Aborts the requests. */
  readonly signal?: AbortSignal;
}

/** What was written. */
export interface WrittenOutcome {
  /** The object as the last write returned it (`null` if nothing was written). */
  readonly object: RawBody | null;
  /** The object turned out to be gone (404). */
  readonly gone: boolean;
  /** Requests that changed the object (for budgets and logs). */
  readonly writes: number;
}

function isStatus(error: unknown, ...statuses: number[]): error is ApiError {
  return error instanceof ApiError && statuses.includes(error.status);
}

/**
 * Send the outcome: `/status` first (if the resource has that subresource and the patch touches
 * status), then the object. Nothing is sent for empty parts.
 */
export async function writeOutcome(input: OutcomeWrite): Promise<WrittenOutcome> {
  const { client, resource, body, logger, signal } = input;
  const fns = input.fns ?? [];
  const name = body.metadata?.name ?? "";
  const namespace = resource.namespaced ? body.metadata?.namespace : undefined;
  const split = splitPatch(input.patch, resource.subresources.includes("status"));
  let latest: RawBody | null = null;
  let writes = 0;

  try {
    if (split.status) {
      logger.debug("Patching the status with {patch}.", { patch: split.status });
      latest = await client.patch<RawBody>(resource, name, split.status, {
        namespace,
        subresource: "status",
        type: "merge",
        signal,
      });
      writes++;
    }

    if (fns.length) {
      let base: RawBody = latest ?? body;
      for (let attempt = 1;; attempt++) {
        const target = deepCopy(base);
        applyMergePatch(target, split.body ?? {});
        for (const fn of fns) fn(target);
        const ops = jsonPatchDiff(base, target);
        if (!ops.length) break;
        const guarded = [...resourceVersionTest(base), ...ops];
        logger.debug("Patching with {ops}.", { ops: guarded });
        try {
          latest = await client.patch<RawBody>(resource, name, guarded, {
            namespace,
            type: "json",
            signal,
          });
          writes++;
          break;
        } catch (error) {
          if (!isStatus(error, 409, 422) || attempt >= GUARDED_ATTEMPTS) throw error;
          // The object changed since it was read (or cannot take the change as it is now):
          // compute the patch again on what it is now.
          logger.debug("The object has changed meanwhile; re-reading it: {reason}", {
            reason: error.serverMessage,
          });
          base = await client.get<RawBody>(resource, name, { namespace, signal });
        }
      }
    } else if (split.body) {
      logger.debug("Patching with {patch}.", { patch: split.body });
      latest = await client.patch<RawBody>(resource, name, split.body, {
        namespace,
        type: "merge",
        signal,
      });
      writes++;
    }
  } catch (error) {
    if (isStatus(error, 404)) {
      logger.debug("Patching failed: the object is gone. Nothing to do.");
      return { object: null, gone: true, writes };
    }
    throw error;
  }
  return { object: latest, gone: false, writes };
}
