/**
 * Lifecycles: which of the handlers due for a cause run in this handling cycle, and in what
 * order. Each cycle ends in one write, so running more handlers per cycle means fewer writes.
 *
 * Our default is {@linkcode allAtOnce}: every due handler runs in one cycle and all their
 * outcomes leave in a single PATCH. Kopf's default is {@linkcode asap} (one handler per cycle,
 * i.e. at least one PATCH per handler); select it in `settings.execution.lifecycle` for exact
 * Kopf pacing.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.execution.lifecycle = kopf.lifecycles.asap; // one handler per cycle, as Kopf
 * ```
 *
 * @module
 */

/**
 * What lifecycles can look at besides the handlers (the current progress, per handler id).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // The least retried handler first, all of them in one cycle.
 * const patientFirst: kopf.Lifecycle = (handlers, context: kopf.LifecycleContext) =>
 *   [...handlers].sort((a, b) => context.retries(a.id) - context.retries(b.id));
 * const retries = (id: string) => (id === "a" ? 3 : 0);
 * const order = patientFirst([{ id: "a" }, { id: "b" }], { retries });
 * assert.deepEqual(order, [{ id: "b" }, { id: "a" }]);
 * ```
 */
export interface LifecycleContext {
  /** Attempts made so far per handler id (0 if never attempted). */
  retries(id: string): number;
}

/**
 * Picks the handlers to run now, in order, from the due ones (given in registration order).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // At most two handlers per cycle, in registration order.
 * const twoByTwo: kopf.Lifecycle = (handlers) => handlers.slice(0, 2);
 * const settings = new kopf.Settings();
 * settings.execution.lifecycle = twoByTwo;
 * const due = [{ id: "a" }, { id: "b" }, { id: "c" }];
 * assert.deepEqual(twoByTwo(due, { retries: () => 0 }), [{ id: "a" }, { id: "b" }]);
 * ```
 */
export type Lifecycle = <H extends { readonly id: string }>(
  handlers: readonly H[],
  context: LifecycleContext,
) => H[];

/**
 * Run all due handlers in one cycle, in registration order (our default).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.execution.lifecycle = kopf.lifecycles.allAtOnce;
 * });
 * ```
 */
export function allAtOnce<H extends { readonly id: string }>(
  handlers: readonly H[],
  _context?: LifecycleContext,
): H[] {
  return [...handlers];
}

/** Run one handler per cycle, in registration order. */
export function oneByOne<H extends { readonly id: string }>(
  handlers: readonly H[],
  _context?: LifecycleContext,
): H[] {
  return handlers.slice(0, 1);
}

/** Run one random handler per cycle. */
export function randomized<H extends { readonly id: string }>(
  handlers: readonly H[],
  _context?: LifecycleContext,
): H[] {
  return handlers.length ? [handlers[Math.floor(Math.random() * handlers.length)]] : [];
}

/** Run all due handlers in one cycle, in random order. */
export function shuffled<H extends { readonly id: string }>(
  handlers: readonly H[],
  _context?: LifecycleContext,
): H[] {
  const result = [...handlers];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [result[i], result[j]] = [result[j], result[i]];
  }
  return result;
}

/**
 * Kopf's default: one handler per cycle, the least retried first (ties keep registration
 * order), so a failing handler does not block the others.
 */
export function asap<H extends { readonly id: string }>(
  handlers: readonly H[],
  context: LifecycleContext,
): H[] {
  const sorted = handlers
    .map((handler, index) => ({ handler, index, retries: context.retries(handler.id) }))
    .sort((a, b) => a.retries - b.retries || a.index - b.index);
  return sorted.slice(0, 1).map((entry) => entry.handler);
}

/** Lifecycles by name (for settings from configuration files or the CLI). */
export const LIFECYCLES: Readonly<Record<string, Lifecycle>> = {
  allAtOnce,
  oneByOne,
  randomized,
  shuffled,
  asap,
};
