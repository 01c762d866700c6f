/**
 * Invoking one handler once: the call itself (with `kopf.adopt()` defaults and sub-handler
 * registration bound to it), its deadline, and what its attempt means (Kopf's
 * `execute_handler_once`): success, a retry later, or a failure for good — logged with Kopf's
 * wording.
 *
 * A handler can stall nothing but its own object: a `timeout` option turns a call that never
 * resolves into a {@linkcode HandlerTimeoutError} (its signal is aborted), and an operator stop
 * stops waiting for it.
 *
 * Results must be JSON: a handler returning something that is not (a function, a BigInt, a
 * cyclic object) succeeds, but nothing is stored for it, with a warning naming the handler.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { currentBody, type OwnerBody } from "../kits/hierarchies.ts";
import type { HandlerRecordBase } from "../registry/records.ts";
import {
  checkLimits,
  type ErrorsMode,
  evaluateOutcome,
  formatRuntime,
  HandlerTimeoutError,
  type Outcome,
  toError,
} from "./errors.ts";
import { attributed } from "./containment.ts";
import { literal } from "./loggers.ts";

/** Options of {@linkcode invoke}. */
export interface InvokeOptions {
  /** The handler's title for messages, e.g. `Handler 'create_fn'`. */
  readonly title: string;
  /** The object being handled, for `kopf.adopt()` and friends without an explicit owner. */
  readonly body: OwnerBody;
  /** Seconds the call may still take (the handler's timeout minus its runtime so far). */
  readonly timeout?: number;
  /** Stops waiting for the call (operator stop); the handler's own signal aborts too. */
  readonly signal: AbortSignal;
  /** Aborted when the call times out; the handler's context signal follows it. */
  readonly controller: AbortController;
  /** Wraps the call, e.g. to bind sub-handler registration to it. */
  readonly around?: <T>(fn: () => T) => T;
  /** The object's logger: what the handler leaves behind uncaught is logged there. */
  readonly logger: Logger;
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
  const { signal, controller } = options;
  signal.throwIfAborted();
  const around = options.around ?? (<T>(f: () => T): T => f());
  const call = (): unknown => currentBody.run(options.body, () => around(() => fn(context)));
  const started = Date.now();
  const pending = Promise.resolve().then(() =>
    attributed({ title: options.title, logger: options.logger }, call)
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
          controller.abort(error);
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

/** A handler's result turned into plain JSON, or the reason it cannot be. */
export type JsonResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: string };

/** Make a result storable: plain JSON (dates become strings), or why it is not JSON at all. */
export function jsonResult(value: unknown): JsonResult {
  if (value === undefined || value === null) return { ok: true, value: undefined };
  if (typeof value === "function" || typeof value === "symbol") {
    return { ok: false, reason: `a ${typeof value}` };
  }
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return { ok: false, reason: "a value without a JSON form" };
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

/** What {@linkcode executeOnce} needs besides the call. */
export interface ExecuteOptions {
  /** The handler (its id, title, errors, timeout, retries, backoff). */
  readonly handler: HandlerRecordBase;
  /** Attempts made so far and when the first one started. */
  readonly state: { readonly retries: number; readonly started: Date };
  /** How arbitrary errors are treated when the handler does not say. */
  readonly defaultErrors: ErrorsMode;
  /** Backoff for arbitrary errors when the handler does not say. */
  readonly defaultBackoff: number;
  /** Where the outcome is logged. */
  readonly logger: Logger;
  /** Stops waiting for the handler; an aborted attempt has no outcome (it is rethrown). */
  readonly signal: AbortSignal;
  /** Ids of sub-handlers of any depth that ran under this handler. */
  readonly subrefs?: ReadonlySet<string>;
  /** The time source. */
  readonly now?: () => Date;
}

/**
 * One attempt of a handler: the limits checked first (a handler out of time or attempts fails
 * without being called), then the call, then Kopf's outcome, logged. Throws only when the
 * operator is stopping (`signal` aborted): such an attempt leaves no trace.
 */
export async function executeOnce(
  call: (remainingTimeout: number | undefined) => Promise<unknown>,
  options: ExecuteOptions,
): Promise<Outcome> {
  const { handler, state, logger } = options;
  const now = options.now ?? (() => new Date());
  const policy = {
    title: handler.title,
    errors: handler.errors,
    timeout: handler.timeout,
    retries: handler.retries,
    backoff: handler.backoff,
  };
  logger.debug(`${handler.title} is invoked.`);
  const before = now();
  let threw = false;
  let error: unknown;
  let result: unknown;
  const limit = checkLimits(policy, state, before);
  if (limit) {
    threw = true;
    error = limit;
  } else {
    const runtime = (before.getTime() - state.started.getTime()) / 1000;
    const remaining = handler.timeout === undefined ? undefined : handler.timeout - runtime;
    try {
      result = await call(remaining);
    } catch (thrown) {
      if (options.signal.aborted) throw thrown;
      threw = true;
      error = thrown;
    }
  }
  if (!threw) {
    const json = jsonResult(result);
    if (!json.ok) {
      logger.warn(
        `${handler.title} returned a value that is not JSON (${json.reason}); ` +
          "nothing is stored for it.",
      );
    }
    result = json.ok ? json.value : undefined;
  }
  const outcome = evaluateOutcome({
    policy,
    state,
    now: now(),
    defaultErrors: options.defaultErrors,
    defaultBackoff: options.defaultBackoff,
    threw,
    error,
    result,
    subrefs: [...(options.subrefs ?? [])],
  });
  // The object logger takes lone strings literally; with properties, the text is escaped here.
  const text = outcome.log.message;
  if (outcome.log.level === "debug") logger.debug(text);
  else if (outcome.log.level === "info") logger.info(text);
  else if (outcome.log.withStack) logger.error(literal(text), { error: toError(error) });
  else logger.error(text);
  return outcome;
}
