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

import { type SleepingClock, sleepUnless, SYSTEM_CLOCK } from "../kube/time.ts";
import type { DaemonStopped, StopReason } from "../registry/context.ts";

/**
 * Kopf's `DaemonStopper`: set once with the first reason; later reasons (signalled, cancelled,
 * abandoned) are recorded as the stop escalates.
 */
export class DaemonStopper implements DaemonStopped {
  readonly #clock: SleepingClock;
  readonly #requested = new AbortController();
  readonly #cancelled = new AbortController();
  readonly #reasons = new Set<StopReason>();
  #reason: StopReason | null = null;
  #when: number | undefined;

  /** A stopper; `parent` (the operator's hard abort) also cancels. */
  constructor(options: { clock?: SleepingClock; parent?: AbortSignal } = {}) {
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
    await sleepUnless(seconds, this.#requested.signal, this.#clock);
    return this.isSet;
  }
}
