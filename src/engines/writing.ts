/**
 * Writing what daemons and timers produce — their results (`status.<id>`) and their `patch` —
 * after each call, but only when it changes something.
 *
 * Kopf PATCHes after every tick that returns a value, so a timer returning the same value every
 * second PATCHes every second (and every PATCH fans out to every watcher of the resource). Here
 * the merge-patch is first compared with the object as we know it: parts that would change
 * nothing are not sent. Right after our own write, the cache may not have caught up yet; until
 * the write comes back through the watch (or `consistencyTimeout` passes), the response of the
 * write counts as the object's state too.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { jsonPatchForFns, type Patch, splitPatch } from "../actions/patch.ts";
import { ApiError } from "../kube/errors.ts";
import type { KubeObject, Resource } from "../kube/resource.ts";
import { deepEqual, isObject, type JsonObject } from "../storage/fields.ts";
import type { JsonPatchOp } from "../storage/finalizers.ts";

/**
 * Whether a JSON merge-patch (RFC 7386) would change `target`: a `null` removes a present key,
 * an object merges key by key into an object (or replaces a non-object), any other value must
 * differ from what is there.
 *
 * @example
 * ```ts
 * import { mergePatchChanges } from "./writing.ts";
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

/** The part of `KubeClient` the writer uses. */
export interface PatchingClient {
  /** `KubeClient.patch`. */
  patch<T = KubeObject>(
    resource: Resource,
    name: string,
    patch: unknown,
    options?: { namespace?: string; subresource?: string; type?: "merge" | "json" },
  ): Promise<T>;
}

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
    const name = body.metadata?.name ?? "";
    const namespace = this.#resource.namespaced ? body.metadata?.namespace : undefined;
    try {
      let response: KubeObject | undefined;
      // The guarded JSON-patch goes first: its resourceVersion test is against `body`, which
      // our own merge-patches would make stale.
      if (plan.json.length) {
        this.#writes += 1;
        response = await this.#client.patch<KubeObject>(this.#resource, name, plan.json, {
          namespace,
          type: "json",
        });
      }
      if (plan.status) {
        this.#writes += 1;
        response = await this.#client.patch<KubeObject>(this.#resource, name, plan.status, {
          namespace,
          subresource: "status",
        });
      }
      if (plan.body) {
        this.#writes += 1;
        response = await this.#client.patch<KubeObject>(this.#resource, name, plan.body, {
          namespace,
        });
      }
      if (isObject(response)) {
        this.#written = response;
        this.#writtenAt = this.#now();
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        logger.debug("Patching skipped: the object is gone.");
        return;
      }
      if (error instanceof ApiError && error.status === 422 && plan.json.length) {
        logger.warn("Patching with patch.fns failed (the object changed meanwhile): {error}", {
          error: error.message,
        });
        return;
      }
      logger.error("Patching failed: {error}", {
        error: error instanceof Error ? error.message : error,
      });
    }
  }
}
