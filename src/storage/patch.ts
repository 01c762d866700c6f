/**
 * The patch that handlers fill in, and how the framework's and the handlers' fragments become
 * one body merge-patch, one status merge-patch and one guarded JSON-patch per cycle.
 *
 * @module
 */

import {
  deepCopy,
  deepEqual,
  ensureField,
  type FieldSpec,
  isObject,
  type JsonObject,
  parseField,
  type RawBody,
  removeField,
  resolveField,
} from "./fields.ts";
import { escapePointer, type JsonPatchOp, resourceVersionTest } from "./finalizers.ts";

/**
 * A transformation of a copy of the freshest body, turned into a JSON-patch (RFC 6902).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Applied to the freshest body, sent as a JSON-patch guarded by its resourceVersion.
 * const addFinalizer: kopf.PatchFn = (body) => {
 *   const metadata = body.metadata ??= {};
 *   (metadata.finalizers ??= []).push("example.com/cleanup");
 * };
 * kopf.on.create("kopfexamples", function guard({ patch }) {
 *   patch.fns.push(addFinalizer);
 * });
 * ```
 */
export type PatchFn = (body: RawBody) => void;

/**
 * Merge-patch views of `metadata`, with `labels` and `annotations` always available.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function relabel({ patch }) {
 *   const meta: kopf.MetaPatch = patch.metadata;
 *   meta.labels.phase = "created";
 *   meta.annotations["example.com/old"] = null; // removes the annotation
 * });
 * ```
 */
export type MetaPatch = JsonObject & {
  /** Labels to set; `null` removes a label. */
  labels: Record<string, string | null>;
  /** Annotations to set; `null` removes an annotation. */
  annotations: Record<string, string | null>;
};

// Objects created only to offer a view; dropped from the output if nothing was put into them.
const viewObjects = new WeakSet<object>();

function view(parent: JsonObject, key: string): JsonObject {
  const current = parent[key];
  if (isObject(current)) return current;
  const created: JsonObject = {};
  viewObjects.add(created);
  parent[key] = created;
  return created;
}

function pruned(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(deepCopy);
  if (!isObject(value)) return value;
  const result: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined) continue;
    const copy = pruned(child);
    if (isObject(child) && viewObjects.has(child) && isObject(copy) && !Object.keys(copy).length) {
      continue;
    }
    result[key] = copy;
  }
  return result;
}

/**
 * A JSON merge-patch (RFC 7386) that handlers edit through `metadata`, `spec` and `status`
 * views: set a key to change it, to `null` to remove it; lists are replaced whole. `fns` hold
 * transformations applied to the freshest body and sent as a JSON-patch guarded by the
 * object's resourceVersion.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * kopf.on.create("kopfexamples", function markSeen({ patch }) {
 *   patch.metadata.labels["example.com/seen"] = "yes";
 *   patch.status.phase = "Ready";
 *   patch.spec.obsolete = null; // removes spec.obsolete
 * });
 *
 * // Outside a handler, e.g. to see what a handler would send:
 * const patch = new kopf.Patch();
 * patch.status.phase = "Ready";
 * patch.set("data.key", "value");
 * assert.deepEqual(patch.toMergePatch(), { status: { phase: "Ready" }, data: { key: "value" } });
 * ```
 */
export class Patch {
  /** The raw merge-patch object (may contain empty view objects; see {@linkcode toMergePatch}). */
  readonly raw: JsonObject;
  /** Transformations to send as a JSON-patch. */
  readonly fns: PatchFn[];

  /** Create an empty patch, or one pre-filled with a merge-patch fragment. */
  constructor(initial: JsonObject = {}, fns: readonly PatchFn[] = []) {
    this.raw = deepCopy(initial);
    this.fns = [...fns];
  }

  /** The `metadata` view with `labels` and `annotations` views. */
  get metadata(): MetaPatch {
    const meta = view(this.raw, "metadata");
    view(meta, "labels");
    view(meta, "annotations");
    return meta as MetaPatch;
  }

  /** Replace the `metadata` part of the patch. */
  set metadata(value: JsonObject) {
    this.raw.metadata = value;
  }

  /** Kopf's alias of {@linkcode metadata}. */
  get meta(): MetaPatch {
    return this.metadata;
  }

  /** The `spec` view. */
  get spec(): JsonObject {
    return view(this.raw, "spec");
  }

  /** Replace the `spec` part of the patch (`null` removes the whole spec). */
  set spec(value: JsonObject | null) {
    this.raw.spec = value;
  }

  /** The `status` view. */
  get status(): JsonObject {
    return view(this.raw, "status");
  }

  /** Replace the `status` part of the patch. */
  set status(value: JsonObject | null) {
    this.raw.status = value;
  }

  /** Set any field, e.g. `patch.set("data.key", "value")`; `null` removes it. */
  set(field: FieldSpec, value: unknown): void {
    ensureField(this.raw, field, value);
  }

  /** What the patch currently sets at a field (`undefined` if nothing). */
  get(field: FieldSpec): unknown {
    return resolveField(this.toMergePatch(), field);
  }

  /** Drop a field from the patch (the object keeps its value). */
  unset(field: FieldSpec): void {
    removeField(this.raw, parseField(field));
  }

  /** Merge a fragment into this patch (later values win, objects merge key by key). */
  merge(fragment: JsonObject): void {
    mergeInto(this.raw, fragment);
  }

