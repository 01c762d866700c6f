/**
 * Timers: periodic calls per matching object (Kopf's `@kopf.timer`), with Kopf's schedule:
 *
 * - `interval`: sleep that long from the end of one call to the start of the next;
 * - `interval` + `sharp`: align calls to a grid of `interval` from the first call, however long
 *   each call takes (a call that overruns skips its slots). Kopf measures the remainder from each
 *   call's start, so timer lateness adds up over the calls; here the grid is anchored at the
 *   first call and does not drift;
 * - `idle`: call only when the object's essence has not changed for that long (a change
 *   postpones the call; with an interval too, the interval is counted after the idle wait);
 * - `idle` alone: once per quiet period — the next call waits for a change and a new quiet
 *   period;
 * - neither: a single call.
 *
 * A failed call is retried per its error (delay, backoff) instead of the schedule; retry
 * counters start over after every success, as in Kopf.
 *
 * @module
 */

import type { TimerHandler } from "../registry/records.ts";
import { freshProgress } from "../actions/execution.ts";
import { callOnce, initialDelayOf, type SpawnEnv } from "./daemons.ts";
import { sleepUnless } from "../kube/time.ts";

/**
 * The seconds to sleep after a successful call for a sharp timer: what remains to the next
 * multiple of `interval` counted from the grid's anchor (the first call's start).
 *
 * @example
 * ```ts
 * import { sharpDelay } from "./timers.ts";
 * sharpDelay(5, 1.5); // 3.5
 * sharpDelay(5, 7); // 3 (a slow call skips a slot)
 * ```
 */
export function sharpDelay(interval: number, elapsed: number): number {
  return interval - (Math.max(0, elapsed) % interval);
}

/** Run a timer until it is stopped (or, without `interval` and `idle`, after one call). */
export async function runTimer(handler: TimerHandler, env: SpawnEnv): Promise<void> {
  const { stopper, clock } = env;
  const delay = initialDelayOf(handler, env);
  if (delay > 0) await sleepUnless(delay, stopper.requested, clock);
  let progress = freshProgress();
  let done = false;
  let anchor: number | undefined; // the sharp grid's origin: the first call's start
  while (!stopper.isSet) {
    if (done) {
      progress = freshProgress();
      done = false;
    }

    if (handler.idle !== undefined) {
      // The last change is a moving target: each change extends the wait; it is never shortened.
      while (!stopper.isSet && clock.now() - env.idleResetAt() < handler.idle * 1000) {
        const left = (env.idleResetAt() + handler.idle * 1000 - clock.now()) / 1000;
        await sleepUnless(left, stopper.requested, clock);
      }
      if (stopper.isSet) break;
    }

    const started = clock.now();
    anchor ??= started;
    const result = await callOnce(handler, env, progress);
    if (result.cancelled) break;

    if (!result.final) {
      progress = { retries: progress.retries + 1, started: progress.started };
      await sleepUnless(result.delay ?? 0, stopper.requested, clock);
      continue;
    }
    done = true;
    if (handler.interval !== undefined && handler.sharp) {
      const elapsed = (clock.now() - anchor) / 1000;
      await sleepUnless(sharpDelay(handler.interval, elapsed), stopper.requested, clock);
    } else if (handler.interval !== undefined) {
      await sleepUnless(handler.interval, stopper.requested, clock);
    } else if (handler.idle !== undefined) {
      // Idle-only: wait for a change after this call's start, then for a new quiet period.
      while (!stopper.isSet && env.idleResetAt() <= started) {
        await sleepUnless(handler.idle, stopper.requested, clock);
      }
    } else {
      break;
    }
  }
}
