/**
 * The stop request of a daemon or timer: Kopf's `DaemonStopper` and the `stopped` kwarg, plus
 * the `AbortSignal` handlers get as `signal`.
 *
 * Two moments: the stop request (`stopped.isSet`, `stopped.wait()` returns) and the cancellation
 * (`signal` aborts, Kopf's `task.cancel()`): only when `cancellationTimeout` is given (after
 * `cancellationBackoff`), or at operator exit — see `daemons.ts`.
 *
 * @module
 */

import { type SleepingClock, sleepUnless, SYSTEM_CLOCK } from "../kube/time.ts";
import type { DaemonStopped, StopReason, StopReasons } from "../registry/context.ts";

/** Kopf's order of `DaemonStoppingReason` flags, in which combined reasons are listed. */
const ORDER: readonly StopReason[] = [
  "done",
  "filters-mismatch",
  "resource-deleted",
  "operator-pausing",
  "operator-exiting",
  "daemon-signalled",
  "daemon-cancelled",
  "daemon-abandoned",
];

/** A snapshot of the reasons of a stop, in Kopf's order. */
class ReasonSet extends Set<StopReason> implements StopReasons {
  constructor(reasons: Iterable<StopReason>) {
    const recorded = new Set(reasons);
    super(ORDER.filter((reason) => recorded.has(reason)));
  }

  override toString(): string {
    return [...this].join("|");
  }

  toJSON(): StopReason[] {
    return [...this];
  }
}

/**
 * Kopf's `DaemonStopper`: set with the first reason; later reasons (signalled, cancelled,
 * abandoned, done) are added as the stop escalates, and `reason` carries them all, as Kopf's
 * combined flags do.
 */
export class DaemonStopper implements DaemonStopped {
  readonly #clock: SleepingClock;
  readonly #requested = new AbortController();
  readonly #cancelled = new AbortController();
  readonly #reasons = new Set<StopReason>();
  #when: number | undefined;

  /** A stopper; `parent` (the operator's hard abort) also cancels. */
  constructor(options: { clock?: SleepingClock; parent?: AbortSignal } = {}) {
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    const parent = options.parent;
    if (parent) {
      if (parent.aborted) this.cancel("daemon-cancelled");
      else parent.addEventListener("abort", () => this.cancel("daemon-cancelled"), { once: true });
    }
  }

  /** Stop was requested. */
  get isSet(): boolean {
    return this.#reasons.size > 0;
  }

  /** All the reasons recorded so far (a snapshot), or `null` before the stop request. */
  get reason(): StopReasons | null {
    return this.isSet ? new ReasonSet(this.#reasons) : null;
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

  /** Request the stop (the first call is the request); every reason is added to `reason`. */
  set(reason: StopReason): void {
    const first = !this.isSet;
    this.#reasons.add(reason);
    if (!first) return;
    this.#when = this.#clock.now();
    this.#requested.abort(new DOMException(`stopped: ${reason}`, "AbortError"));
  }

  /**
   * Cancel: abort `signal`. With a `reason` (`daemon-cancelled` when the stop escalates), it is
   * added; without one, a stop already requested keeps its reasons (Kopf flags a cancellation only
   * when the stop escalates to it), and one not yet requested gets `daemon-cancelled`.
   */
  cancel(reason?: StopReason): void {
    if (reason !== undefined || !this.isSet) this.set(reason ?? "daemon-cancelled");
    if (!this.#cancelled.signal.aborted) {
      this.#cancelled.abort(new DOMException(`cancelled: ${this.reason}`, "AbortError"));
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
