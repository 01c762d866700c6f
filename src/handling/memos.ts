/**
 * Memos: the operator-wide memo (what activities get, or `memo` given to `kopf.run`) and how the
 * per-object memos are made from it — a shallow copy per object, on first sight, as Kopf does,
 * with Kopf's `copy.copy()` protocol as {@linkcode MEMO_COPY}. Every handler of one object
 * (changing, event, index, daemon, timer) shares that object's memo.
 *
 * @module
 */

import type { Memo } from "../registry/context.ts";

/**
 * A method a memo may define to decide how it is copied for each object (Kopf's `copy.copy()`
 * protocol). Returning `this` makes the memo shared by all objects.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * class Shared {
 *   connections = new Map<string, unknown>();
 *   [kopf.MEMO_COPY](): Shared {
 *     return this; // one memo for the operator and all objects
 *   }
 * }
 * const memo = new Shared();
 * assert.equal(kopf.copyMemo(memo), memo);
 * ```
 */
export const MEMO_COPY: unique symbol = Symbol.for("kopf.memo.copy");

/**
 * The per-object copy of a memo: the memo's own {@linkcode MEMO_COPY} method if it has one,
 * else a shallow copy keeping its prototype (so class instances stay instances).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * class Counters {
 *   created = 0;
 * }
 * const memo = new Counters();
 * const copy = kopf.copyMemo(memo); // what each object's handlers get as `memo`
 * assert.ok(copy instanceof Counters && copy !== memo);
 * ```
 */
export function copyMemo<M extends object = Memo>(memo: M): M {
  const custom = (memo as { [MEMO_COPY]?: () => M })[MEMO_COPY];
  if (typeof custom === "function") return custom.call(memo);
  return Object.assign(Object.create(Object.getPrototypeOf(memo)), memo);
}
