/**
 * The queue's worker (Kopf's `processing`, controller-runtime's `processNextWorkItem`): for a key
 * taken off the queue, the latest cached state of the object goes through one handling cycle, and
 * what the cycle asks for (run again after so many seconds) goes back to the queue. With a
 * processing gate (peering, leader election, shards), only the objects it admits are handled, and
 * the in-flight cycles of those it stops admitting are signalled.
 *
 * @module
 */

import { type PostingTarget, withPostingTarget } from "../actions/posting.ts";
import { type CycleResult, processObject } from "../handling/cycle.ts";
import type { BackgroundEngine, CycleRecord } from "../handling/contracts.ts";
import type { CycleEnvironment } from "../handling/environment.ts";
import type { KubeObject, ObjectKey } from "../kube/resource.ts";
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
  /** Whether this operator may handle the object now (absent: always; see `ProcessingGate`). */
  readonly admits?: (key: ObjectKey, object: KubeObject | undefined) => boolean;
}

/** The operator's object queue, and how to signal the runs of objects it may no longer handle. */
export interface Processing {
  /** The queue. */
  readonly queue: ObjectQueue;
  /**
   * Abort the signals of in-flight cycles of objects the gate no longer admits; resolves when
   * they have ended.
   */
  revoke(): Promise<void>;
}

/** An in-flight cycle (with a gate): what revokes it, and its end. */
interface Run {
  readonly controller: AbortController;
  readonly location: Location;
  readonly done: Promise<unknown>;
}

/** What one worker run shares: the options, the in-flight runs, the cycle listeners. */
interface Worker {
  readonly options: ProcessingOptions;
  readonly running: Map<ObjectKey, Run>;
  readonly listeners: readonly BackgroundEngine[];
}

/**
 * The operator's object queue: one cycle per key at a time, `queueing.workerLimit` at once,
 * `queueing.errorDelays` after a cycle fails for a framework reason.
 */
export function objectQueue(options: ProcessingOptions): Processing {
  const { queueing } = options.env.settings;
  const engines = options.engines ?? [];
  const observers = engines.map((e) => e.queueObserver).filter((o) => o !== undefined);
  const worker: Worker = {
    options,
    // In-flight cycles, by key, with what revokes them (only with a gate).
    running: new Map(),
    listeners: engines.filter((e) => typeof e.onCycle === "function"),
  };
  const queue = new ObjectQueue({
    name: "objects",
    concurrency: queueing.workerLimit ?? 1_000_000,
    backoff: sequenceBackoff(queueing.errorDelays),
    observer: observers.length ? joined(observers) : undefined,
    process: (key, signal) =>
      withPostingTarget(options.posting, () => process(worker, key, signal)),
  });
  const revoke = async () => {
    const ending: Promise<unknown>[] = [];
    for (const [key, { controller, location, done }] of worker.running) {
      if (options.admits?.(key, location.informer.store.get(key)) === false) {
        controller.abort(new DOMException("This operator no longer handles it.", "AbortError"));
        ending.push(done);
      }
    }
    await Promise.allSettled(ending);
  };
  return { queue, revoke };
}

function joined(observers: readonly QueueObserver[]): QueueObserver {
  if (observers.length === 1) return observers[0];
  return {
    started: (key, seconds) => observers.forEach((o) => o.started?.(key, seconds)),
    finished: (key, seconds) => observers.forEach((o) => o.finished?.(key, seconds)),
  };
}

async function process(
  worker: Worker,
  key: ObjectKey,
  signal: AbortSignal,
): Promise<ProcessResult | void> {
  const { options, running } = worker;
  const location = options.locate(key);
  if (!location) return;
  const body = location.informer.store.get(key);
  if (!options.admits) return await timed(worker, key, location, body, signal);
  // Queued while admitted, and no longer: another operator handles it now.
  if (!options.admits(key, body)) return;
  const controller = new AbortController();
  const done = timed(worker, key, location, body, AbortSignal.any([signal, controller.signal]));
  running.set(key, { controller, location, done });
  try {
    return await done;
  } finally {
    running.delete(key);
  }
}

/** One cycle, told to the engines that listen (controller-runtime's reconcile metrics). */
async function timed(
  worker: Worker,
  key: ObjectKey,
  location: Location,
  body: KubeObject | undefined,
  signal: AbortSignal,
): Promise<ProcessResult | void> {
  const run = () =>
    processObject(worker.options.env, { key, resource: location.resource, body, signal });
  if (!worker.listeners.length) return next(await run());
  const startedAt = performance.now();
  let outcome: CycleResult | undefined;
  try {
    outcome = await run();
    return next(outcome);
  } finally {
    const record: CycleRecord = {
      key,
      resource: location.resource,
      seconds: (performance.now() - startedAt) / 1000,
      result: !outcome ? "error" : outcome.requeueAfter === undefined ? "success" : "requeue_after",
      writes: outcome?.writes ?? 0,
    };
    for (const listener of worker.listeners) {
      try {
        listener.onCycle!(record);
      } catch {
        // A listener's bug must not fail the cycle.
      }
    }
  }
}

/** What the queue is asked for after a cycle. */
function next(result: CycleResult | undefined): ProcessResult | undefined {
  return result?.requeueAfter === undefined ? undefined : { requeueAfter: result.requeueAfter };
}