  /** Whether nothing is to be sent. */
  get isEmpty(): boolean {
    return this.fns.length === 0 && Object.keys(this.toMergePatch()).length === 0;
  }

  /** The merge-patch to send, without the views nobody wrote into. */
  toMergePatch(): JsonObject {
    return pruned(this.raw) as JsonObject;
  }

  /** For logs and `JSON.stringify`. */
  toJSON(): JsonObject {
    return this.toMergePatch();
  }

  /**
   * The whole patch (merge part, then `fns`) as JSON-patch ops against `body`, without a
   * resourceVersion test — for admission responses.
   *
   * @internal
   */
  asJsonPatch(body: RawBody): JsonPatchOp[] {
    const target = deepCopy(body);
    applyMergePatch(target, this.toMergePatch());
    for (const fn of this.fns) fn(target);
    return jsonPatchDiff(body, target);
  }
}

/** Merge `fragment` into `target` in place: objects merge recursively, other values replace. */
export function mergeInto(target: JsonObject, fragment: JsonObject): JsonObject {
  for (const [key, value] of Object.entries(fragment)) {
    if (value === undefined) continue;
    const current = target[key];
    if (isObject(value) && isObject(current)) {
      mergeInto(current, value);
    } else {
      target[key] = deepCopy(value);
    }
  }
  return target;
}

/**
 * Combine merge-patch fragments (storage records, results, the handlers' patch, …) into one;
 * later fragments win on conflicts.
 */
export function mergePatches(...fragments: (JsonObject | Patch | null | undefined)[]): JsonObject {
  const result: JsonObject = {};
  for (const fragment of fragments) {
    if (!fragment) continue;
    mergeInto(result, fragment instanceof Patch ? fragment.toMergePatch() : fragment);
  }
  return pruned(result) as JsonObject;
}

/** Apply a merge-patch (RFC 7386) to a JSON object in place. */
export function applyMergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (value === null) {
      delete target[key];
    } else if (isObject(value)) {
      const current = isObject(target[key]) ? target[key] as JsonObject : (target[key] = {});
      applyMergePatch(current, value);
    } else {
      target[key] = deepCopy(value);
    }
  }
  return target;
}

/** The body and status halves of one cycle's merge-patch. */
export interface SplitPatch {
  /** For `PATCH <object>` (`null`: nothing to send). */
  readonly body: JsonObject | null;
  /** For `PATCH <object>/status`, as `{ status: … }` (`null`: nothing to send). */
  readonly status: JsonObject | null;
}

/**
 * Split a merge-patch for sending: with a status subresource, the API server ignores `status`
 * in body patches, so it goes in a separate `/status` patch; without one, it stays in the body.
 */
export function splitPatch(patch: JsonObject, statusSubresource: boolean): SplitPatch {
  const merged = pruned(patch) as JsonObject;
  if (!statusSubresource || !Object.hasOwn(merged, "status")) {
    return { body: Object.keys(merged).length ? merged : null, status: null };
  }
  const { status, ...rest } = merged;
  return {
    body: Object.keys(rest).length ? rest : null,
    status: { status },
  };
}

/**
 * The JSON-patch for `fns`: applied to a copy of the freshest body, diffed, and guarded by a
 * `test` of its resourceVersion (so a concurrent change fails it with 422 rather than being
 * overwritten). Empty if the transformations change nothing.
 */
export function jsonPatchForFns(body: RawBody, fns: readonly PatchFn[]): JsonPatchOp[] {
  if (!fns.length) return [];
  const target = deepCopy(body);
  for (const fn of fns) fn(target);
  const ops = jsonPatchDiff(body, target);
  return ops.length ? [...resourceVersionTest(body), ...ops] : [];
}

/**
 * RFC 6902 ops turning `a` into `b`: objects key by key; arrays element by element, with
 * appends at the end and removals from the end; other values replaced.
 */
export function jsonPatchDiff(a: unknown, b: unknown, path = ""): JsonPatchOp[] {
  if (deepEqual(a, b)) return [];
  if (isObject(a) && isObject(b)) {
    const ops: JsonPatchOp[] = [];
    for (const key of Object.keys(a)) {
      if (a[key] !== undefined && (!Object.hasOwn(b, key) || b[key] === undefined)) {
        ops.push({ op: "remove", path: `${path}/${escapePointer(key)}` });
      }
    }
    for (const key of Object.keys(b)) {
      if (b[key] === undefined) continue;
      const sub = `${path}/${escapePointer(key)}`;
      if (!Object.hasOwn(a, key) || a[key] === undefined) {
        ops.push({ op: "add", path: sub, value: deepCopy(b[key]) });
      } else {
        ops.push(...jsonPatchDiff(a[key], b[key], sub));
      }
    }
    return ops;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const ops: JsonPatchOp[] = [];
    const common = Math.min(a.length, b.length);
    for (let i = 0; i < common; i++) ops.push(...jsonPatchDiff(a[i], b[i], `${path}/${i}`));
    for (let i = common; i < b.length; i++) {
      ops.push({ op: "add", path: `${path}/-`, value: deepCopy(b[i]) });
    }
    for (let i = a.length - 1; i >= common; i--) ops.push({ op: "remove", path: `${path}/${i}` });
    return ops;
  }
  return [{ op: "replace", path: path, value: deepCopy(b) }];
}
