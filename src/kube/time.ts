/**
 * Time for everything that waits: one {@linkcode Clock} (real by default, a fake one in tests) and
 * the two ways of sleeping on it — {@linkcode sleep}, which rejects when its signal aborts, and
 * {@linkcode sleepUnless}, which never rejects and says whether it slept fully.
 *
 * It lives in the lowest layer that waits (the API client's rate limits and retries); the queue,
 * the Event poster, the engines and the reactor take their time from here too.
 *
 * @module
 */

/** A source of time and timers; the default is the real clock, tests inject a fake one. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Arms a one-shot timer. */
  setTimeout(callback: () => void, delayMs: number): unknown;
  /** Disarms a timer armed by {@linkcode Clock.setTimeout}. */
  clearTimeout(handle: unknown): void;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** What most waiting code needs of a clock: the time, and sleeping on it. */
export type SleepingClock = Pick<Clock, "now" | "sleep">;

/**
 * The longest delay a timer takes: `setTimeout()` fires at once for longer ones, so longer waits
 * re-arm in chunks of this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason as soon as it aborts.
 * The timer is cleared on abort, so nothing keeps the process alive.
 *
 * @example
 * ```ts
 * import { sleep } from "./time.ts";
 * await sleep(10);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.min(ms, MAX_TIMER_MS));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The real clock. */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (callback: () => void, delayMs: number): unknown => setTimeout(callback, delayMs),
  clearTimeout: (handle: unknown) => clearTimeout(handle as number),
  sleep,
});

/**
 * Sleep `seconds` unless `signal` aborts first; never rejects. Resolves to whether it slept fully.
 * Even a zero delay yields to the event loop (so that, e.g., a handler failing at once with
 * `delay: null` cannot starve timers and I/O); waits longer than a timer takes go in chunks.
 *
 * @example
 * ```ts
 * import { sleepUnless } from "./time.ts";
 * const stop = new AbortController();
 * const slept = await sleepUnless(0.01, stop.signal); // true
 * ```
 */
export async function sleepUnless(
  seconds: number,
  signal: AbortSignal,
  clock: SleepingClock = SYSTEM_CLOCK,
): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    let remaining = Math.max(1, seconds * 1000);
    do {
      const chunk = Math.min(remaining, MAX_TIMER_MS);
      await clock.sleep(chunk, signal);
      remaining -= chunk;
    } while (remaining > 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One timer for the earliest of many due times: a queue's or a poster's wake-up. Setting a later
 * time than the one armed changes nothing; the callback runs once per ring.
 *
 * @example
 * ```ts
 * import { Alarm } from "./time.ts";
 * const alarm = new Alarm(() => console.log("due"));
 * alarm.ringAt(Date.now() + 10);
 * alarm.clear();
 * ```
 */
export class Alarm {
  readonly #ring: () => void;
  readonly #clock: Clock;
  #timer: unknown = undefined;
  #at = Infinity;

  /** An alarm that calls `ring` when due; not armed yet. */
  constructor(ring: () => void, clock: Clock = SYSTEM_CLOCK) {
    this.#ring = ring;
    this.#clock = clock;
  }

  /** Ring at `dueAt` (clock ms), unless armed to ring earlier already. */
  ringAt(dueAt: number): void {
    if (dueAt >= this.#at) return;
    this.clear();
    this.#at = dueAt;
    const delay = Math.min(Math.max(dueAt - this.#clock.now(), 0), MAX_TIMER_MS);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#at = Infinity;
      this.#ring();
    }, delay);
  }

  /** Disarm. */
  clear(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }
}
