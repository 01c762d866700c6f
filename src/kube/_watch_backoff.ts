/**
 * Reconnect backoff for list/watch loops: the client's full-jitter exponential backoff, plus
 * forgetting past failures after a healthy period.
 *
 * The numbers default to client-go's reflector (0.8 s doubling to a 30 s cap, reset after 2 min
 * without failures), which bounds a sick API server's load to about 0.2 requests per second per
 * watch, however long the sickness lasts.
 *
 * @module
 */
import { backoffDelay, type BackoffPolicy } from "./backoff.ts";

/** A reconnect backoff: an exponential backoff that starts over after a quiet period. */
export interface ReconnectPolicy extends BackoffPolicy {
  /** A failure this long after the previous one starts the sequence over, in milliseconds. */
  resetAfterMs: number;
}

/** client-go's reflector backoff: 0.8 s ×2, full jitter, cap 30 s, reset after 2 min. */
export const WATCH_BACKOFF: Readonly<ReconnectPolicy> = Object.freeze({
  initialMs: 800,
  factor: 2,
  maxMs: 30_000,
  resetAfterMs: 120_000,
});

/**
 * Stateful reconnect backoff: each {@linkcode WatchBackoff.next} call is one more failure;
 * failures further apart than `resetAfterMs` do not add up.
 *
 * @example
 * ```ts
 * import { WATCH_BACKOFF, WatchBackoff } from "./_watch_backoff.ts";
 * const backoff = new WatchBackoff(WATCH_BACKOFF);
 * const delayMs = backoff.next(); // somewhere in [0, 800)
 * ```
 */
export class WatchBackoff {
  #policy: ReconnectPolicy;
  #random: () => number;
  #now: () => number;
  #failures = 0;
  #lastFailureAt = -Infinity;

  /** Creates a backoff; `random` and `now` are injectable so tests need no real time. */
  constructor(
    policy: ReconnectPolicy,
    random: () => number = Math.random,
    now: () => number = Date.now,
  ) {
    this.#policy = policy;
    this.#random = random;
    this.#now = now;
  }

  /** Consecutive failures counted so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Records one failure and returns how long to wait before retrying, in milliseconds. */
  next(): number {
    const now = this.#now();
    // A failure after a long healthy stretch is a new incident, not the next step of the old one.
    if (now - this.#lastFailureAt >= this.#policy.resetAfterMs) this.#failures = 0;
    this.#lastFailureAt = now;
    return Math.floor(backoffDelay(this.#failures++, this.#policy, this.#random));
  }
}
