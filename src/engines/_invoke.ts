/**
 * One attempt of a background handler (daemon, timer, index, activity): the strict limits, the
 * call, Kopf's outcome rules and log lines. Progress lives in memory only, as in Kopf.
 *
 * @module
 */

import {
  checkLimits,
  errorMessage,
  type ErrorsMode,
  evaluateOutcome,
  type Outcome,
  type OutcomeLog,
} from "../actions/errors.ts";
import { attributed } from "../actions/containment.ts";
import type { Logger } from "../registry/context.ts";
import type { HandlerRecordBase } from "../registry/records.ts";

/** A handler's in-memory progress: attempts made and when the first one started. */
export interface Progress {
  /** Attempts made before the next one. */
  retries: number;
  /** When the first attempt started. */
  started: Date;
}

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
export type AttemptOutcome = Outcome & {
  /** The handler threw after it was cancelled: no retry, no result. */
  readonly cancelled?: boolean;
};

/** How an attempt is made. */
export interface AttemptOptions {
  /** The handler (id, title, retry options). */
  handler: HandlerRecordBase;
  /** Its progress before this attempt. */
  progress: Progress;
  /** Where the log lines go. */
  logger: Logger;
  /** The per-kind default of `errors`. */
  defaultErrors: ErrorsMode;
  /** `settings.execution.defaultBackoff`. */
  defaultBackoff: number;
  /** Whether the handler has been cancelled (then whatever it throws means "cancelled"). */
  cancelled?: () => boolean;
  /** The current time (tests). */
  now?: () => Date;
}

/** Log an outcome with Kopf's wording; arbitrary errors get their stack, as `logger.exception`. */
export function logOutcome(logger: Logger, log: OutcomeLog, error?: Error): void {
  const stack = log.withStack && error?.stack ? `\n${error.stack}` : "";
  logger[log.level]("{message}", { message: log.message + stack });
}

/**
 * Make one attempt: check the strict limits (a handler out of time or attempts fails without
 * being called), call, and evaluate the outcome with Kopf's rules; log it.
 */
export async function attempt(
  options: AttemptOptions,
  call: () => unknown,
): Promise<AttemptOutcome> {
  const { handler, progress, logger } = options;
  const now = options.now ?? (() => new Date());
  logger.debug("{title} is invoked.", { title: handler.title });
  const exceeded = checkLimits(handler, progress, now());
  let threw = false;
  let error: unknown;
  let result: unknown;
  if (exceeded) {
    threw = true;
    error = exceeded;
  } else {
    try {
      const mayExit = (handler as { kind?: string }).kind === "activity";
      result = await attributed({ title: handler.title, logger, mayExit }, call);
    } catch (thrown) {
      threw = true;
      error = thrown;
    }
  }
  if (threw && !exceeded && options.cancelled?.()) {
    logger.warn("{title} is cancelled. Will escalate.", { title: handler.title });
    return {
      final: true,
      delay: null,
      subrefs: [],
      cancelled: true,
      error: error instanceof Error ? error : new Error(errorMessage(error)),
      log: { level: "debug", message: `${handler.title} is cancelled.`, withStack: false },
    };
  }
  const outcome = evaluateOutcome({
    policy: handler,
    state: progress,
    now: now(),
    defaultErrors: options.defaultErrors,
    defaultBackoff: options.defaultBackoff,
    threw,
    error,
    result,
  });
  logOutcome(logger, outcome.log, outcome.error);
  return outcome;
}
