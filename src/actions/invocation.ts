/**
 * Calling user code once — every handler, daemon, timer, index function and activity goes through
 * {@linkcode invoke}: attributed to its handler and object (what it leaves uncaught is contained,
 * see `containment.ts`), with the object as the default owner of `kopf.adopt()` and friends, with
 * sub-handler registration bound to it, and with a deadline: a `timeout` turns a call that never
 * resolves into a {@linkcode HandlerTimeoutError} (its signal is aborted), and an operator stop
 * stops waiting for it. What the attempt means is `execution.ts`'s job.
 *
 * Calls are also where the operator's `settings.execution` applies: at most `maxWorkers` are in
 * progress at once (a call waits for a slot before it starts; sub-handlers run in their parent's
 * slot, or a parent waiting for its children could wait for a slot forever), and a call that
 * blocks the event loop longer than `stallThreshold` — synchronous code, during which every
 * other object waits — gets a WARNING naming it, with the remedy. The precise case is measured
 * around the call's synchronous part; blocking later in an async handler is caught by a lag probe
 * that runs while calls are in progress and names the calls that were.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { AsyncLocalStorage } from "node:async_hooks";
import { currentBody, type OwnerBody } from "../kits/hierarchies.ts";
import type { ExecutionSettings } from "../settings/settings.ts";
import { attributed } from "./containment.ts";
import { formatRuntime, HandlerTimeoutError } from "./errors.ts";

const NEVER = new AbortController().signal;

/** Options of {@linkcode invoke}. */
export interface InvokeOptions {
  /** The handler's title for messages, e.g. `Handler 'create_fn'`. */
  readonly title: string;
  /** The object being handled, for `kopf.adopt()` and friends without an explicit owner. */
  readonly body?: OwnerBody;
  /** Seconds the call may still take (the handler's timeout minus its runtime so far). */
  readonly timeout?: number;
  /** Stops waiting for the call (operator stop); the handler's own signal aborts too. */
  readonly signal?: AbortSignal;
  /** Aborted when the call times out; the handler's context signal follows it. */
  readonly controller?: AbortController;
  /** Wraps the call, e.g. to bind sub-handler registration to it. */
  readonly around?: <T>(fn: () => T) => T;
  /** The object's logger: what the handler leaves behind uncaught is logged there. */
  readonly logger: Logger;
  /** An operator activity (startup, …): its code may end the process. */
  readonly mayExit?: boolean;
  /** The operator's execution settings: the bound on calls and the stall warning (none: off). */
  readonly execution?: Pick<ExecutionSettings, "maxWorkers" | "stallThreshold">;
  /** Outside the `maxWorkers` bound (daemons: they run for the object's lifetime). */
  readonly unbounded?: boolean;
}

/** One call in progress, as the lag probe names it. */
interface Running {
  readonly title: string;
  readonly logger: Logger;
}

const PROBE_MS = 250;

/** The calls of one operator (one per settings object): the `maxWorkers` slots and the probe. */
class Calls {
  readonly #execution: Pick<ExecutionSettings, "maxWorkers" | "stallThreshold">;
  readonly #running = new Set<Running>();
  readonly #waiting: (() => void)[] = [];
  #slots = 0;
  #probe: ReturnType<typeof setInterval> | undefined;
  #tick = 0;
  #reported = 0;

  constructor(execution: Pick<ExecutionSettings, "maxWorkers" | "stallThreshold">) {
    this.#execution = execution;
  }

  get thresholdMs(): number | undefined {
    const seconds = this.#execution.stallThreshold;
    return seconds === null || !(seconds >= 0) ? undefined : seconds * 1000;
  }

  /** Waits for a slot (resolves at once below the bound); call the result to release it. */
  async slot(signal: AbortSignal): Promise<() => void> {
    while (!this.#free()) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        this.#waiting.push(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    this.#slots++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#slots--;
      this.#waiting.shift()?.();
    };
  }

