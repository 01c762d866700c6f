/**
 * Daemons: one long-running call per matching object (Kopf's `@kopf.daemon`), and how a daemon
 * is stopped.
 *
 * A daemon that returns (or fails permanently) is not called again for that object in this
 * process; a `TemporaryError` (or an arbitrary error in `"temporary"` mode) calls it again after
 * the delay or backoff. Results and `patch` are written after each call, if they change
 * anything (see `writing.ts`).
 *
 * Stopping follows Kopf's stages, with `signal` as the task cancellation: the stop is requested
 * (`stopped` is set), then after `cancellationBackoff` seconds (if given) — and only if
 * `cancellationTimeout` is given — `signal` aborts, and after `cancellationTimeout` more seconds a
 * daemon that still runs is abandoned (with a warning). Without `cancellationTimeout`, `signal`
 * stays as it is and the engine waits for the exit as long as it takes, logging every
 * `cancellationPolling` seconds — except when the operator exits, where a grace period bounds the
 * wait (and `signal` aborts at its start).
 *
 * @module
 */

import { Patch } from "../storage/patch.ts";
import type { KubeObject } from "../kube/resource.ts";
import { deliverResults } from "../actions/application.ts";
import { type SleepingClock, sleepUnless } from "../kube/time.ts";
import type { DaemonStopped, Logger, StopReason } from "../registry/context.ts";
import type {
  DaemonHandler,
  ErasedContext,
  SpawningHandlerBase,
  TimerHandler,
} from "../registry/records.ts";
import type { Settings } from "../settings/settings.ts";
import { execute, freshProgress, retryInfo } from "../actions/execution.ts";
import { invoke } from "../actions/invocation.ts";
import type { DaemonStopper } from "./stopper.ts";

/** What the runner of a daemon or timer needs from its surroundings. */
export interface SpawnEnv {
  /** The operator settings. */
  settings: Settings;
  /** The object's logger. */
  logger: Logger;
  /** The time source. */
  clock: SleepingClock;
  /** This daemon's or timer's stopper. */
  stopper: DaemonStopper;
  /** The handler's context for one call (live body, memo, indices, …) with these extras. */
  context(extra: {
    retry: number;
    started: Date;
    runtime: number;
    patch: Patch;
    stopped: DaemonStopped;
    signal: AbortSignal;
  }): unknown;
  /** Write a call's results and patch (only what changes something). */
  write(patch: Patch): Promise<void>;
  /** Clock ms of the object's last essential change (timers' `idle`). */
  idleResetAt(): number;
  /** The object's latest body (the owner for `kopf.adopt()` and friends). */
  body(): KubeObject;
}

/** Evaluate `initialDelay` (a number or a function of the context) in seconds. */
export function initialDelayOf(handler: SpawningHandlerBase, env: SpawnEnv): number {
  const delay = handler.initialDelay;
  if (delay === undefined) return 0;
  if (typeof delay === "number") return delay;
  const context = env.context({
    retry: 0,
    started: new Date(),
    runtime: 0,
    patch: new Patch(),
    stopped: env.stopper,
    signal: env.stopper.signal,
  });
  return Number(delay(context as ErasedContext)) || 0;
}

/** One call of a daemon or timer with its outcome, results and patch handled. */
export async function callOnce(
  handler: DaemonHandler | TimerHandler,
  env: SpawnEnv,
  progress: { retries: number; started: Date },
): Promise<{ final: boolean; delay: number | null; cancelled: boolean }> {
  const patch = new Patch();
  const outcome = await execute(() => {
    const context = env.context({
      ...retryInfo(progress),
      patch,
      stopped: env.stopper,
      signal: env.stopper.signal,
    });
    return invoke(handler.fn, context as ErasedContext, {
      title: handler.title,
      logger: env.logger,
      body: env.body(),
      timeout: handler.attemptTimeout,
      execution: env.settings.execution,
      // A daemon runs for the object's lifetime: it would hold a slot as long.
      unbounded: handler.kind === "daemon",
    });
  }, {
    handler,
    state: progress,
    logger: env.logger,
    defaultErrors: "temporary",
    defaultBackoff: env.settings.execution.defaultBackoff,
    cancelled: () => env.stopper.signal.aborted,
    storedResult: true,
  });
  if (!outcome.cancelled) deliverResults(new Map([[handler.id, outcome]]), patch.raw);
  // A cancelled daemon's patch is still written: Kopf applies it after the call too.
  await env.write(patch);
  return { final: outcome.final, delay: outcome.delay, cancelled: outcome.cancelled ?? false };
}

/**
 * Run a daemon until it returns, fails for good, or is stopped. Resolves when it has exited.
 */
