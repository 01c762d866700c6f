/**
 * Writing outcomes to the API server — the one writer of handlers' results, progress, patches and
 * finalizer edits: at most one merge-patch of `/status` and one write of the object per outcome.
 * Handlers' results go into the patch first (`status.<id>`, {@linkcode deliverResults}).
 *
 * Daemons, timers and event handlers write only what would change the object
 * ({@linkcode PatchWriter}, {@linkcode planWrite}): Kopf PATCHes after every tick that returns a
 * value, so a timer returning the same value every second PATCHes every second (and every PATCH
 * fans out to every watcher of the resource).
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
import type { KubeObject, Resource } from "../kube/resource.ts";
import { deepCopy, deepEqual, isObject, type JsonObject, type RawBody } from "../storage/fields.ts";
import type { JsonPatchOp } from "../storage/finalizers.ts";
import { resourceVersionTest } from "../storage/finalizers.ts";
import {
  applyMergePatch,
  jsonPatchDiff,
  jsonPatchForFns,
  mergePatches,
  type Patch,
  type PatchFn,
  splitPatch,
} from "../storage/patch.ts";
import type { Outcome } from "./errors.ts";

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

/**
 * Say (Kopf's warning, in Kopf's notation) where the object the server returned differs from what
 * was patched into it: e.g. results of a kind without a status (a ConfigMap) or fields a CRD's
 * schema prunes — dropped by the server, and so lost.
 */
function warnInconsistencies(patch: JsonObject, object: unknown, logger: Logger): void {
  const found: string[] = [];
  const walk = (expected: unknown, actual: unknown, path: string[]) => {
    if (isObject(expected) && isObject(actual)) {
      for (const [key, value] of Object.entries(expected)) walk(value, actual[key], [...path, key]);
    } else if (expected === null) {
      if (actual !== undefined && actual !== null) found.push(item("add", path, null, actual));
    } else if (actual === undefined) {
      found.push(item("remove", path, expected, null));
    } else if (!deepEqual(expected, actual)) {
      found.push(item("change", path, expected, actual));
    }
  };
  walk(patch, object, []);
  if (found.length) {
    logger.warn(`Patching failed with inconsistencies: (${found.join(", ")},)`);
  }
}

function item(op: string, path: string[], old: unknown, value: unknown): string {
  const field = `(${path.map(python).join(", ")}${path.length === 1 ? "," : ""})`;
  return `(${python(op)}, ${field}, ${python(old)}, ${python(value)})`;
}

/** A JSON value as Python prints it (Kopf's log lines are Python reprs). */
function python(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "string") {
    return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  }
  if (Array.isArray(value)) return `[${value.map(python).join(", ")}]`;
  if (isObject(value)) {
    return `{${Object.entries(value).map(([k, v]) => `${python(k)}: ${python(v)}`).join(", ")}}`;
  }
  return String(value);
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
      warnInconsistencies(split.status, latest, logger);
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
      warnInconsistencies(split.body, latest, logger);
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

/** Make a handler's result plain JSON (dates become strings, functions vanish). */
function toJson(result: unknown): unknown {
  return result === undefined ? undefined : JSON.parse(JSON.stringify(result) ?? "null");
}

/**
 * Put successful handlers' results into `status.<handler id>` of the patch: objects are merged
 * key by key into what is already patched there, anything else replaces it (Kopf's rule).
 */
export function deliverResults(outcomes: ReadonlyMap<string, Outcome>, patch: JsonObject): void {
  for (const [id, outcome] of outcomes) {
    if (outcome.error !== undefined || outcome.result === undefined || outcome.result === null) {
      continue;
    }
    const result = toJson(outcome.result);
    if (result === undefined || result === null) continue;
    const status = isObject(patch.status) ? patch.status : (patch.status = {});
    if (isObject(result)) {
      const current = isObject(status[id]) ? status[id] : (status[id] = {});
      Object.assign(current, deepCopy(result));
    } else {
      status[id] = result;
    }
  }
}

/**
 * Whether a JSON merge-patch (RFC 7386) would change `target`: a `null` removes a present key,
 * an object merges key by key into an object (or replaces a non-object), any other value must
 * differ from what is there.
 *
 * @example
 * ```ts
 * import { mergePatchChanges } from "./application.ts";
 * mergePatchChanges({ status: { a: 1 } }, { status: { a: 1 } }); // false
 * mergePatchChanges({ status: { a: 1 } }, { status: { b: null } }); // false
 * mergePatchChanges({ status: { a: 1 } }, { status: { a: 2 } }); // true
 * ```
 */
