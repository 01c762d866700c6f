/**
 * One copy of each string that many cached objects share.
 *
 * Every watch event is parsed anew, so 10,000 objects of one resource in one namespace hold
 * 10,000 copies each of their `apiVersion`, `kind`, namespace, finalizer, label values, owner
 * kinds, condition types, and often of annotations and timestamps: measured on the benchmark's
 * objects, a quarter of the cache. Property names need nothing: `JSON.parse` already shares
 * them.
 *
 * The pool is bounded: strings unique to one object (names, uids, resource versions) pass
 * through it without being kept for long. It has two generations of `capacity` entries; a
 * string found in the older one is carried over, so the strings that recur stay.
 *
 * @module
 */

/** Strings longer than this are left alone: long values are rarely shared and costly to hash. */
export const MAX_INTERNED_LENGTH = 256;

// Unique to each object: pooling them would only churn the pool.
const UNIQUE_METADATA = new Set(["name", "uid", "resourceVersion"]);

// Deeper values are left alone (objects are rarely this deep; recursion stays bounded).
const MAX_DEPTH = 32;

/**
 * A bounded pool of strings: equal strings interned through it become one string.
 *
 * @example
 * ```ts
 * import { StringPool } from "./interning.ts";
 * const pool = new StringPool();
 * const a = pool.intern(JSON.parse('"kopf.dev/v1"'));
 * const b = pool.intern(JSON.parse('"kopf.dev/v1"'));
 * a === b; // true, and only one of the two parsed strings stays alive
 * ```
 */
export class StringPool {
  readonly #capacity: number;
  #current = new Map<string, string>();
  #previous = new Map<string, string>();

  /** A pool keeping up to `capacity` strings in each of its two generations. */
  constructor(capacity = 2048) {
    this.#capacity = capacity;
  }

  /** How many strings the pool holds now (both generations). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /** The pooled string equal to `value`, pooling `value` itself if there is none. */
  intern(value: string): string {
    const current = this.#current.get(value);
    if (current !== undefined) return current;
    const pooled = this.#previous.get(value) ?? value;
    if (this.#current.size >= this.#capacity) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(pooled, pooled);
    return pooled;
  }
}

/**
 * Replaces the string values of a JSON object, in place, by their pooled copies (except the
 * object's own name, uid and resourceVersion, and strings longer than
 * {@linkcode MAX_INTERNED_LENGTH}); returns the same object. Values are unchanged: only which
 * copy of an equal string the object holds.
 *
 * @example
 * ```ts
 * import { internStrings, StringPool } from "./interning.ts";
 * const pool = new StringPool();
 * const a = internStrings(JSON.parse('{"kind":"Pod","metadata":{"namespace":"ns"}}'), pool);
 * const b = internStrings(JSON.parse('{"kind":"Pod","metadata":{"namespace":"ns"}}'), pool);
 * a.metadata.namespace === b.metadata.namespace; // true: one string
 * ```
 */
export function internStrings<T>(object: T, pool: StringPool): T {
  if (isRecord(object)) internRecord(object, pool, 0);
  return object;
}

function internRecord(record: Record<string, unknown>, pool: StringPool, depth: number): void {
  for (const key in record) {
    const value = record[key];
    if (typeof value === "string") {
      // Equal strings compare equal: which copy is kept cannot be tested for, only assigned.
      if (value.length <= MAX_INTERNED_LENGTH) record[key] = pool.intern(value);
    } else if (typeof value === "object" && value !== null && depth < MAX_DEPTH) {
      if (Array.isArray(value)) internArray(value, pool, depth + 1);
      else if (depth === 0 && key === "metadata") {
        internMetadata(value as Record<string, unknown>, pool);
      } else internRecord(value as Record<string, unknown>, pool, depth + 1);
    }
  }
}

function internMetadata(metadata: Record<string, unknown>, pool: StringPool): void {
  for (const key in metadata) {
    const value = metadata[key];
    if (UNIQUE_METADATA.has(key)) continue;
    if (typeof value === "string") {
      if (value.length <= MAX_INTERNED_LENGTH) metadata[key] = pool.intern(value);
    } else if (typeof value === "object" && value !== null) {
      if (Array.isArray(value)) internArray(value, pool, 2);
      else internRecord(value as Record<string, unknown>, pool, 2);
    }
  }
}

function internArray(array: unknown[], pool: StringPool, depth: number): void {
  for (let i = 0; i < array.length; i++) {
    const value = array[i];
    if (typeof value === "string") {
      if (value.length <= MAX_INTERNED_LENGTH) array[i] = pool.intern(value);
    } else if (typeof value === "object" && value !== null && depth < MAX_DEPTH) {
      if (Array.isArray(value)) internArray(value, pool, depth + 1);
      else internRecord(value as Record<string, unknown>, pool, depth + 1);
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
