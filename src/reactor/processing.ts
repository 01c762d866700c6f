/**
 * The queue's worker (Kopf's `processing`, controller-runtime's `processNextWorkItem`): for a key
 * taken off the queue, the latest cached state of the object goes through one handling cycle, and
 * what the cycle asks for (run again after so many seconds) goes back to the queue.
 *
 * @module
 */

import { type PostingTarget, withPostingTarget } from "../actions/posting.ts";
import { type CycleResult, processObject } from "../handling/cycle.ts";
import type { BackgroundEngine, CycleRecord } from "../handling/contracts.ts";
import type { CycleEnvironment } from "../handling/environment.ts";
import type { ObjectKey } from "../kube/resource.ts";
import {
  ObjectQueue,
  type ProcessResult,
  type QueueObserver,
  sequenceBackoff,
} from "../queue/object_queue.ts";
import type { Location } from "./observation.ts";

/** What the worker needs. */
export interface ProcessingOptions {
  /** What handling cycles work with. */
  readonly env: CycleEnvironment;
  /** Where an object of a key is cached (`undefined`: not served any more). */
  readonly locate: (key: ObjectKey) => Location | undefined;
  /** Where Events of handlers go. */
  readonly posting: PostingTarget;
  /** The engines told of every cycle and of the queue's timings (metrics). */
  readonly engines?: readonly BackgroundEngine[];
}

/**
 * The operator's object queue: one cycle per key at a time, `queueing.workerLimit` at once,
 * `queueing.errorDelays` after a cycle fails for a framework reason.
 */
export function objectQueue(options: ProcessingOptions): ObjectQueue {
  const { queueing } = options.env.settings;
  const engines = options.engines ?? [];
  const listeners = engines.filter((e) => typeof e.onCycle === "function");
  const observers = engines.map((e) => e.queueObserver).filter((o) => o !== undefined);
  return new ObjectQueue({
    name: "objects",
    concurrency: queueing.workerLimit ?? 1_000_000,
    backoff: sequenceBackoff(queueing.errorDelays),
    observer: observers.length ? joined(observers) : undefined,
    process: (key, signal) =>
      withPostingTarget(
        options.posting,
        () =>
          listeners.length ? timed(options, listeners, key, signal) : process(options, key, signal),
      ),
  });
}

function joined(observers: readonly QueueObserver[]): QueueObserver {
  if (observers.length === 1) return observers[0];
  return {
    started: (key, seconds) => observers.forEach((o) => o.started?.(key, seconds)),
    finished: (key, seconds) => observers.forEach((o) => o.finished?.(key, seconds)),
  };
}

/** One cycle, told to the engines that listen (controller-runtime's reconcile metrics). */
async function timed(
  options: ProcessingOptions,
  listeners: readonly BackgroundEngine[],
  key: ObjectKey,
  signal: AbortSignal,
): Promise<ProcessResult | void> {
  const location = options.locate(key);
  if (!location) return;
  const startedAt = performance.now();
  let outcome: CycleResult | undefined;
  try {
    outcome = await cycle(options, key, signal);
    return next(outcome);
  } finally {
    const record: CycleRecord = {
      key,
      resource: location.resource,
      seconds: (performance.now() - startedAt) / 1000,
      result: !outcome ? "error" : outcome.requeueAfter === undefined ? "success" : "requeue_after",
      writes: outcome?.writes ?? 0,
    };
    for (const listener of listeners) {
      try {
        listener.onCycle!(record);
      } catch {
        // A listener's bug must not fail the cycle.
      }
    }
  }
}

async function process(
  options: ProcessingOptions,
  key: ObjectKey,
  signal: AbortSignal,
): Promise<ProcessResult | void> {
  return next(await cycle(options, key, signal));
}

/** What the queue is asked for after a cycle. */
function next(result: CycleResult | undefined): ProcessResult | undefined {
  return result?.requeueAfter === undefined ? undefined : { requeueAfter: result.requeueAfter };
}

/** One handling cycle of the key's latest cached state (`{}` when it is not served any more). */
async function cycle(
  options: ProcessingOptions,
  key: ObjectKey,
  signal: AbortSignal,
): Promise<CycleResult> {
  const location = options.locate(key);
  if (!location) return {};
  return await processObject(options.env, {
    key,
    resource: location.resource,
    body: location.informer.store.get(key),
    signal,
  });
}
