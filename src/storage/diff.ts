/**
 * Kopf's recursive diff of essences: objects are compared key by key, everything else
 * (including lists) as a whole.
 *
 * @module
 */

import {
  deepEqual,
  type FieldPath,
  type FieldSpec,
  isObject,
  parseField,
  resolveField,
} from "./fields.ts";

/**
 * What happened to a field.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.update("kopfexamples", function logChanges({ diff, logger }) {
 *   for (const { operation, field } of diff) {
 *     const what: kopf.DiffOperation = operation; // "add", "change" or "remove"
 *     logger.info(`${what}: ${field.join(".")}`);
 *   }
 * });
 * ```
 */
export type DiffOperation = "add" | "change" | "remove";

/**
 * One change: usable both as a tuple (`const [op, field, old, new_] = item`, like Kopf's) and
 * by name (`item.operation`, `item.field`, `item.old`, `item.new`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const [item]: kopf.Diff = kopf.diff({ size: 1 }, { size: 2 });
 * const [operation, field, old, value]: kopf.DiffItem = item; // as a tuple, like Kopf's
 * assert.deepEqual([operation, field, old, value], ["change", ["size"], 1, 2]);
 * assert.equal(item.new, 2); // or by name
 * ```
 */
export type DiffItem =
  & readonly [operation: DiffOperation, field: FieldPath, old: unknown, new: unknown]
  & {
    /** What happened. */
    readonly operation: DiffOperation;
    /** Where, as a path from the diffed root (`[]` is the root itself). */
    readonly field: FieldPath;
    /** The value before (`undefined` for additions). */
    readonly old: unknown;
    /** The value after (`undefined` for removals). */
    readonly new: unknown;
  };

/**
 * A sequence of changes.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * function summary(diff: kopf.Diff): string {
 *   return diff.map(({ operation, field }) => `${operation} ${field.join(".")}`).join(", ");
 * }
 * assert.equal(summary(kopf.diff({ a: 1, b: 1 }, { a: 2, b: 1 })), "change a");
 * ```
 */
export type Diff = readonly DiffItem[];

/** Build a diff item. */
export function diffItem(
  operation: DiffOperation,
  field: FieldPath,
  old: unknown,
  new_: unknown,
): DiffItem {
  const tuple = [operation, Object.freeze([...field]), old, new_] as const;
  const item = Object.defineProperties(tuple, {
    operation: { value: operation, enumerable: false },
    field: { value: tuple[1], enumerable: false },
    old: { value: old, enumerable: false },
    new: { value: new_, enumerable: false },
  });
  return Object.freeze(item) as unknown as DiffItem;
}

function isAbsent(value: unknown): boolean {
  return value === undefined || value === null;
}

function* diffIter(a: unknown, b: unknown, path: string[]): Generator<DiffItem> {
  if (deepEqual(a, b) || (isAbsent(a) && isAbsent(b))) return;
  if (isAbsent(a)) {
    yield diffItem("add", path, a ?? undefined, b);
  } else if (isAbsent(b)) {
    yield diffItem("remove", path, a, b ?? undefined);
  } else if (isObject(a) && isObject(b)) {
    for (const key of Object.keys(b)) {
      if (!Object.hasOwn(a, key)) yield* diffIter(undefined, b[key], [...path, key]);
    }
    for (const key of Object.keys(a)) {
      if (!Object.hasOwn(b, key)) yield* diffIter(a[key], undefined, [...path, key]);
    }
    for (const key of Object.keys(a)) {
      if (Object.hasOwn(b, key)) yield* diffIter(a[key], b[key], [...path, key]);
    }
  } else {
    yield diffItem("change", path, a, b);
  }
}

/**
 * The diff from `a` to `b`: additions, then removals, then changes of common keys.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const changes = kopf.diff({ spec: { size: 1, zone: "a" } }, { spec: { size: 2 } });
 * assert.deepEqual(changes.map((item) => [...item]), [
 *   ["remove", ["spec", "zone"], "a", undefined],
 *   ["change", ["spec", "size"], 1, 2],
 * ]);
 * ```
 */
export function diff(a: unknown, b: unknown): Diff {
  return [...diffIter(a, b, [])];
}

/**
 * Narrow a diff to one field: items under it get paths relative to it; items above it (e.g.
 * the whole `spec` added) are re-diffed at that field's depth.
 */
export function reduceDiff(d: Diff, field: FieldSpec): Diff {
  const path = parseField(field);
  if (path.length === 0) return d;
  const result: DiffItem[] = [];
  for (const item of d) {
    const f = item.field;
    if (f.length >= path.length && path.every((k, i) => f[i] === k)) {
      result.push(diffItem(item.operation, f.slice(path.length), item.old, item.new));
    } else if (f.length < path.length && f.every((k, i) => path[i] === k)) {
      const tail = path.slice(f.length);
      result.push(...diffIter(resolveField(item.old, tail), resolveField(item.new, tail), []));
    }
  }
  return result;
}
