/**
 * Lifecycles: which of the due handlers run in each round of a handling cycle, and in what order.
 * A cycle runs round after round until no handler is due now, and ends in one `/status` write and
 * one object write however many rounds it took — so a lifecycle picks the order and pacing of the
 * handlers, not the number of writes.
 *
 * The default is Kopf's {@linkcode asap} (one handler per round, the least retried first): each
 * handler sees the results and patches of the handlers before it, as in Kopf. With
 * `settings.execution.concurrent`, the handlers of one round run at the same time
 * ({@linkcode allAtOnce}: every due handler in one round), and do not see each other's results.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.execution.lifecycle = kopf.lifecycles.oneByOne; // registration order, one per round
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
 * Run all due handlers in one round, in registration order (at the same time only with
 * `settings.execution.concurrent`).
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

/** Run one handler per round, in registration order. */
export function oneByOne<H extends { readonly id: string }>(
  handlers: readonly H[],
  _context?: LifecycleContext,
): H[] {
  return handlers.slice(0, 1);
}

/** Run one random handler per round. */
export function randomized<H extends { readonly id: string }>(
  handlers: readonly H[],
  _context?: LifecycleContext,
): H[] {
  return handlers.length ? [handlers[Math.floor(Math.random() * handlers.length)]] : [];
}

/** Run all due handlers in one round, in random order. */
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
 * Kopf's default and ours: one handler per round, the least retried first (ties keep registration
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
