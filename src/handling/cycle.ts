/**
 * The handling cycle of one object (docs/engine.md): read-your-writes, cause detection on the
 * essence against the stored diff-base, the background engines' verdicts, our finalizer put on or
 * taken off, the changing handlers of the cause (`changing.ts`) — and one write of it all (plus
 * one to `/status`).
 *
 * The cycle keeps Kopf's order and log lines (Kopf's `process_resource_causes`), with two
 * differences that save writes: delayed handlers are woken up by the queue's timer rather than by
 * a "touch" patch, and superseded causes purge only the handlers that are not part of the new
 * cause (Kopf purges all and loses their delays).
 *
 * @module
 */

import { writeOutcome } from "../actions/application.ts";
import { addFinalizer, removeFinalizer } from "../actions/finalizers.ts";
import { Patch, type PatchFn } from "../storage/patch.ts";
import type { ObjectKey, Resource } from "../kube/resource.ts";
import type { RawBody } from "../storage/fields.ts";
import { isDeletionBlocked, isDeletionOngoing } from "../storage/finalizers.ts";
import { computeEssences, detectReason, type Essences, type Reason } from "./causes.ts";
import type { EngineVerdict } from "./contracts.ts";
import { BodyView, type ChangingRun, matchCause, processChanging } from "./changing.ts";
import { type CycleEnvironment, loggerFor } from "./environment.ts";

/** One cycle's input. */
export interface CycleInput {
  /** The object's key. */
  readonly key: ObjectKey;
  /** The resource. */
  readonly resource: Resource;
  /** The latest body from the cache (`undefined`: gone). */
  readonly body: RawBody | undefined;
  /** Aborted when the operator stops waiting for this cycle. */
  readonly signal: AbortSignal;
}

/** What the queue should do next with the object. */
export interface CycleResult {
  /** Run the object again after so many seconds (delayed handlers, consistency wait). */
  readonly requeueAfter?: number;
  /** Requests that changed the object in this cycle. */
  readonly writes?: number;
}

/**
 * One handling cycle of one object. Returns when to run it again (delayed handlers, or the
 * remaining wait for our own write to come back through the watch).
 */
export async function processObject(
  env: CycleEnvironment,
  input: CycleInput,
): Promise<CycleResult> {
  const { key, resource, body, signal } = input;
  if (!body) return {};
  const { registry, settings } = env;
  const persistence = settings.persistence;
  const finalizer = persistence.finalizer;
  const memory = env.memories.recall(key, body.metadata?.uid);

  // Read-your-writes: never act on a state older than our own last write.
  const wait = memory.consistencyWait(Date.now());
  if (wait > 0) return { requeueAfter: wait / 1000 };

  const logger = loggerFor(env, body);
  const patch = new Patch();
  const fns: PatchFn[] = [];
  // Most cycles call no handler (e.g. our own writes coming back): the view copies on first use.
  const view = new BodyView(body, patch);

  let essences: Essences | null = null;
  let reason: Reason | null = null;
  let initial = false;
  if (registry.hasHandlers(resource, "changing")) {
    essences = computeEssences({
      body,
      diffbaseStorage: persistence.diffbaseStorage,
      progressStorage: persistence.progressStorage,
      extraFields: registry.extraFields(resource),
    });
    const detected = detectReason({
      eventType: null,
      body,
      finalizer,
      old: essences.old,
      diff: essences.diff,
      initial: memory.noticedByListing && !memory.fullyHandledOnce,
    });
    reason = detected.reason;
    initial = detected.initial;
  }

  const verdicts: EngineVerdict[] = [];
  for (const engine of env.engines ?? []) {
    if (!engine.cycle) continue;
    verdicts.push(
      await engine.cycle({
        key,
        resource,
        body,
        changed: (essences?.diff.length ?? 0) > 0,
        memory,
        logger,
      }),
    );
  }
  const excluded = new Set(verdicts.flatMap((v) => [...(v.excluded ?? [])]));
  const delays = verdicts.flatMap((v) => [...(v.delays ?? [])]);

  // Handlers that finished for this very cause in this process are never called again.
  const finished = memory.finishedFor(reason, essences?.old ?? null);
  const base = {
    env,
    resource,
    body,
    view,
    logger,
    memory,
    reason: reason ?? "noop",
    initial,
    finished,
    purgeWhenDone: !(reason === "delete" && delays.length > 0),
  };
  const cause = matchCause({ ...base, essences: essences ?? emptyEssences() }, patch);
  // Objects that match no changing handler are handled in stealth: no state, no logs.
  let changing = reason !== null && registry.prematchesChanging(cause);

  const ongoing = isDeletionOngoing(body);
  const blocked = isDeletionBlocked(body, finalizer);
  const mustBlock = registry.requiresFinalizer(cause, excluded);
  let finalizerRemoved = false;
  if (mustBlock && !blocked && !ongoing) {
    logger.debug("Adding the finalizer, thus preventing the actual deletion.");
    fns.push(addFinalizer(finalizer));
    if (persistence.finalizerFirst) changing = false;
  }
  if (!mustBlock && blocked) {
    logger.debug("Removing the finalizer, as there are no handlers requiring it.");
    fns.push(removeFinalizer(finalizer));
    memory.released = true;
    finalizerRemoved = true;
    changing = false;
  }

  if (changing && essences) {
    const run: ChangingRun = { ...base, essences, patch, signal };
    delays.push(...await processChanging(run));
  }

  if (ongoing && blocked && !finalizerRemoved && !delays.length) {
    logger.debug("Removing the finalizer, thus allowing the actual deletion.");
    fns.push(removeFinalizer(finalizer));
    memory.released = true;
  }

  let writes = 0;
  fns.push(...patch.fns);
  const merge = patch.toMergePatch();
  if (Object.keys(merge).length || fns.length) {
    // Kopf's touch-dummy is never written here; one left by Kopf goes with the next real write.
    persistence.progressStorage.touch(body, merge, null);
    memory.expectWrite();
    const written = await writeOutcome({
      client: env.client,
      resource,
      body,
      patch: merge,
      fns,
      logger,
      // Outcomes of handlers that did run are written even when the operator is stopping.
      signal: signal.aborted ? AbortSignal.timeout(10_000) : undefined,
    });
    writes = written.writes;
    if (written.gone) return { writes };
    memory.await(
      written.object?.metadata?.resourceVersion,
      persistence.consistencyTimeout * 1000,
      Date.now(),
    );
  }

  if (delays.length) {
    const delay = Math.min(...delays);
    if (!writes && delay > 0) {
      logger.debug(`Sleeping for ${delay} seconds for the delayed handlers.`);
    }
    return { requeueAfter: delay, writes };
  }
  if (changing) logger.debug("Handling cycle is finished, waiting for new changes.");
  return { writes };
}

function emptyEssences(): Essences {
  return { old: null, new: {}, diff: [], degraded: false };
}
