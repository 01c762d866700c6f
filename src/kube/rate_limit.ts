/**
 * Client-side request limits: a token bucket for the request rate and a cap on requests in
 * flight.
 *
 * The token bucket serves waiting callers strictly first-come-first-served from one queue, woken
 * by one timer that is re-timed whenever the rate changes — so a raised rate helps the callers
 * already waiting, not only later ones.
 *
 * The rate adapts to the server, like TCP's congestion window: it starts at `qps`, doubles every
 * half second in which callers had to wait and the server answered without throttling, up to
 * `maxQps`; it halves (never below `qps`) when the server throttles (429, or 503 with
 * `Retry-After` — API Priority and Fairness rejecting a request), and returns to `qps` once demand
 * has stayed below `qps` for 30 s. A healthy server is therefore not held to a fixed client-side
 * rate during a burst, a throttling one is backed off from at once, and a hot loop after the
 * burst is over is held to `qps` again. `maxQps = qps` makes it a plain token bucket.
 *
 * @module
 */

import { type SleepingClock, SYSTEM_CLOCK } from "./time.ts";

/** Options of a {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Starting (and lowest) requests per second; `0` turns the limiter off. */
  qps: number;
  /** How many requests may go at once after a quiet period (at least 1). */
  burst: number;
  /**
   * Highest rate the bucket may adapt up to while the server answers without throttling
   * (default: `qps`, i.e. a fixed rate).
   */
  maxQps?: number;
  /** Time source (tests). */
  clock?: SleepingClock;
}

/** How the server answered a request, for the bucket's rate adaptation. */
export type RateOutcome = "ok" | "throttled" | "failed";

/** A rate change, for logging and metrics. */
export interface RateChange {
  /** The rate before, requests per second. */
  from: number;
  /** The rate after. */
  to: number;
  /** Why it changed. */
  cause: "unthrottled" | "throttled" | "quiet";
}

interface Waiter {
  since: number;
  resolve(waitedMs: number): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A window of this length with waiting callers and no throttling doubles the rate. */
const RAISE_WINDOW_MS = 500;
/** After the server throttles, the rate is not raised again for this long. */
const HOLD_AFTER_THROTTLE_MS = 10_000;
/** A window this long with demand at or below `qps` returns the rate to `qps`. */
const QUIET_WINDOW_MS = 30_000;

/**
 * A token bucket: `burst` tokens, refilled at the current rate, which adapts between `qps` and
 * `maxQps` (see the module docs).
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./rate_limit.ts";
 * const bucket = new TokenBucket({ qps: 50, burst: 100, maxQps: 1000 });
 * const waitedMs = await bucket.acquire(); // 0 while the burst lasts
 * bucket.observe("ok"); // the server answered without throttling
 * ```
 */
export class TokenBucket {
  /** Starting and lowest rate (`0`: off). */
  readonly baseQps: number;
  /** Highest rate. */
  readonly maxQps: number;
  /** Bucket size. */
  readonly burst: number;
  /** Called when the rate changes. */
  onRateChange?: (change: RateChange) => void;
  #clock: SleepingClock;
  #qps: number;
  #tokens: number;
  #last: number;
  #waiters: Waiter[] = [];
  #pumping = false;
  #wake?: AbortController;
  // Adaptation state.
  #windowStart: number;
  #windowWaited = false;
  #windowOk = false;
  #windowFailed = false;
  #holdUntil = -Infinity;
  #quietStart: number;
  #quietCount = 0;

  /** Creates a full bucket. */
  constructor(options: TokenBucketOptions) {
    if (!(options.qps >= 0)) throw new RangeError(`qps must be ≥ 0, got ${options.qps}`);
    const maxQps = options.maxQps ?? options.qps;
    if (!(maxQps >= options.qps)) {
      throw new RangeError(`maxQps must be ≥ qps (${options.qps}), got ${options.maxQps}`);
    }
    this.baseQps = options.qps;
    this.maxQps = maxQps;
    this.#qps = options.qps;
    this.burst = Math.max(1, Math.floor(options.burst));
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#tokens = this.burst;
    this.#last = this.#clock.now();
    this.#windowStart = this.#last;
    this.#quietStart = this.#last;
  }

