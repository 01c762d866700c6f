/**
 * One attempt of a handler and what it means (Kopf's `execute_handler_once`): success, a retry
 * later, or a failure for good — logged with Kopf's wording. The one execution path of every kind
 * of handler: resource handlers keep their progress on the object, daemons, timers, indexes and
 * activities in memory ({@linkcode Progress}), as in Kopf.
 *
 * Results stored on objects must be JSON: a handler returning something that is not (a function,
 * a BigInt, a cycle, a `Map` or `Set`) fails with an error naming the value's type, under the
 * handler's own error policy.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { HandlerRecordBase } from "../registry/records.ts";
import type { ErrorsMode } from "../registry/records.ts";
import { checkLimits, evaluateOutcome, type Outcome, type Progress, toError } from "./errors.ts";
import { literal } from "./loggers.ts";

/** A fresh progress starting now. */
export function freshProgress(now: Date = new Date()): Progress {
  return { retries: 0, started: now };
}

/** The retry kwargs of a progress at `now`. */
export function retryInfo(progress: Progress, now: Date = new Date()): {
  retry: number;
  started: Date;
  runtime: number;
} {
  return {
    retry: progress.retries,
    started: progress.started,
    runtime: (now.getTime() - progress.started.getTime()) / 1000,
  };
}

/** The outcome of an attempt, or a cancellation (a daemon stopped by force). */
export type ExecutionOutcome = Outcome & {
  /** The handler threw after it was cancelled: no retry, no result. */
  readonly cancelled?: boolean;
};

/** A handler's result turned into plain JSON, or the reason it cannot be. */
export type JsonResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: string };

/**
 * Make a result storable: plain JSON (values with a JSON form, such as dates, become that form),
 * or why it is not JSON — a function, a symbol, a BigInt, a cycle, or an object that would lose
 * its content as JSON (a `Map`, a `Set`, a class instance without `toJSON`), named by its type.
 */