  #free(): boolean {
    const max = this.#execution.maxWorkers;
    return max === null || !(max >= 1) || this.#slots < max;
  }

  /** Milliseconds of blocking a call's synchronous part reported itself (the probe skips them). */
  reported(ms: number): void {
    this.#reported += ms;
  }

  /** Counts a call in progress for the lag probe; call the result when it ends. */
  track(call: Running): () => void {
    this.#running.add(call);
    if (this.#probe === undefined && this.thresholdMs !== undefined) {
      this.#tick = performance.now();
      this.#probe = setInterval(() => this.#measure(), PROBE_MS);
      Deno.unrefTimer(this.#probe);
    }
    return () => {
      // A call that blocked and then ended has not let the probe's timer run yet: measure now,
      // while it is still among those in progress.
      if (this.#probe !== undefined) this.#measure();
      this.#running.delete(call);
      if (this.#running.size === 0) {
        clearInterval(this.#probe);
        this.#probe = undefined;
      }
    };
  }

  #measure(): void {
    const now = performance.now();
    // What the calls' synchronous parts already reported is not said twice.
    const lag = now - this.#tick - PROBE_MS - this.#reported;
    this.#tick = now;
    this.#reported = 0;
    const threshold = this.thresholdMs;
    if (threshold === undefined || lag < threshold) return;
    const calls = [...this.#running];
    const titles = calls.slice(0, 5).map((c) => c.title).join(", ") +
      (calls.length > 5 ? ` and ${calls.length - 5} more` : "");
    // Any of them may have blocked: each says it (a few), or the first names them all.
    for (const call of calls.length <= 3 ? calls : calls.slice(0, 1)) {
      call.logger.warn(
        "The event loop was blocked for {seconds} s while these calls were in progress: " +
          "{titles}; every other object waited. {remedy}",
        { seconds: (lag / 1000).toFixed(1), titles, remedy: REMEDY },
      );
    }
  }
}

const REMEDY = "Await I/O instead of blocking on it, and move CPU-bound work to a Worker " +
  "(Kopf runs synchronous handlers in threads; here all share one event loop).";

const callsOf = new WeakMap<object, Calls>();
/** The calls whose slot the current async context holds (sub-handlers run in it). */
const holding = new AsyncLocalStorage<Calls>();

function callsFor(execution: InvokeOptions["execution"]): Calls | undefined {
  if (!execution) return undefined;
  let calls = callsOf.get(execution);
  if (!calls) callsOf.set(execution, calls = new Calls(execution));
  return calls;
}

/**
 * Call `fn(context)` and wait for it, at most until the timeout or the stop signal. Synchronous
 * and asynchronous handlers are both fine; whatever they throw is rethrown as it is.
 */
export async function invoke<C>(
  fn: (context: C) => unknown,
  context: C,
  options: InvokeOptions,
): Promise<unknown> {
  const { signal = NEVER, controller } = options;
  signal.throwIfAborted();
  const calls = callsFor(options.execution);
  const bounded = calls && !options.unbounded && holding.getStore() !== calls;
  const release = bounded ? await calls.slot(signal) : undefined;
  const untrack = calls?.track({ title: options.title, logger: options.logger });
  const around = options.around ?? (<T>(f: () => T): T => f());
  const body = options.body;
  const measured = (): unknown => {
    const threshold = calls?.thresholdMs;
    if (threshold === undefined) return around(() => fn(context));
    const start = performance.now();
    try {
      return around(() => fn(context));
    } finally {
      const end = performance.now();
      if (end - start >= threshold) {
        calls!.reported(end - start);
        options.logger.warn(
          "{title} blocked the event loop for {seconds} s with synchronous code; every other " +
            "object waited. {remedy}",
          { title: options.title, seconds: ((end - start) / 1000).toFixed(1), remedy: REMEDY },
        );
      }
    }
  };
  const call = (): unknown => {
    const inSlot = bounded ? () => holding.run(calls, measured) : measured;
    return body ? currentBody.run(body, inSlot) : inSlot();
  };
  const started = Date.now();
  const pending = Promise.resolve().then(() =>
    attributed({ title: options.title, logger: options.logger, mayExit: options.mayExit }, call)
  );
  // The slot is the call's until its code is done, even when nobody waits for it any more.
  const done = () => {
    release?.();
    untrack?.();
  };
  void pending.then(done, done);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const stops: Promise<never>[] = [
    new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    }),
  ];
  const timeout = options.timeout;
  if (timeout !== undefined) {
    stops.push(
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const runtime = (Date.now() - started) / 1000;
          const error = new HandlerTimeoutError(
            `${options.title} has timed out after ${formatRuntime(runtime)} of this attempt.`,
          );
          controller?.abort(error);
          reject(error);
        }, Math.max(0, timeout * 1000));
      }),
    );
  }
  try {
    return await Promise.race([pending, ...stops]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
    // A handler abandoned on timeout or stop may still reject later: nobody waits for it.
    pending.catch(() => {});
  }
}
