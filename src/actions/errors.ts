/**
 * Handler errors and Kopf's rules for what a failed (or successful) attempt means: retry later,
 * fail for good, or succeed — as pure functions the invoker applies.
 *
 * @module
 */

import type { ErrorsMode, HandlerRecordBase } from "../registry/records.ts";

/**
 * A fatal handler error: the handler is not retried.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function check({ spec }) {
 *   if (!spec.size) throw new kopf.PermanentError("spec.size is required.");
 * });
 * ```
 */
export class PermanentError extends Error {
  /** Create an error; the message is logged and stored in the progress record. */
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Options of {@linkcode TemporaryError}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const options: kopf.TemporaryErrorOptions = { delay: 30, cause: new Error("HTTP 503") };
 * const error = new kopf.TemporaryError("The backend is unavailable.", options);
 * assert.equal(error.delay, 30);
 * ```
 */
export interface TemporaryErrorOptions extends ErrorOptions {
  /** Seconds until the retry (default 60); `null` retries in the next cycle. */
  delay?: number | null;
}

/**
 * A recoverable handler error: the handler is retried after `delay` seconds (default 60).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function wait({ retry }) {
 *   if (retry < 3) throw new kopf.TemporaryError("Not ready yet.", { delay: 10 });
 * });
 * ```
 */
export class TemporaryError extends Error {
  /** Seconds until the retry; `null` means the next cycle. */
  readonly delay: number | null;

  /** Create an error with an optional `delay` in seconds. */
  constructor(message?: string, options: TemporaryErrorOptions = {}) {
    super(message, options);
    this.name = new.target.name;
    this.delay = options.delay === undefined ? 60 : options.delay;
  }
}

/**
 * The handler ran out of its `timeout` (a permanent failure).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // After 10 minutes of retries, the handler fails for good with a HandlerTimeoutError.
 * kopf.on.create("kopfexamples", { timeout: 600 }, function provision() {
 *   throw new kopf.TemporaryError("Still provisioning.", { delay: 30 });
 * });
 * assert.ok(new kopf.HandlerTimeoutError("timed out") instanceof kopf.PermanentError);
 * ```
 */
export class HandlerTimeoutError extends PermanentError {}

/**
 * The handler ran out of its `retries` (a permanent failure).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // After the third failed attempt, the handler fails for good with a HandlerRetriesError.
 * kopf.on.create("kopfexamples", { retries: 3 }, function flaky() {
 *   throw new Error("Flaky.");
 * });
 * assert.ok(new kopf.HandlerRetriesError("out of retries") instanceof kopf.PermanentError);
 * ```
 */
export class HandlerRetriesError extends PermanentError {}

/**
 * Internal: a parent handler whose sub-handlers are not all finished yet. It is retried (after
 * the sub-handlers' earliest delay) with less noise than a temporary error.
 */
export class HandlerChildrenRetry extends TemporaryError {}

/**
 * An admission webhook rejection with an HTTP code (for `on.validate`/`on.mutate`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const error = new kopf.AdmissionError("spec.size must be positive.", { code: 400 });
 * assert.equal(error.code, 400);
 * ```
 */
export class AdmissionError extends PermanentError {
  /** The HTTP code returned to the API server (default 500). */
  readonly code: number;