export function mergePatchChanges(target: unknown, patch: JsonObject): boolean {
  const current = isObject(target) ? target : undefined;
  if (!current) return true; // a patch object replaces a non-object (even an empty one)
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const present = Object.hasOwn(current, key) && current[key] !== undefined;
    if (value === null) {
      if (present) return true;
    } else if (isObject(value)) {
      if (!present || mergePatchChanges(current[key], value)) return true;
    } else if (!present || !deepEqual(current[key], value)) {
      return true;
    }
  }
  return false;
}

/** The part of `KubeClient` the writers use. */
export type PatchingClient = Pick<KubeClient, "patch" | "get">;

/** What one write sends (for logs and tests). */
export interface PlannedWrite {
  /** The body merge-patch, if it changes something. */
  readonly body: JsonObject | null;
  /** The `/status` merge-patch (`{ status: … }`), if it changes something. */
  readonly status: JsonObject | null;
  /** The JSON-patch from `patch.fns` (with its resourceVersion test), if any. */
  readonly json: readonly JsonPatchOp[];
}

/**
 * Plan the writes of a patch against the object as known: the body and status halves are kept
 * only if they would change it; `fns` become a guarded JSON-patch only if they change it.
 */
export function planWrite(
  resource: Resource,
  known: readonly KubeObject[],
  patch: Patch,
): PlannedWrite {
  const statusSubresource = resource.subresources.includes("status");
  const split = splitPatch(patch.toMergePatch(), statusSubresource);
  const changes = (part: JsonObject | null): JsonObject | null =>
    part && known.every((body) => mergePatchChanges(body, part)) ? part : null;
  const latest = known[0];
  const json = latest && patch.fns.length ? jsonPatchForFns(latest, patch.fns) : [];
  return { body: changes(split.body), status: changes(split.status), json };
}

/** Options of {@linkcode PatchWriter}. */
export interface PatchWriterOptions {
  /** Seconds during which our last write's response counts as the object's state. */
  consistencyTimeout?: number;
  /** Milliseconds now (tests). */
  now?: () => number;
}

/**
 * Writes daemons' and timers' patches for one object, skipping those that change nothing.
 * One writer per object; {@linkcode PatchWriter.observe} is told every new state from the watch.
 */
export class PatchWriter {
  readonly #client: PatchingClient;
  readonly #resource: Resource;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #written: KubeObject | undefined;
  #writtenAt = 0;
  #writes = 0;
  #skipped = 0;

  /** A writer for objects of `resource`. */
  constructor(client: PatchingClient, resource: Resource, options: PatchWriterOptions = {}) {
    this.#client = client;
    this.#resource = resource;
    this.#timeoutMs = (options.consistencyTimeout ?? 5) * 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Requests sent so far. */
  get writes(): number {
    return this.#writes;
  }

  /** Non-empty patches not sent because they would change nothing. */
  get skipped(): number {
    return this.#skipped;
  }

  /** A new state of the object arrived: once our last write is seen, the cache is current. */
  observe(body: KubeObject): void {
    const rv = body.metadata?.resourceVersion;
    if (this.#written && rv !== undefined && rv === this.#written.metadata?.resourceVersion) {
      this.#written = undefined;
    }
  }

  /**
   * Write `patch` for the object whose latest known state is `body`. Resolves when done; API
   * errors other than 404 (the object is gone) are logged and swallowed: the next call
   * compares again and re-sends what is still missing.
   */
  async write(body: KubeObject, patch: Patch, logger: Logger): Promise<void> {
    if (patch.isEmpty) return;
    const known = [body];
    if (this.#written && this.#now() - this.#writtenAt < this.#timeoutMs) known.push(this.#written);
    else this.#written = undefined;
    const plan = planWrite(this.#resource, known, patch);
    if (!plan.body && !plan.status && !plan.json.length) {
      this.#skipped += 1;
      return;
    }
    try {
      const written = await writeOutcome({
        client: this.#client,
        resource: this.#resource,
        body: this.#written ?? body,
        patch: mergePatches(plan.body, plan.status),
        fns: plan.json.length ? patch.fns : [],
        logger,
      });
      this.#writes += written.writes;
      if (written.object) {
        this.#written = written.object;
        this.#writtenAt = this.#now();
      }
    } catch (error) {
      // The next call compares again and re-sends what is still missing.
      logger.error("Patching failed: {error}", {
        error: error instanceof Error ? error.message : error,
      });
    }
  }
}
