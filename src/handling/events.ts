/**
 * The `on.event` handlers (Kopf's `process_watching_cause`): every raw watch event of an object,
 * in order, outside the coalescing queue; no retries; what they return or patch is written only
 * when it changes the object.
 *
 * @module
 */

import { deliverResults, planWrite, writeOutcome } from "../actions/application.ts";
import { eventContext } from "../actions/contexts.ts";
import type { Outcome } from "../actions/errors.ts";
import { execute } from "../actions/execution.ts";
import { invoke } from "../actions/invocation.ts";
import { mergePatches, Patch } from "../storage/patch.ts";
import type { ObjectKey, Resource } from "../kube/resource.ts";
import type { EventType } from "../registry/context.ts";
import type { WatchingHandler } from "../registry/records.ts";
import { deepCopy, type RawBody } from "../storage/fields.ts";
import { type CycleEnvironment, loggerFor } from "./environment.ts";

/** One raw watch event for the `on.event` handlers. */
export interface EventInput {
  /** The object's key. */
  readonly key: ObjectKey;
  /** The resource. */
  readonly resource: Resource;
  /** The event type (`null` for the initial listing). */
  readonly type: EventType;
  /** The object as the event brought it. */
  readonly object: RawBody;
  /** The latest cached state (results are compared with it), if the object still exists. */
  readonly latest?: RawBody;
  /** Aborted when the operator stops. */
  readonly signal: AbortSignal;
}

/**
 * Run the `on.event` handlers for one raw event (Kopf's `process_watching_cause`): no retries,
 * errors logged and ignored; their results (and `patch`) are written only if they change the
 * object.
 */
export async function processEvent(env: CycleEnvironment, input: EventInput): Promise<number> {
  const { registry } = env;
  const { resource, object, signal } = input;
  if (!registry.hasHandlers(resource, "watching")) return 0;
  // Kopf's guarantee: no handler sees the indexes before they hold the initial listing.
  await env.whenReady?.();
  const memory = env.memories.get(input.key) ??
    env.memories.recall(input.key, object.metadata?.uid);
  const logger = loggerFor(env, object);
  const patch = new Patch();
  const view = deepCopy(object);
  const build = (handler?: WatchingHandler, handlerSignal?: AbortSignal) =>
    eventContext({
      resource,
      body: view,
      patch,
      logger,
      memory,
      signal: handlerSignal ?? signal,
      indices: env.indices?.(),
      api: env.api,
      param: handler?.param,
      type: input.type,
      object: view,
    });
  const handlers = registry.selectWatching({ resource, body: object, context: () => build() });
  const outcomes = new Map<string, Outcome>();
  const started = new Date();
  for (const handler of handlers) {
    if (signal.aborted) break;
    try {
      const outcome = await execute(async () => {
        const controller = new AbortController();
        const context = build(handler, AbortSignal.any([signal, controller.signal]));
        return await invoke(handler.fn, context as never, {
          title: handler.title,
          logger,
          body: view,
          signal,
          controller,
          execution: env.settings.execution,
        });
      }, {
        handler,
        state: { retries: 0, started },
        defaultErrors: "ignored",
        defaultBackoff: env.settings.execution.defaultBackoff,
        storedResult: true,
        logger,
        signal,
      });
      outcomes.set(handler.id, outcome);
    } catch (error) {
      if (signal.aborted) break;
      throw error;
    }
  }
  if (input.type === "DELETED" || !input.latest) return 0;
  deliverResults(outcomes, patch.raw);
  // Only what would change the object is written (as for daemons and timers).
  const plan = planWrite(resource, [input.latest], patch);
  if (!plan.body && !plan.status && !plan.json.length) return 0;
  const written = await writeOutcome({
    client: env.client,
    resource,
    body: input.latest,
    patch: mergePatches(plan.body, plan.status),
    fns: plan.json.length ? patch.fns : [],
    logger,
  });
  return written.writes;
}
