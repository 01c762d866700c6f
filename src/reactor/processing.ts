/**
 * The queue's worker (Kopf's `processing`, controller-runtime's `processNextWorkItem`): for a key
 * taken off the queue, the latest cached state of the object goes through one handling cycle, and
 * what the cycle asks for (run again after so many seconds) goes back to the queue.
 *
 * @module
 */

import { type PostingTarget, withPostingTarget } from "../actions/posting.ts";
import { processObject } from "../handling/cycle.ts";
import type { CycleEnvironment } from "../handling/environment.ts";
import type { KubeObject, ObjectKey } from "../kube/resource.ts";
import { ObjectQueue, type ProcessResult, sequenceBackoff } from "../queue/object_queue.ts";
import type { Location } from "./observation.ts";

/** What the worker needs. */
export interface ProcessingOptions {
  /** What handling cycles work with. */
  readonly env: CycleEnvironment;
  /** Where an object of a key is cached (`undefined`: not served any more). */
  readonly locate: (key: ObjectKey) => Location | undefined;
  /** Where Events of handlers go. */
  readonly posting: PostingTarget;
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

/**
 * The operator's object queue: one cycle per key at a time, `queueing.workerLimit` at once,
 * `queueing.errorDelays` after a cycle fails for a framework reason.
 */
export function objectQueue(options: ProcessingOptions): Processing {
  const { queueing } = options.env.settings;
  // In-flight cycles, by key, with what revokes them (only with a gate).
  const running = new Map<ObjectKey, Run>();
  const queue = new ObjectQueue({
    name: "objects",
    concurrency: queueing.workerLimit ?? 1_000_000,
    backoff: sequenceBackoff(queueing.errorDelays),
    process: (key, signal) =>
      withPostingTarget(options.posting, () => process(options, running, key, signal)),
  });
  const revoke = async () => {
    const ending: Promise<unknown>[] = [];
    for (const [key, { controller, location, done }] of running) {
      if (options.admits?.(key, location.informer.store.get(key)) === false) {
        controller.abort(new DOMException("This operator no longer handles it.", "AbortError"));
        ending.push(done);
      }
    }
    await Promise.allSettled(ending);
  };
  return { queue, revoke };
}

/** An in-flight cycle (with a gate): what revokes it, and its end. */
interface Run {
  readonly controller: AbortController;
  readonly location: Location;
  readonly done: Promise<unknown>;
}

async function process(
  options: ProcessingOptions,
  running: Map<ObjectKey, Run>,
  key: ObjectKey,
  signal: AbortSignal,
): Promise<ProcessResult | void> {
  const location = options.locate(key);
  if (!location) return;
  const body = location.informer.store.get(key);
  if (!options.admits) return cycle(options, key, location, body, signal);
  // Queued while admitted, and no longer: another operator handles it now.
  if (!options.admits(key, body)) return;
  const controller = new AbortController();
  const done = cycle(options, key, location, body, AbortSignal.any([signal, controller.signal]));
  running.set(key, { controller, location, done });
  try {
    return await done;
  } finally {
    running.delete(key);
  }
}

async function cycle(
  options: ProcessingOptions,
  key: ObjectKey,
  location: Location,
  body: KubeObject | undefined,
  signal: AbortSignal,
): Promise<ProcessResult | void> {
  const result = await processObject(options.env, {
    key,
    resource: location.resource,
    body,
    signal,
  });
  return result.requeueAfter === undefined ? undefined : { requeueAfter: result.requeueAfter };
}
