/**
 * Filter tokens and combinators for handler options (`labels`, `annotations`, `value`, `old`,
 * `new`, `when`), as Kopf's `kopf.PRESENT`, `kopf.ABSENT`, `kopf.not_()` and friends.
 *
 * @module
 */

/**
 * Matches when the label, annotation or field is present (with any value).
 *
 * @example
 * ```ts
 * kopf.on.create("kopfexamples", { labels: { app: kopf.PRESENT } }, () => {});
 * ```
 */
export const PRESENT: unique symbol = Symbol.for("kopf.PRESENT");

/**
 * Matches when the label, annotation or field is absent.
 *
 * @example
 * ```ts
 * kopf.on.create("kopfexamples", { annotations: { "example.com/skip": kopf.ABSENT } }, () => {});
 * ```
 */
export const ABSENT: unique symbol = Symbol.for("kopf.ABSENT");

/** A label or annotation filter callback: the value (`undefined` if absent) and the context. */
export type MetaFilterFn<C> = (value: string | undefined, context: C) => boolean;

/** Per key: an exact value, {@linkcode PRESENT}, {@linkcode ABSENT}, or a callback. */
export type MetaFilter<C> = Readonly<
  Record<string, string | typeof PRESENT | typeof ABSENT | MetaFilterFn<C>>
>;

/** A field value filter callback: the value (`undefined` if absent) and the context. */
export type ValueFilterFn<C> = (value: unknown, context: C) => boolean;

/** A JSON literal to compare a field with. */
export type ValueLiteral =
  | string
  | number
  | boolean
  | null
  | readonly ValueLiteral[]
  | { readonly [key: string]: ValueLiteral };

/** A field value filter: a literal (deep equality), {@linkcode PRESENT}, {@linkcode ABSENT}, or a callback. */
export type ValueFilter<C> = ValueLiteral | typeof PRESENT | typeof ABSENT | ValueFilterFn<C>;

/** Whether a value is one of the filter tokens. */
export function isToken(value: unknown): value is typeof PRESENT | typeof ABSENT {
  return value === PRESENT || value === ABSENT;
}

/**
 * Negate a predicate (for `when`, label/annotation and value callbacks). Kopf's `kopf.not_`.
 *
 * @example
 * ```ts
 * const isBig = ({ spec }: { spec: { size?: number } }) => (spec.size ?? 0) > 10;
 * kopf.on.update("kopfexamples", { when: kopf.not(isBig) }, () => {});
 * ```
 */
export function not<A extends unknown[]>(fn: (...args: A) => boolean): (...args: A) => boolean {
  return (...args: A): boolean => !fn(...args);
}

/**
 * True when all predicates are (true for no predicates). Kopf's `kopf.all_`.
 *
 * @example
 * ```ts
 * kopf.on.update("kopfexamples", { when: kopf.all([isBig, isReady]) }, () => {});
 * ```
 */
export function all<A extends unknown[]>(
  fns: Iterable<(...args: A) => boolean>,
): (...args: A) => boolean {
  const list = [...fns];
  return (...args: A): boolean => list.every((fn) => fn(...args));
}

/**
 * True when any predicate is (false for no predicates). Kopf's `kopf.any_`.
 *
 * @example
 * ```ts
 * kopf.on.update("kopfexamples", { when: kopf.any([isBig, isUrgent]) }, () => {});
 * ```
 */
export function any<A extends unknown[]>(
  fns: Iterable<(...args: A) => boolean>,
): (...args: A) => boolean {
  const list = [...fns];
  return (...args: A): boolean => list.some((fn) => fn(...args));
}

/**
 * True when no predicate is (true for no predicates). Kopf's `kopf.none_`.
 *
 * @example
 * ```ts
 * kopf.on.update("kopfexamples", { when: kopf.none([isBig, isUrgent]) }, () => {});
 * ```
 */
export function none<A extends unknown[]>(
  fns: Iterable<(...args: A) => boolean>,
): (...args: A) => boolean {
  const list = [...fns];
  return (...args: A): boolean => !list.some((fn) => fn(...args));
}
