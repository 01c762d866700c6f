/**
 * Exponential backoff with full jitter, and an abortable sleep.
 *
 * Full jitter (a uniform draw between zero and the exponential ceiling) is what spreads the
 * retries of many clients that failed at the same moment — e.g. every operator replica when the
 * API server restarts — instead of letting them hammer it in lockstep.
 *
 * @module
 */

/** The shape of an exponential backoff. */
export interface BackoffPolicy {
  /** Ceiling of the first delay, in milliseconds. */
  initialMs: number;
  /** Growth of the ceiling per consecutive failure (≥ 1). */
  factor: number;
  /** Largest ceiling, in milliseconds. */
  maxMs: number;
  /**
   * A failure this long after the previous one starts the sequence over, in milliseconds: a new
   * incident, not the next step of the old one (watches: client-go's reflector resets after 2 min).
   */
  resetAfterMs?: number;
  /**
   * Explicit ceilings per attempt, in milliseconds (Kopf's `error_backoffs`); past the last one,
   * the last one again. Given, they replace the exponential growth.
   */
  stepsMs?: readonly number[];
}

/**
 * Reconnects of list/watch loops: client-go's reflector (0.8 s doubling to a 30 s cap, reset after
 * 2 min without failures), which bounds a sick API server's load to about 0.2 requests per second
 * per watch, however long the sickness lasts.
 */
export const WATCH_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  initialMs: 800,
  factor: 2,
  maxMs: 30_000,
  resetAfterMs: 120_000,
});

/**
 * The client's request retry backoff: 0.5 s doubling to a 30 s cap, full jitter. With the
 * default of 8 retries it spans about a minute in the worst case. An operator gives its client
 * `settings.networking.errorBackoffs` (Kopf's 1, 1, 2, 3, 5, 8, 13, 21 s) as the ceilings instead.
 */
export const REQUEST_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  initialMs: 500,
  factor: 2,
  maxMs: 30_000,
});

/**
 * The ceiling of the delay before retry number `attempt` (0-based): the policy's step for it, or
 * `min(maxMs, initialMs × factor^attempt)`.
 */
export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
  if (!(attempt >= 0)) attempt = 0;
  const steps = policy.stepsMs;
  if (steps?.length) return Math.max(0, steps[Math.min(attempt, steps.length - 1)]);
  if (!(policy.initialMs > 0)) return 0;
  // Overflows to Infinity for huge attempt numbers, which the cap absorbs.
  const grown = policy.initialMs * Math.max(policy.factor, 1) ** attempt;
  return Math.max(0, Math.min(policy.maxMs, grown));
}

/**
 * A full-jitter delay before retry number `attempt` (0-based): uniform in
 * `[0, backoffCeiling(attempt))`.
 *
 * @example
 * ```ts
 * import { backoffDelay, REQUEST_BACKOFF } from "./backoff.ts";
 * const ms = backoffDelay(3, REQUEST_BACKOFF); // somewhere in [0, 4000)
 * ```
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return r * backoffCeiling(attempt, policy);
}

/**
 * Stateful backoff: each {@linkcode Backoff.next} is one more consecutive failure;
 * {@linkcode Backoff.reset} after a success.
 *
 * @example
 * ```ts
 * import { Backoff, REQUEST_BACKOFF } from "./backoff.ts";
 * const backoff = new Backoff(REQUEST_BACKOFF);
 * backoff.next(); // in [0, 500)
 * backoff.next(); // in [0, 1000)
 * backoff.reset();
 * ```
 */
export class Backoff {
  #policy: BackoffPolicy;
  #random: () => number;
  #now: () => number;
  #attempt = 0;
  #lastFailureAt = -Infinity;

  /** Creates a backoff; `random` and `now` are injectable for tests. */
  constructor(
    policy: BackoffPolicy = REQUEST_BACKOFF,
    random: () => number = Math.random,
    now: () => number = Date.now,
  ) {
    this.#policy = policy;
    this.#random = random;
    this.#now = now;
  }

  /** Consecutive failures so far. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next retry, in milliseconds; counts one more failure. */
  next(): number {
    const reset = this.#policy.resetAfterMs;
    if (reset !== undefined) {
      const now = this.#now();
      if (now - this.#lastFailureAt >= reset) this.#attempt = 0;
      this.#lastFailureAt = now;
    }
    return backoffDelay(this.#attempt++, this.#policy, this.#random);
  }

  /** Starts over (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}