  /** Create a rejection. */
  constructor(message?: string, options: ErrorOptions & { code?: number } = {}) {
    super(message, options);
    this.code = options.code ?? 500;
  }
}

/** What the outcome logic needs to know about a handler (its record's retry options). */
export type ErrorPolicy = Pick<
  HandlerRecordBase,
  "title" | "errors" | "timeout" | "retries" | "backoff"
>;

/** A handler's progress: attempts made so far, and when the first one started. */
export interface Progress {
  /** Attempts made before the next one (0 before the first). */
  retries: number;
  /** When the first attempt started. */
  started: Date;
}

/** A log line the invoker should emit for an outcome (Kopf's exact wording). */
export interface OutcomeLog {
  /** Log level. */
  readonly level: "debug" | "info" | "error";
  /** The message. */
  readonly message: string;
  /** Whether the error's stack should be logged too (Kopf's `logger.exception`). */
  readonly withStack: boolean;
}

/**
 * The result of one attempt: `final` outcomes stop retrying (success, or failure when `error`
 * is set); non-final ones are retried after `delay` seconds (`null` = next cycle).
 */
export interface Outcome {
  /** No more attempts for this cause. */
  readonly final: boolean;
  /** Seconds until the next attempt (non-final only). */
  readonly delay: number | null;
  /** The handler's return value (successes only). */
  readonly result?: unknown;
  /** The error that failed (or will retry) the handler; absent on success. */
  readonly error?: Error;
  /** Ids of sub-handlers of any depth run under this handler. */
  readonly subrefs: readonly string[];
  /** What to log. */
  readonly log: OutcomeLog;
}

/** `fn()`, or `undefined` if it throws. */
function safely<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** `value instanceof type`, false where even asking throws (a hostile Proxy). */
function isInstance(value: unknown, type: abstract new (...args: never[]) => unknown): boolean {
  return safely(() => value instanceof type) ?? false;
}

/**
 * The text of any thrown value, as Kopf's `str(e) or repr(e)` — and never a throw itself: a value
 * whose `message`, `name`, `toString` or JSON form throws, a Symbol, a cycle or a hostile Proxy
 * still gets a line of text, so that it goes through the handler's error policy like any other.
 */
export function errorMessage(error: unknown): string {
  return safely(() => describeThrown(error)) ??
    safely(() => `a thrown ${Object.prototype.toString.call(error).slice(8, -1)}`) ??
    "an unprintable thrown value";
}

function describeThrown(error: unknown): string {
  if (isInstance(error, Error)) {
    const message = safely(() => (error as Error).message);
    if (typeof message === "string" && message) return message;
    const name = safely(() => (error as Error).name);
    return `${typeof name === "string" && name ? name : "Error"}()`;
  }
  if (typeof error === "string") return error || "''";
  if (typeof error === "symbol" || typeof error === "bigint" || typeof error === "function") {
    return String(error);
  }
  const json = safely(() => JSON.stringify(error));
  if (typeof json === "string") return json;
  const text = String(error);
  if (typeof text !== "string") throw new TypeError("not printable");
  return text;
}

/**
 * Normalise any thrown value into an Error whose `message` can be read: Errors with a readable
 * message stay as they are; anything else becomes a new Error with {@linkcode errorMessage}.
 */
export function toError(error: unknown): Error {
  const readable = (e: Error) => typeof e.message === "string" && (e.stack, true);
  if (isInstance(error, Error) && safely(() => readable(error as Error))) return error as Error;
  return new Error(errorMessage(error));
}

/** Seconds since `started`. */
export function runtimeSeconds(state: Progress, now: Date): number {
  return (now.getTime() - state.started.getTime()) / 1000;
}

/** Python's `str(timedelta)` (e.g. `0:01:05.250000`), as Kopf prints runtimes. */
export function formatRuntime(seconds: number): string {
  const micros = Math.max(0, Math.round(seconds * 1e6));
  const days = Math.floor(micros / 86_400e6);
  const rest = micros - days * 86_400e6;
  const h = Math.floor(rest / 3_600e6);
  const m = Math.floor((rest % 3_600e6) / 60e6);
  const s = Math.floor((rest % 60e6) / 1e6);
  const us = rest % 1e6;
  const hms = `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}` +
    (us ? `.${String(us).padStart(6, "0")}` : "");
  return days ? `${days} day${days === 1 ? "" : "s"}, ${hms}` : hms;
}

/**
 * The strict limits checked before an attempt: the error to fail with if the handler already
 * ran out of time or attempts (e.g. after operator downtime), else `null`.
 */
export function checkLimits(
  policy: ErrorPolicy,
  state: Progress,
  now: Date,
): HandlerTimeoutError | HandlerRetriesError | null {
  const runtime = runtimeSeconds(state, now);
  if (policy.timeout !== undefined && runtime >= policy.timeout) {
    return new HandlerTimeoutError(
      `${policy.title} has timed out after ${formatRuntime(runtime)}.`,
    );
  }
  if (policy.retries !== undefined && state.retries >= policy.retries) {
    return new HandlerRetriesError(`${policy.title} has exceeded ${state.retries} retries.`);
  }
  return null;
}

/** Inputs of {@linkcode evaluateOutcome}. */
export interface OutcomeInput {
  /** The handler's policy. */
  readonly policy: ErrorPolicy;
  /** The progress before this attempt. */
  readonly state: Progress;
  /** The current time. */
  readonly now: Date;
  /** How arbitrary errors are treated when the handler does not say (per handler kind). */
  readonly defaultErrors: ErrorsMode;
  /** Backoff for arbitrary errors when the handler does not say (settings). */
  readonly defaultBackoff: number;
  /** Whether the attempt threw. */
  readonly threw: boolean;
  /** The thrown value (anything, even a non-Error) when `threw`. */
  readonly error?: unknown;
  /** The returned value when not `threw`. */
  readonly result?: unknown;
  /** Sub-handler ids collected during the attempt. */
  readonly subrefs?: readonly string[];
}

/**
 * Kopf's outcome of one attempt (`execute_handler_once`), including the look-ahead: a retry
 * that would start at or after `timeout`, or that would be attempt number `retries`, fails now
 * with {@linkcode HandlerTimeoutError} / {@linkcode HandlerRetriesError} instead of waiting.
 */
export function evaluateOutcome(input: OutcomeInput): Outcome {
  const { policy, state, now } = input;
  const subrefs = input.subrefs ?? [];
  const title = policy.title;
  const ok = (log: OutcomeLog, result?: unknown): Outcome => ({
    final: true,
    delay: null,
    result,
    subrefs,
    log,
  });
  const fail = (error: Error, log: OutcomeLog): Outcome => ({
    final: true,
    delay: null,
    error,
    subrefs,
    log,
  });
  const retry = (error: Error, delay: number | null, log: OutcomeLog): Outcome => ({
    final: false,
    delay,
    error,
    subrefs,
    log,
  });

  if (!input.threw) {
    return ok({ level: "info", message: `${title} succeeded.`, withStack: false }, input.result);
  }

  const thrown = input.error;
  const text = errorMessage(thrown);
  const is = (type: abstract new (...args: never[]) => unknown) => isInstance(thrown, type);
  const runtime = runtimeSeconds(state, now);
  const wouldTimeOut = (delay: number): boolean =>
    policy.timeout !== undefined && runtime + delay >= policy.timeout;
  const wouldExceed = policy.retries !== undefined && state.retries + 1 >= policy.retries;

  if (is(HandlerChildrenRetry)) {
    const message = `${title} has unfinished sub-handlers. Will retry soon.`;
    const children = thrown as HandlerChildrenRetry;
    return retry(children, children.delay, { level: "debug", message, withStack: false });
  }

  if (is(TemporaryError)) {
    const delay = safely(() => (thrown as TemporaryError).delay);
    const retryIn = typeof delay === "number" ? delay : delay === null ? null : 60;
    if (wouldTimeOut(retryIn ?? 0)) {
      const message = `${title} failed temporarily but will time out after ` +
        `${policy.timeout} seconds: ${text}`;
      return fail(new HandlerTimeoutError(message, { cause: thrown }), {
        level: "error",
        message,
        withStack: false,
      });
    }
    if (wouldExceed) {
      const message = `${title} failed temporarily but will exceed ${policy.retries} retries: ` +
        text;
      return fail(new HandlerRetriesError(message, { cause: thrown }), {
        level: "error",
        message,
        withStack: false,
      });
    }
    const message = `${title} failed temporarily: ${text}`;
    return retry(toError(thrown), retryIn, { level: "error", message, withStack: false });
  }

  if (is(HandlerTimeoutError) || is(HandlerRetriesError)) {
    return fail(toError(thrown), { level: "error", message: text, withStack: false });
  }

  if (is(PermanentError)) {
    return fail(toError(thrown), {
      level: "error",
      message: `${title} failed permanently: ${text}`,
      withStack: false,
    });
  }

  const error = toError(thrown);
  const mode = policy.errors ?? input.defaultErrors;
  const backoff = policy.backoff ?? input.defaultBackoff;
  const prefix = `${title} failed with an exception and will`;
  if (mode === "ignored") {
    return ok({ level: "error", message: `${prefix} ignore it: ${text}`, withStack: true });
  }
  if (mode === "permanent") {
    const message = `${prefix} stop now: ${text}`;
    return fail(error, { level: "error", message, withStack: true });
  }
  if (wouldTimeOut(backoff)) {
    const message = `${prefix} stop now (it would time out in ${policy.timeout} seconds ` +
      `on the next attempt): ${text}`;
    return fail(new HandlerTimeoutError(message, { cause: thrown }), {
      level: "error",
      message,
      withStack: true,
    });
  }
  if (wouldExceed) {
    const message = `${prefix} stop now (it would exceed ${policy.retries} retries ` +
      `on the next attempt): ${text}`;
    return fail(new HandlerRetriesError(message, { cause: thrown }), {
      level: "error",
      message,
      withStack: true,
    });
  }
  const message = `${prefix} try again in ${backoff} seconds: ${text}`;
  return retry(error, backoff, { level: "error", message, withStack: true });
}
