/**
 * Objects gone without waiting for our finalizer: their deletion handlers run once more, on the
 * last known state, with their progress in memory (docs/engine.md, "Deleted without waiting for
 * the finalizer").
 *
 * @module
 */

import { applyMergePatch, Patch } from "../storage/patch.ts";
import type { ObjectKey, Resource } from "../kube/resource.ts";
import { sleepUnless } from "../kube/time.ts";
import { deepCopy, type RawBody } from "../storage/fields.ts";
import { isDeletionBlocked } from "../storage/finalizers.ts";
import { computeEssences } from "./causes.ts";
import type { ObjectMemory } from "./memories.ts";
import { BodyView, processChanging } from "./changing.ts";
import { type CycleEnvironment, loggerFor } from "./environment.ts";

/** An object that is gone for good, as {@linkcode processOrphan} takes it. */
export interface OrphanInput {
  /** The object's key. */
  readonly key: ObjectKey;
  /** The resource. */
  readonly resource: Resource;
  /** The object's last known state (from its DELETED event). */
  readonly body: RawBody;
  /** The object's memory (forgotten by the operator already; its memo lives on here). */
  readonly memory: ObjectMemory;
  /** Aborted when the operator stops. */
  readonly signal: AbortSignal;
}

/**
 * Whether an object that is gone was deleted without our consent while it needed its deletion
 * handlers: its last state still carries our finalizer (the API server deleted it anyway — a
 * deletion that raced with the write adding the finalizer — or someone removed the finalizer),
 * or its handlers had started here before the finalizer was ever in place
 * (`persistence.finalizerFirst = false`) and we never released it.
 */
export function isOrphaned(env: CycleEnvironment, input: Omit<OrphanInput, "signal">): boolean {
  const { body, memory, resource } = input;
  const needs = env.registry.changingHandlers(resource).some((h) => h.requiresFinalizer);
  if (!needs || memory.released) return false;
  return isDeletionBlocked(body, env.settings.persistence.finalizer) || memory.handlingStarted;
}

/**
 * Run the deletion handlers of an object that is already gone (see {@linkcode isOrphaned}), on
 * its last known state. Nothing can be written to it any more: its handlers' progress is kept
 * here in memory, through their retries, until they are done or the operator stops.
 */
export async function processOrphan(env: CycleEnvironment, input: OrphanInput): Promise<void> {
  const { resource, memory, signal } = input;
  const persistence = env.settings.persistence;
  // The object as it would be had the finalizer held: being deleted, with our finalizer.
  const body = deepCopy(input.body);
  const metadata = body.metadata ??= {};
  metadata.deletionTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, "Z");
  if (!isDeletionBlocked(body, persistence.finalizer)) {
    metadata.finalizers = [...(metadata.finalizers ?? []), persistence.finalizer];
  }
  const logger = loggerFor(env, body);
  logger.warn(
    "The object is gone without waiting for our finalizer (deleted while it was being added, " +
      "or it was removed by someone else): its deletion handlers run on its last known state, " +
      "with their progress in memory only.",
  );
  while (!signal.aborted) {
    const essences = computeEssences({
      body,
      diffbaseStorage: persistence.diffbaseStorage,
      progressStorage: persistence.progressStorage,
      extraFields: env.registry.extraFields(resource),
    });
    const patch = new Patch();
    const delays = await processChanging({
      env,
      resource,
      body,
      view: new BodyView(body, patch),
      patch,
      logger,
      memory,
      signal,
      reason: "delete",
      initial: false,
      essences,
      finished: memory.finishedFor("delete", essences.old),
      purgeWhenDone: false,
    });
    // The progress goes into the local copy, which stands in for the object.
    applyMergePatch(body, patch.toMergePatch());
    if (!delays.length) return;
    await sleepUnless(Math.min(...delays), signal);
  }
}