export function jsonResult(value: unknown): JsonResult {
  if (value === undefined || value === null) return { ok: true, value: undefined };
  const reason = notJson(value, new Set());
  if (reason) return { ok: false, reason };
  try {
    return { ok: true, value: JSON.parse(JSON.stringify(value)) };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

function notJson(value: unknown, seen: Set<object>): string | undefined {
  if (typeof value === "bigint" || typeof value === "function" || typeof value === "symbol") {
    return `a ${typeof value}`;
  }
  if (typeof value !== "object" || value === null) return undefined;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return undefined;
  if (seen.has(value)) return "a cyclic structure";
  const prototype = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && prototype !== Object.prototype && prototype !== null) {
    return `a ${prototype?.constructor?.name ?? "non-plain object"}`;
  }
  seen.add(value);
  for (const item of Object.values(value)) {
    const reason = notJson(item, seen);
    if (reason) return reason;
  }
  seen.delete(value);
  return undefined;
}

/** One attempt of a handler as it ended, for metrics. */
export interface ExecutionRecord {
  /** The handler (its id, kind and resource). */
  readonly handler: HandlerRecordBase;
  /** Attempts made before this one (0: the first). */
  readonly retry: number;
  /** Seconds the attempt took (the call; 0 when a limit failed it uncalled). */
  readonly seconds: number;
  /** What came of it. */
  readonly outcome: ExecutionOutcome;
}

/** Told of every handler attempt as it ends. Must not throw. */
export type ExecutionListener = (record: ExecutionRecord) => void;

let listeners: readonly ExecutionListener[] = [];

/**
 * Tell `listener` of every handler attempt in this process from now on (the metrics' one
 * observation point of handler runs: every kind of handler goes through {@linkcode execute});
 * returns the function that stops it. Without listeners, an attempt costs nothing more.
 */
export function listenToExecutions(listener: ExecutionListener): () => void {
  listeners = [...listeners, listener];
  return () => {
    listeners = listeners.filter((l) => l !== listener);
  };
}

/**
 * Tell the listeners of an attempt that did not go through {@linkcode execute}: admission
 * handlers, which answer a request instead of retrying (their verdict: success = allowed,
 * a final error = denied or failed, `HandlerTimeoutError` = timed out).
 */
export function reportExecution(record: ExecutionRecord): void {
  if (listeners.length) told(record);
}

function told(record: ExecutionRecord): void {
  for (const listener of listeners) {
    try {
      listener(record);
    } catch {
      // A listener's bug must not become the handler's failure.
    }
  }
}

/** What {@linkcode execute} needs besides the call. */
export interface ExecuteOptions {
  /** The handler (its id, title, errors, timeout, retries, backoff). */
  readonly handler: HandlerRecordBase;
  /** Attempts made so far and when the first one started. */
  readonly state: Readonly<Progress>;
  /** How arbitrary errors are treated when the handler does not say. */
  readonly defaultErrors: ErrorsMode;
  /** Backoff for arbitrary errors when the handler does not say. */
  readonly defaultBackoff: number;
  /** Where the outcome is logged. */
  readonly logger: Logger;
  /** Stops waiting for the handler; an aborted attempt has no outcome (it is rethrown). */
  readonly signal?: AbortSignal;
  /**
   * Whether the handler has been cancelled (a daemon stopped by force): then whatever it throws
   * means "cancelled" — no retry, no result.
   */
  readonly cancelled?: () => boolean;
  /**
   * The result is stored on the object (in `status.<id>`), so it must be JSON: a result that is
   * not is dropped with a warning. Index functions and activities keep theirs as they are.
   */
  readonly storedResult?: boolean;
  /** Ids of sub-handlers of any depth that ran under this handler. */
  readonly subrefs?: ReadonlySet<string>;
  /** The time source. */
  readonly now?: () => Date;
}

/**
 * One attempt of a handler: the limits checked first (a handler out of time or attempts fails
 * without being called), then the call, then Kopf's outcome, logged. Throws only when the
 * operator is stopping (`signal` aborted): such an attempt leaves no trace.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 * import { Registry } from "../registry/registry.ts";
 * import { execute, freshProgress } from "./execution.ts";
 *
 * const registry = new Registry();
 * registry.on.create("kopfexamples", { retries: 3 }, function createFn() {});
 * const [handler] = registry.handlers;
 * const outcome = await execute(() => Promise.resolve({ done: true }), {
 *   handler,
 *   state: freshProgress(),
 *   defaultErrors: "temporary",
 *   defaultBackoff: 60,
 *   logger: getLogger(["kopf", "objects"]),
 * });
 * assert.equal(outcome.final, true); // succeeded: not to be called again for this cause
 * ```
 */
export async function execute(
  call: () => Promise<unknown>,
  options: ExecuteOptions,
): Promise<ExecutionOutcome> {
  const { handler, state, logger } = options;
  const now = options.now ?? (() => new Date());
  const policy = handler;
  logger.debug(`${handler.title} is invoked.`);
  const before = now();
  let threw = false;
  let error: unknown;
  let result: unknown;
  const limit = checkLimits(policy, state, before);
  let seconds = 0;
  if (limit) {
    threw = true;
    error = limit;
  } else {
    const startedAt = listeners.length ? performance.now() : 0;
    try {
      result = await call();
    } catch (thrown) {
      if (options.signal?.aborted) throw thrown;
      threw = true;
      error = thrown;
    }
    if (listeners.length) seconds = (performance.now() - startedAt) / 1000;
  }
  if (threw && !limit && options.cancelled?.()) {
    logger.warn(`${handler.title} is cancelled. Will escalate.`);
    const cancelled: ExecutionOutcome = {
      final: true,
      delay: null,
      subrefs: [],
      cancelled: true,
      error: toError(error),
      log: { level: "debug", message: `${handler.title} is cancelled.`, withStack: false },
    };
    if (listeners.length) told({ handler, retry: state.retries, seconds, outcome: cancelled });
    return cancelled;
  }
  if (!threw && options.storedResult) {
    // A result that cannot be stored is the handler's error, under its own error policy.
    const json = jsonResult(result);
    if (json.ok) result = json.value;
    else {
      threw = true;
      error = new TypeError(
        `${handler.title} returned a result that cannot be stored as JSON: ${json.reason}.`,
      );
    }
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
  if (listeners.length) told({ handler, retry: state.retries, seconds, outcome });
  return outcome;
}
