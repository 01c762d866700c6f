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
import type { ObjectKey } from "../kube/resource.ts";
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
}

/**
 * The operator's object queue: one cycle per key at a time, `queueing.workerLimit` at once,
 * `queueing.errorDelays` after a cycle fails for a framework reason.
 */
export function objectQueue(options: ProcessingOptions): ObjectQueue {
  const { queueing } = options.env.settings;
  return new ObjectQueue({
    name: "objects",
    concurrency: queueing.workerLimit ?? 1_000_000,
    backoff: sequenceBackoff(queueing.errorDelays),
    process: (key, signal) =>
      withPostingTarget(options.posting, () => process(options, key, signal)),
  });
}

async function process(
  options: ProcessingOptions,
  key: ObjectKey,
  signal: AbortSignal,
): Promise<ProcessResult | void> {
  const location = options.locate(key);
  if (!location) return;
  const result = await processObject(options.env, {
    key,
    resource: location.resource,
    body: location.informer.store.get(key),
    signal,
  });
  return result.requeueAfter === undefined ? undefined : { requeueAfter: result.requeueAfter };
}
