/**
 * Calling user code once — every handler, daemon, timer, index function and activity goes through
 * {@linkcode invoke}: attributed to its handler and object (what it leaves uncaught is contained,
 * see `containment.ts`), with the object as the default owner of `kopf.adopt()` and friends, with
 * sub-handler registration bound to it, and with a deadline: a `timeout` turns a call that never
 * resolves into a {@linkcode HandlerTimeoutError} (its signal is aborted), and an operator stop
 * stops waiting for it. What the attempt means is `execution.ts`'s job.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { currentBody, type OwnerBody } from "../kits/hierarchies.ts";
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
  const around = options.around ?? (<T>(f: () => T): T => f());
  const body = options.body;
  const call = (): unknown =>
    body ? currentBody.run(body, () => around(() => fn(context))) : around(() => fn(context));
  const started = Date.now();
  const pending = Promise.resolve().then(() =>
    attributed({ title: options.title, logger: options.logger, mayExit: options.mayExit }, call)
  );
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
