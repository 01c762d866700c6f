/**
 * Field paths and plain-JSON helpers shared by storage, diffs and filters.
 *
 * Objects are plain JSON as parsed from the API server. `undefined` and `null` are both treated
 * as "absent" where Kopf treats `None` so (diffs, value filters), because the API server drops
 * nulls from stored objects and merge-patches use `null` to delete a key.
 *
 * @module
 */

import type { KubeObject } from "../kube/resource.ts";

/** Any JSON value. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A JSON object (a mapping). Values are `unknown` so that user types fit without casts.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const labels: kopf.JsonObject = { app: "demo" };
 * const patch = new kopf.Patch();
 * patch.merge({ metadata: { labels } });
 * assert.deepEqual(patch.toMergePatch(), { metadata: { labels: { app: "demo" } } });
 * ```
 */
export type JsonObject = { [key: string]: unknown };

/**
 * A field path as a sequence of keys, e.g. `["spec", "size"]`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.update("kopfexamples", function logPaths({ diff, logger }) {
 *   const paths: kopf.FieldPath[] = diff.map((item) => item.field); // e.g. ["spec", "size"]
 *   logger.info(`Changed: ${paths.map((path) => path.join(".")).join(", ")}`);
 * });
 * ```
 */
export type FieldPath = readonly string[];

/**
 * A field path as written by users: dotted (`"spec.size"`) or already split.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const dotted: kopf.FieldSpec = "spec.template.metadata";
 * const listed: kopf.FieldSpec = ["metadata", "annotations", "example.com/name.with.dots"];
 * kopf.on.field("deployments", { field: dotted }, function templateChanged() {});
 * kopf.on.field("deployments", { field: listed }, function annotationChanged() {});
 * ```
 */
export type FieldSpec = string | readonly string[];

/**
 * A Kubernetes object body as plain JSON (the same shape as the kube layer's `KubeObject`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const body: kopf.RawBody = {
 *   apiVersion: "v1",
 *   kind: "ConfigMap",
 *   metadata: { name: "cm", annotations: { "kopf.zalando.org/create_fn": '{"retries":1}' } },
 *   data: { key: "value" },
 * };
 * assert.equal(new kopf.AnnotationsProgressStorage().fetch("create_fn", body)?.retries, 1);
 * ```
 */
export type RawBody = KubeObject;

/** Parse a dotted field spec into a path; `undefined`/`null`/`""` give the root (`[]`). */
export function parseField(field: FieldSpec | null | undefined): string[] {
  if (field === undefined || field === null || field === "") return [];
  if (typeof field === "string") return field.split(".");
  if (Array.isArray(field)) return [...field];
  throw new TypeError(`A field must be a dotted string or an array of keys; got ${String(field)}.`);
}

/** Whether a value is a plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Get a nested field, or `fallback` if any level is absent or is not an object.
 *
 * Corrupted structures (a string where an object is expected) are treated as absent rather than
 * failing, as Kopf does: a hand-edited object must not stop the operator.
 */
export function resolveField<T = unknown>(
  obj: unknown,
  field: FieldSpec | null | undefined,
  fallback?: T,
): unknown | T {
  let current: unknown = obj;
  for (const key of parseField(field)) {
    if (!isObject(current) || !Object.hasOwn(current, key)) return fallback;
    current = current[key];
  }
  return current;
}

/** Whether a nested field exists (even with a `null` value). */
export function hasField(obj: unknown, field: FieldSpec): boolean {
  const path = parseField(field);
  let current: unknown = obj;
  for (const key of path) {
    if (!isObject(current) || !Object.hasOwn(current, key)) return false;
    current = current[key];
  }
  return true;
}

/** Set a nested field, creating (or replacing non-object) parents as needed. */
export function ensureField(obj: JsonObject, field: FieldSpec, value: unknown): void {
  const path = parseField(field);
  if (path.length === 0) throw new Error("Setting the root of an object is impossible.");
  let current: JsonObject = obj;
  for (const key of path.slice(0, -1)) {
    const next = current[key];
    if (isObject(next)) {
      current = next;
    } else {
      const created: JsonObject = {};
      current[key] = created;
      current = created;
    }
  }
  current[path[path.length - 1]] = value;
}

/** Remove a nested field and every parent that becomes empty; absent fields are fine. */
export function removeField(obj: JsonObject, field: FieldSpec): void {
  const path = parseField(field);
  if (path.length === 0) throw new Error("Removing the root of an object is impossible.");
  const [head, ...tail] = path;
  if (!Object.hasOwn(obj, head)) return;
  if (tail.length === 0) {
    delete obj[head];
    return;
  }
  const child = obj[head];
  if (!isObject(child)) return;
  removeField(child, tail);
  if (Object.keys(child).length === 0) delete obj[head];
}

/** Copy the listed fields from `src` to `dst` (deep copies); absent fields are skipped. */
export function cherrypick(src: unknown, dst: JsonObject, fields: Iterable<FieldSpec>): void {
  for (const field of fields) {
    if (hasField(src, field)) {
      ensureField(dst, field, deepCopy(resolveField(src, field)));
    }
  }
}

/** A deep copy of plain JSON data. */
export function deepCopy<T>(value: T): T {
  if (Array.isArray(value)) return value.map(deepCopy) as T;
  if (isObject(value)) {
    const copy: JsonObject = {};
    for (const key of Object.keys(value)) copy[key] = deepCopy(value[key]);
    return copy as T;
  }
  return value;
}

/** Deep equality of plain JSON data (key order ignored; `undefined` keys count as absent). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    let aCount = 0;
    for (const key of Object.keys(a)) {
      if (a[key] === undefined) continue;
      if (!Object.hasOwn(b, key) || !deepEqual(a[key], b[key])) return false;
      aCount++;
    }
    let bCount = 0;
    for (const key of Object.keys(b)) if (b[key] !== undefined) bCount++;
    return aCount === bCount;
  }
  return false;
}

/**
 * JSON-encode like Python's `json.dumps(value, separators=(',', ':'))`.
 *
 * Kopf stores annotations with Python's defaults (`ensure_ascii=True`): every character outside
 * printable ASCII is `\uXXXX`-escaped. Matching it keeps the stored bytes identical to what a
 * Python Kopf operator would write for the same data, so the two can share objects quietly.
 */
export function compactJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