  /** Whether the limiter limits anything (`qps > 0`). */
  get enabled(): boolean {
    return this.baseQps > 0;
  }

  /** The current rate, requests per second. */
  get qps(): number {
    return this.#qps;
  }

  /** Tokens available now (fractional while refilling). */
  get tokens(): number {
    this.#advance();
    return this.#tokens;
  }

  /** Callers waiting for a token. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Waits for a token. Resolves with the milliseconds waited (0 when not throttled); rejects
   * with the signal's reason if it aborts first (its place in line is given up).
   */
  acquire(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.enabled) return Promise.resolve(0);
    this.#advance();
    this.#countDemand();
    if (this.#waiters.length === 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      return Promise.resolve(0);
    }
    this.#windowWaited = true;
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = { since: this.#clock.now(), resolve, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#pump();
    });
  }

  /**
   * Tells the bucket how the server answered a request: `"throttled"` (429, or 503 with
   * `Retry-After`) halves the rate; windows of waiting callers with `"ok"` answers and no
   * `"failed"` ones (5xx, connection errors) double it.
   */
  observe(outcome: RateOutcome): void {
    if (!this.enabled || this.maxQps === this.baseQps) return;
    const now = this.#clock.now();
    if (outcome === "throttled") {
      this.#holdUntil = now + HOLD_AFTER_THROTTLE_MS;
      this.#startWindow(now);
      if (this.#qps > this.baseQps) {
        this.#setRate(Math.max(this.baseQps, this.#qps / 2), "throttled");
      }
      return;
    }
    if (outcome === "ok") this.#windowOk = true;
    else this.#windowFailed = true;
    if (now - this.#windowStart < RAISE_WINDOW_MS) return;
    const raise = this.#windowWaited && this.#windowOk && !this.#windowFailed &&
      now >= this.#holdUntil && this.#qps < this.maxQps;
    this.#startWindow(now);
    if (raise) this.#setRate(Math.min(this.maxQps, this.#qps * 2), "unthrottled");
  }

  #startWindow(now: number): void {
    this.#windowStart = now;
    this.#windowWaited = this.#waiters.length > 0;
    this.#windowOk = false;
    this.#windowFailed = false;
  }

  /** Returns the rate to `qps` once demand has stayed at or below it for a quiet window. */
  #countDemand(): void {
    if (this.#qps === this.baseQps) return;
    const now = this.#clock.now();
    if (now - this.#quietStart >= QUIET_WINDOW_MS) {
      const quiet = this.#quietCount <= (this.baseQps * (now - this.#quietStart)) / 1000;
      this.#quietStart = now;
      this.#quietCount = 0;
      if (quiet) this.#setRate(this.baseQps, "quiet");
    }
    this.#quietCount++;
  }

  #setRate(qps: number, cause: RateChange["cause"]): void {
    if (qps === this.#qps) return;
    this.#advance(); // tokens earned so far are earned at the old rate
    const from = this.#qps;
    this.#qps = qps;
    if (qps > this.baseQps && from === this.baseQps) {
      this.#quietStart = this.#clock.now();
      this.#quietCount = 0;
    }
    this.#wake?.abort(); // re-time the waiters' timer
    this.onRateChange?.({ from, to: qps, cause });
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#waiters.length > 0) {
        this.#advance();
        while (this.#waiters.length > 0 && this.#tokens >= 1) {
          this.#tokens -= 1;
          const waiter = this.#waiters.shift()!;
          if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
          waiter.resolve(this.#clock.now() - waiter.since);
        }
        if (this.#waiters.length === 0) break;
        const wake = new AbortController();
        this.#wake = wake;
        try {
          await this.#clock.sleep(((1 - this.#tokens) * 1000) / this.#qps, wake.signal);
        } catch {
          // Woken early: the rate changed.
        }
        this.#wake = undefined;
      }
    } finally {
      this.#pumping = false;
    }
  }

  #advance(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.#qps) / 1000);
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
