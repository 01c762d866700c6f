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
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", { labels: { app: kopf.PRESENT } }, function createFn() {});
 * ```
 */
export const PRESENT: unique symbol = Symbol.for("kopf.PRESENT");

/**
 * Matches when the label, annotation or field is absent.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create(
 *   "kopfexamples",
 *   { annotations: { "example.com/skip": kopf.ABSENT } },
 *   function createFn() {},
 * );
 * ```
 */
export const ABSENT: unique symbol = Symbol.for("kopf.ABSENT");

/**
 * A label or annotation filter callback: the value (`undefined` if absent) and the context.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const isVersioned: kopf.MetaFilterFn<kopf.ResourceContext> = (value) =>
 *   /^v\d+$/.test(value ?? "");
 * const options = { labels: { version: isVersioned }, interval: 60 };
 * kopf.timer("kopfexamples", options, function tick() {});
 * ```
 */
export type MetaFilterFn<C> = (value: string | undefined, context: C) => boolean;

/**
 * Per key: an exact value, {@linkcode PRESENT}, {@linkcode ABSENT}, or a callback.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const production: kopf.MetaFilter<kopf.ChangingCauseContext> = {
 *   env: "production", // exactly this value
 *   owner: kopf.PRESENT, // any value
 *   "example.com/ignore": kopf.ABSENT, // not set
 *   tier: (value) => value !== "test", // a callback
 * };
 * kopf.on.create("kopfexamples", { labels: production }, function createFn() {});
 * ```
 */
export type MetaFilter<C> = Readonly<
  Record<string, string | typeof PRESENT | typeof ABSENT | MetaFilterFn<C>>
>;

/**
 * A field value filter callback: the value (`undefined` if absent) and the context.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const positive: kopf.ValueFilterFn<kopf.ChangingCauseContext> = (value) => Number(value) > 0;
 * kopf.on.update("kopfexamples", { field: "spec.size", new: positive }, function updateFn() {});
 * ```
 */
export type ValueFilterFn<C> = (value: unknown, context: C) => boolean;

/**
 * A JSON literal to compare a field with.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const wanted: kopf.ValueLiteral = { mode: "fast", zones: ["a", "b"] }; // compared deeply
 * kopf.on.field("kopfexamples", { field: "spec.placement", value: wanted }, function fieldFn() {});
 * ```
 */
export type ValueLiteral =
  | string
  | number
  | boolean
  | null
  | readonly ValueLiteral[]
  | { readonly [key: string]: ValueLiteral };

/**
 * A field value filter: a literal (deep equality), {@linkcode PRESENT}, {@linkcode ABSENT}, or a callback.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const filters: kopf.ValueFilter<kopf.ChangingCauseContext>[] = [
 *   "Running", // a literal, compared deeply
 *   kopf.PRESENT, // set to anything
 *   (value) => typeof value === "string" && value.startsWith("Run"), // a callback
 * ];
 * for (const [index, value] of filters.entries()) {
 *   const options: kopf.FieldOptions = { id: `phase-${index}`, field: "status.phase", value };
 *   kopf.on.field("pods", options, function fieldFn() {});
 * }
 * ```
 */
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
 * import * as kopf from "@kopf/kopf";
 *
 * type Spec = { size?: number };
 * const isBig = ({ spec }: kopf.ChangingCauseContext<Spec>) => (spec.size ?? 0) > 10;
 * kopf.on.update<Spec>("kopfexamples", { when: kopf.not(isBig) }, function updateFn() {});
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
 * import * as kopf from "@kopf/kopf";
 *
 * type Spec = { size?: number; ready?: boolean };
 * const isBig = ({ spec }: kopf.ChangingCauseContext<Spec>) => (spec.size ?? 0) > 10;
 * const isReady = ({ spec }: kopf.ChangingCauseContext<Spec>) => spec.ready === true;
 * const when = kopf.all([isBig, isReady]);
 * kopf.on.update<Spec>("kopfexamples", { when }, function updateFn() {});
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
 * import * as kopf from "@kopf/kopf";
 *
 * type Spec = { size?: number; urgent?: boolean };
 * const isBig = ({ spec }: kopf.ChangingCauseContext<Spec>) => (spec.size ?? 0) > 10;
 * const isUrgent = ({ spec }: kopf.ChangingCauseContext<Spec>) => spec.urgent === true;
 * const when = kopf.any([isBig, isUrgent]);
 * kopf.on.update<Spec>("kopfexamples", { when }, function updateFn() {});
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
 * import * as kopf from "@kopf/kopf";
 *
 * type Spec = { size?: number; urgent?: boolean };
 * const isBig = ({ spec }: kopf.ChangingCauseContext<Spec>) => (spec.size ?? 0) > 10;
 * const isUrgent = ({ spec }: kopf.ChangingCauseContext<Spec>) => spec.urgent === true;
 * const when = kopf.none([isBig, isUrgent]);
 * kopf.on.update<Spec>("kopfexamples", { when }, function updateFn() {});
 * ```
 */
export function none<A extends unknown[]>(
  fns: Iterable<(...args: A) => boolean>,
): (...args: A) => boolean {
  const list = [...fns];
  return (...args: A): boolean => !list.some((fn) => fn(...args));
}
