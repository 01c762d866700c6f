/**
 * Client-side request limits: a token bucket for the request rate and a cap on requests in
 * flight.
 *
 * The token bucket works by reservation (like Go's `x/time/rate`): every caller takes a token
 * at once — the balance may go negative — and waits until the time its token is paid for. That
 * makes waiting callers strictly first-come-first-served and the arithmetic pure, so tests can
 * drive it with a fake clock.
 *
 * @module
 */

import { sleep } from "./backoff.ts";

/** Time source for the limiters; the default is the real clock, tests inject a fake one. */
export interface Clock {
  /** Milliseconds, monotonic enough for rate arithmetic. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: () => performance.now(),
  sleep,
});

/** Options of a {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Sustained requests per second; `0` turns the limiter off. */
  qps: number;
  /** How many requests may go at once after a quiet period (at least 1). */
  burst: number;
  /** Time source (tests). */
  clock?: Clock;
}

/**
 * A token bucket: `burst` tokens, refilled at `qps` per second.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./rate_limit.ts";
 * const bucket = new TokenBucket({ qps: 50, burst: 100 });
 * const waitedMs = await bucket.acquire(); // 0 while the burst lasts
 * ```
 */
export class TokenBucket {
  /** Sustained requests per second (`0`: off). */
  readonly qps: number;
  /** Bucket size. */
  readonly burst: number;
  #clock: Clock;
  #tokens: number;
  #last: number;

  /** Creates a full bucket. */
  constructor(options: TokenBucketOptions) {
    if (!(options.qps >= 0)) throw new RangeError(`qps must be ≥ 0, got ${options.qps}`);
    this.qps = options.qps;
    this.burst = Math.max(1, Math.floor(options.burst));
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#tokens = this.burst;
    this.#last = this.#clock.now();
  }

  /** Whether the limiter limits anything (`qps > 0`). */
  get enabled(): boolean {
    return this.qps > 0;
  }

  /** Tokens available now; negative while callers are waiting for theirs. */
  get tokens(): number {
    this.#advance();
    return this.#tokens;
  }

  /**
   * Takes one token and returns how long (ms) the caller must wait before using it; `0` when
   * one was available. Use {@linkcode TokenBucket.cancel} to give it back if the caller gives up.
   */
  reserve(): number {
    if (!this.enabled) return 0;
    this.#advance();
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.qps;
  }

  /** Returns a reserved token that will not be used (the caller was aborted while waiting). */
  cancel(): void {
    if (!this.enabled) return;
    this.#advance();
    this.#tokens = Math.min(this.burst, this.#tokens + 1);
  }

  /**
   * Waits for a token. Resolves with the milliseconds waited (0 when not throttled); rejects
   * with the signal's reason if it aborts first (and returns the token).
   */
  async acquire(signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const wait = this.reserve();
    if (wait <= 0) return 0;
    try {
      await this.#clock.sleep(wait, signal);
    } catch (error) {
      this.cancel();
      throw error;
    }
    return wait;
  }

  #advance(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.qps) / 1000);
  }
}

/**
 * A cap on concurrent operations (a FIFO semaphore). `max = 0` (or `Infinity`) means no cap.
 *
 * @example
 * ```ts
 * import { InFlightLimit } from "./rate_limit.ts";
 * const limit = new InFlightLimit(2);
 * const release = await limit.acquire();
 * try {
 *   // ... at most two of these at a time ...
 * } finally {
 *   release();
 * }
 * ```
 */
export class InFlightLimit {
  /** The cap (`Infinity` when uncapped). */
  readonly max: number;
  #active = 0;
  #waiters: { grant: () => void }[] = [];

  /** Creates a limit of `max` concurrent operations (`0`: no cap). */
  constructor(max: number) {
    if (!(max >= 0)) throw new RangeError(`max in flight must be ≥ 0, got ${max}`);
    this.max = max === 0 ? Infinity : max;
  }

  /** Operations currently holding a slot. */
  get active(): number {
    return this.#active;
  }

  /** Operations waiting for a slot. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Takes a slot, waiting in line if all are taken. Resolves with a release function (calling
   * it twice is harmless); rejects with the signal's reason if it aborts while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.max) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.#active++;
          resolve(this.#releaser());
        },
      };
      const onAbort = () => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      const next = this.#waiters.shift();
      if (next) next.grant();
    };
  }
}
