/**
 * Operator activities (Kopf's `@kopf.on.startup`, `cleanup`, `login`, `probe`): all handlers of
 * one activity run together, each retried per its errors mode until it succeeds or fails for
 * good; the activity fails if any handler failed for good.
 *
 * - startup: before anything is watched; handlers may change `settings`; a failure stops the
 *   operator (it does not start);
 * - cleanup: after everything has stopped; failures are logged;
 * - login: gives the credentials (see `login.ts`);
 * - probe: the results are served by the health endpoint (see `health.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type SleepingClock, sleepUnless, SYSTEM_CLOCK } from "../kube/time.ts";
import type { Activity, ActivityContext, Memo } from "../registry/context.ts";
import type { ActivityHandler, ErasedContext } from "../registry/records.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings/settings.ts";
import type { Progress } from "../actions/errors.ts";
import { execute, freshProgress, retryInfo } from "../actions/execution.ts";
import { invoke } from "../actions/invocation.ts";
import { literalLogger } from "../actions/loggers.ts";

/**
 * An activity failed: one or more of its handlers failed for good.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function connect() {
 *   throw new kopf.PermanentError("No database.");
 * });
 * try {
 *   await kopf.run({ namespaces: ["default"] });
 * } catch (error) {
 *   if (!(error instanceof kopf.ActivityError)) throw error;
 *   const failed = [...error.errors.keys()].join(", ");
 *   console.error(`${error.activity} failed: ${failed}`); // "startup failed: connect"
 * }
 * ```
 */
export class ActivityError extends Error {
  /** The activity. */
  readonly activity: Activity;
  /** The errors by handler id. */
  readonly errors: ReadonlyMap<string, Error>;

  /** An error naming the activity and its failed handlers. */
  constructor(activity: Activity, errors: ReadonlyMap<string, Error>) {
    const first = [...errors.values()][0];
    super(
      `Activity '${activity}' failed: ${[...errors.keys()].join(", ")}` +
        (first ? `: ${first.message}` : ""),
      { cause: first },
    );
    this.name = "ActivityError";
    this.activity = activity;
    this.errors = errors;
  }
}

/** What {@linkcode runActivity} needs. */
export interface ActivityOptions {
  /** Where the handlers are registered. */
  registry: Registry;
  /** Which activity. */
  activity: Activity;
  /** The settings (startup handlers may change them). */
  settings: Settings;
  /** The operator-wide memo. */
  memo: Memo;
  /** The operator's indexes by id. */
  indices?: Readonly<Record<string, unknown>>;
  /** Stops the activity: retries are abandoned, handlers see it as `signal`. */
  signal?: AbortSignal;
  /** The time source (tests). */
  clock?: SleepingClock;
}

/**
 * Run all handlers of an activity until each has succeeded or failed for good. Resolves with
 * the results of the successful handlers by id (`undefined`/`null` results left out); rejects
 * with {@linkcode ActivityError} if any failed for good, or with the signal's reason if stopped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Registry } from "../registry/registry.ts";
 * import { Settings } from "../settings/settings.ts";
 * import { runActivity } from "./activities.ts";
 *
 * const registry = new Registry();
 * registry.on.probe(function pod_count() {
 *   return 3;
 * });
 * const settings = new Settings();
 * const results = await runActivity({ registry, activity: "probe", settings, memo: {} });
 * assert.deepEqual(results, { pod_count: 3 });
 * ```
 */
export async function runActivity(options: ActivityOptions): Promise<Record<string, unknown>> {
  const { registry, activity, settings, memo } = options;
  const clock = options.clock ?? SYSTEM_CLOCK;
  const signal = options.signal ?? new AbortController().signal;
  const logger = literalLogger(getLogger(["kopf", "activities", activity]));
  const handlers = registry.activityHandlers(activity);
  const pending = new Map<ActivityHandler, { progress: Progress; due: number }>(
    handlers.map((h) => [h, { progress: freshProgress(), due: clock.now() }]),
  );
  const results: Record<string, unknown> = {};
  const errors = new Map<string, Error>();
  while (pending.size) {
    signal.throwIfAborted();
    const now = clock.now();
    const due = [...pending].filter(([, state]) => state.due <= now);
    for (const [handler, state] of due) {
      const context: ActivityContext = {
        logger,
        memo,
        param: handler.param,
        signal,
        indices: options.indices ?? {},
        activity,
        settings,
        ...retryInfo(state.progress),
      };
      const outcome = await execute(
        () =>
          invoke(handler.fn, context as unknown as ErasedContext, {
            title: handler.title,
            logger,
            mayExit: true,
            timeout: handler.attemptTimeout,
            // Activities run before and after the objects' handlers, never waiting for them.
            execution: settings.execution,
            unbounded: true,
          }),
        {
          handler,
          state: state.progress,
          logger,
          defaultErrors: "temporary",
          defaultBackoff: settings.execution.defaultBackoff,
        },
      );
      signal.throwIfAborted();
      if (outcome.final) {
        pending.delete(handler);
        if (outcome.error) errors.set(handler.id, outcome.error);
        else if (outcome.result !== undefined && outcome.result !== null) {
          results[handler.id] = outcome.result;
        }
      } else {
        state.progress = { retries: state.progress.retries + 1, started: state.progress.started };
        state.due = clock.now() + (outcome.delay ?? 0) * 1000;
      }
    }
    if (pending.size) {
      const next = Math.min(...[...pending.values()].map((s) => s.due));
      await sleepUnless((next - clock.now()) / 1000, signal, clock);
    }
  }
  if (errors.size) throw new ActivityError(activity, errors);
  return results;
}
