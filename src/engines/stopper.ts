/**
 * The stop request of a daemon or timer: Kopf's `DaemonStopper` and the `stopped` kwarg, plus
 * the `AbortSignal` handlers get as `signal`.
 *
 * Two moments: the stop request (`stopped.isSet`, `stopped.wait()` returns) and the cancellation
 * (`signal` aborts). A daemon without `cancellationBackoff` is cancelled at the request; with
 * it, `signal` aborts that many seconds later, so the daemon can first finish on its own.
 *
 * @module
 */

import { type Clock, SYSTEM_CLOCK } from "../kube/rate_limit.ts";
import type { DaemonStopped, StopReason } from "../registry/context.ts";

/**
 * Kopf's `DaemonStopper`: set once with the first reason; later reasons (signalled, cancelled,
 * abandoned) are recorded as the stop escalates.
 */
export class DaemonStopper implements DaemonStopped {
  readonly #clock: Clock;
  readonly #requested = new AbortController();
  readonly #cancelled = new AbortController();
  readonly #reasons = new Set<StopReason>();
  #reason: StopReason | null = null;
  #when: number | undefined;

  /** A stopper; `parent` (the operator's hard abort) also cancels. */
  constructor(options: { clock?: Clock; parent?: AbortSignal } = {}) {
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    const parent = options.parent;
    if (parent) {
      if (parent.aborted) this.cancel();
      else parent.addEventListener("abort", () => this.cancel(), { once: true });
    }
  }

  /** Stop was requested. */
  get isSet(): boolean {
    return this.#reason !== null;
  }

  /** The first reason given, once requested. */
  get reason(): StopReason | null {
    return this.#reason;
  }

  /** All reasons recorded so far. */
  get reasons(): ReadonlySet<StopReason> {
    return this.#reasons;
  }

  /** When the stop was requested (clock ms). */
  get when(): number | undefined {
    return this.#when;
  }

  /** Aborts when stop is requested (for sleeps that should end early). */
  get requested(): AbortSignal {
    return this.#requested.signal;
  }

  /** The handler's `signal`: aborts at cancellation. */
  get signal(): AbortSignal {
    return this.#cancelled.signal;
  }

  /** Whether this reason was recorded. */
  has(reason: StopReason): boolean {
    return this.#reasons.has(reason);
  }

  /** Request the stop (the first call decides `reason`); later reasons are recorded. */
  set(reason: StopReason): void {
    this.#reasons.add(reason);
    if (this.#reason !== null) return;
    this.#reason = reason;
    this.#when = this.#clock.now();
    this.#requested.abort(new DOMException(`stopped: ${reason}`, "AbortError"));
  }

  /** Cancel: abort `signal` (implies a stop request). */
  cancel(reason: StopReason = "daemon-cancelled"): void {
    if (!this.isSet) this.set(reason);
    this.#reasons.add(reason);
    if (!this.#cancelled.signal.aborted) {
      this.#cancelled.abort(new DOMException(`cancelled: ${this.#reason}`, "AbortError"));
    }
  }

  /** Wait up to `seconds` (forever if omitted) for the stop request; resolves to `isSet`. */
  async wait(seconds?: number): Promise<boolean> {
    if (this.isSet) return true;
    if (seconds === undefined || !Number.isFinite(seconds)) {
      await new Promise<void>((resolve) =>
        this.#requested.signal.addEventListener("abort", () => resolve(), { once: true })
      );
      return true;
    }
    await sleepUnless(this.#clock, seconds, this.#requested.signal);
    return this.isSet;
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Sleep `seconds` unless `signal` aborts first; never rejects. Resolves to whether it slept fully. */
export async function sleepUnless(
  clock: Clock,
  seconds: number,
  signal: AbortSignal,
): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    // Even a zero delay yields to the event loop, so that a handler failing at once with
    // `delay: null` cannot starve timers and I/O.
    let remaining = Math.max(1, seconds * 1000);
    do {
      // Timers fire at once for delays above 2^31-1 ms; longer sleeps go in chunks.
      const chunk = Math.min(remaining, MAX_TIMER_MS);
      await clock.sleep(chunk, signal);
      remaining -= chunk;
    } while (remaining > 0);
    return true;
  } catch {
    return false;
  }
}