export async function runDaemon(handler: DaemonHandler, env: SpawnEnv): Promise<void> {
  const { stopper, logger } = env;
  const delay = initialDelayOf(handler, env);
  if (delay > 0) await sleepUnless(delay, stopper.requested, env.clock);
  let progress = freshProgress();
  while (!stopper.isSet) {
    const result = await callOnce(handler, env, progress);
    if (result.final) break;
    progress = { retries: progress.retries + 1, started: progress.started };
    await sleepUnless(result.delay ?? 0, stopper.requested, env.clock);
  }
  if (stopper.isSet) {
    logger.debug("{title} has exited on request and will not be retried or restarted.", {
      title: handler.title,
    });
  } else {
    logger.debug("{title} has exited on its own and will not be retried or restarted.", {
      title: handler.title,
    });
  }
}

/** A running daemon or timer, as the stopping logic sees it. */
export interface Spawned {
  /** The handler. */
  readonly handler: DaemonHandler | TimerHandler;
  /** Its stopper. */
  readonly stopper: DaemonStopper;
  /** Resolves when the daemon or timer has exited (never rejects). */
  readonly done: Promise<void>;
  /** Whether it has exited. */
  readonly exited: boolean;
  /** The object's logger. */
  readonly logger: Logger;
}

/** How a stop is carried out. */
export interface StopOptions {
  /** The settings (instant exit, cancellation polling). */
  settings: Settings;
  /** The time source. */
  clock: SleepingClock;
  /**
   * For daemons without `cancellationTimeout` (and for timers): give up after this many seconds
   * instead of waiting forever (used when the operator exits).
   */
  graceTimeout?: number;
}

/** How a stop ended. */
export type StopResult = "exited" | "abandoned";

async function waitExit(spawned: Spawned, clock: SleepingClock, seconds: number): Promise<boolean> {
  if (spawned.exited) return true;
  const timeout = new AbortController();
  const timer = sleepUnless(seconds, timeout.signal, clock);
  await Promise.race([spawned.done, timer]);
  timeout.abort();
  return spawned.exited;
}

async function waitInstantExit(spawned: Spawned, options: StopOptions): Promise<void> {
  const { instantExitTimeout, instantExitZeroTimeCycles } = options.settings.background;
  if (spawned.exited) return;
  if (instantExitTimeout !== null) {
    await waitExit(spawned, options.clock, instantExitTimeout);
  } else if (instantExitZeroTimeCycles !== null) {
    for (let i = 0; i < instantExitZeroTimeCycles && !spawned.exited; i++) {
      await new Promise<void>((resolve) => queueMicrotask(resolve));
    }
  }
}

/**
 * Stop a daemon or timer through Kopf's stages (see the module docs) and resolve when it has
 * exited or was abandoned.
 */
export async function stopSpawned(
  spawned: Spawned,
  reason: StopReason,
  options: StopOptions,
): Promise<StopResult> {
  const { handler, stopper, logger } = spawned;
  const backoff = handler.kind === "daemon" ? handler.cancellationBackoff : undefined;
  const timeout = handler.kind === "daemon" ? handler.cancellationTimeout : undefined;
  const polling = (handler.kind === "daemon" ? handler.cancellationPolling : undefined) ??
    options.settings.background.cancellationPolling;

  stopper.set(reason);
  await waitInstantExit(spawned, options);
  if (spawned.exited) {
    logger.debug("{title} has exited gracefully.", { title: handler.title });
    return "exited";
  }

  if (backoff !== undefined) {
    stopper.set("daemon-signalled");
    logger.debug("{title} is signalled to exit gracefully.", { title: handler.title });
    if (await waitExit(spawned, options.clock, backoff)) return "exited";
  }
  // Kopf cancels the task only when a cancellation timeout bounds the wait; `signal` is our task
  // cancellation, so it aborts then too — not earlier, or a daemon's cleanup requests on its
  // way out would fail.
  if (timeout !== undefined || options.graceTimeout !== undefined) {
    stopper.cancel("daemon-cancelled");
    logger.debug("{title} is signalled to exit by force.", { title: handler.title });
  }

  const limit = timeout ?? options.graceTimeout;
  if (limit !== undefined) {
    if (await waitExit(spawned, options.clock, limit)) return "exited";
    stopper.set("daemon-abandoned");
    logger.warn("{title} did not exit in time. Leaving it orphaned.", { title: handler.title });
    return "abandoned";
  }

  while (!(await waitExit(spawned, options.clock, polling))) {
    logger.debug("{title} is still exiting. The next check is in {polling} seconds.", {
      title: handler.title,
      polling,
    });
  }
  return "exited";
}
