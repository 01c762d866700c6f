/**
 * Where each watch event goes (Kopf's `queueing`, controller-runtime's event handlers): the
 * object's memory notes it, every background engine sees it, `on.event` handlers get it in order
 * per object, and the object's key goes on the queue for a handling cycle — or, for a deletion,
 * the object's memory and queue entry are dropped, and what its deletion still owes is done
 * (a finalizer left behind by a selector it no longer matches, deletion handlers of an object
 * that went without waiting for our finalizer).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { releaseFinalizer } from "../actions/finalizers.ts";
import { type PostingTarget, withPostingTarget } from "../actions/posting.ts";
import type { Informer, InformerEvent } from "../cache/informer.ts";
import { isChange } from "../cache/informer.ts";
import type { StoreChange } from "../cache/store.ts";
import type { BackgroundEngine } from "../handling/contracts.ts";
import { type CycleEnvironment, loggerFor } from "../handling/environment.ts";
import { processEvent } from "../handling/events.ts";
import { isOrphaned, type OrphanInput, processOrphan } from "../handling/orphans.ts";
import type { KubeClient } from "../kube/client.ts";
import type { KubeObject, ObjectKey, Resource } from "../kube/resource.ts";
import type { ObjectQueue } from "../queue/object_queue.ts";
import { isDeletionBlocked } from "../storage/finalizers.ts";
import type { Served } from "./observation.ts";

const logger = getLogger(["kopf", "operator"]);

/** What {@linkcode Dispatcher} works with. */
export interface DispatchOptions {
  /** What handling cycles work with (handlers, settings, memories, poster). */
  readonly env: CycleEnvironment;
  /** The client (releasing finalizers). */
  readonly client: Pick<KubeClient, "get" | "patch">;
  /** The background engines. */
  readonly engines: readonly BackgroundEngine[];
  /** The object queue. */
  readonly queue: ObjectQueue;
  /** Where Events of handlers go. */
  readonly posting: PostingTarget;
  /** A served resource went missing (404). */
  readonly missing: (served: Served) => void;
  /** Aborted when handlers must stop (the operator's drain timeout is over). */
  readonly handlersSignal: AbortSignal;
  /** Whether this operator may handle the object now (absent: always; see `ProcessingGate`). */
  readonly admits?: (key: ObjectKey, object: KubeObject) => boolean;
}

/** Routes informer events; keeps the work it starts outside the queue until it settles. */
export class Dispatcher {
  readonly #options: DispatchOptions;
  readonly #pending = new Set<Promise<unknown>>();
  #stopped = false;

  /** A dispatcher for one operator. */
  constructor(options: DispatchOptions) {
    this.#options = options;
  }

  /** Work started outside the queue (event handlers, releases, orphaned deletions). */
  get pending(): readonly Promise<unknown>[] {
    return [...this.#pending];
  }

  /** No more events are dispatched. */
  stop(): void {
    this.#stopped = true;
  }

  /** One event of a served resource's informer. */
  dispatch(served: Served, informer: Informer<KubeObject>, event: InformerEvent): void {
    if (this.#stopped) return;
    if (event.type === "MISSING") return this.#options.missing(served);
    if (!isChange(event)) return;
    const { env, engines, queue } = this.#options;
    const { resource } = served;
    const key = event.key;
    const object = event.object;
    const memory = event.type === "DELETED"
      ? env.memories.get(key)
      : env.memories.recall(key, object.metadata?.uid);
    memory?.see(object.metadata?.resourceVersion);
    if (memory && event.initial) memory.noticedByListing = true;
    // Caches and indexes stay warm whatever the gate says; handling is only for what it admits.
    const admitted = this.#options.admits?.(key, object) ?? true;
    for (const engine of engines) {
      if (engine.handles && !admitted) continue;
      try {
        engine.onEvent?.({ key, resource, type: event.type, object, initial: event.initial });
      } catch (error) {
        logger.error("A background engine failed on an event: {error}", { error });
      }
    }
    if (admitted && env.registry.hasHandlers(resource, "watching")) {
      this.#chainEvent(key, resource, informer, event);
    }
    if (event.type === "DELETED") this.#gone(key, served, object, admitted);
    else if (admitted) queue.add(key);
  }

  /** `on.event` handlers of one object run in the order of its events. */
  #chainEvent(
    key: ObjectKey,
    resource: Resource,
    informer: Informer<KubeObject>,
    event: StoreChange<KubeObject>,
  ): void {
    const { env, posting, handlersSignal } = this.#options;
    const task = () =>
      withPostingTarget(posting, () =>
        processEvent(env, {
          key,
          resource,
          type: event.initial ? null : event.type,
          object: event.object,
          latest: informer.store.get(key),
          signal: handlersSignal,
        })).then(() => {}, (error) => {
          logger.error("Event handlers of {key} failed: {error}", { key, error });
        });
    const memory = env.memories.get(key);
    this.#track(memory ? memory.chain(task) : Promise.resolve().then(task));
  }

  #gone(key: ObjectKey, served: Served, object: KubeObject, admitted: boolean): void {
    const { env, queue } = this.#options;
    const resource = served.resource;
    const memory = env.memories.get(key);
    env.memories.forget(key);
    queue.forget(key);
    // What a deletion still owes is the handling operator's to do.
    if (!admitted) return;
    if (env.registry.hasHandlers(resource, "changing")) {
      loggerFor(env, object).debug("Deleted, really deleted, and we are notified.");
    }
    const orphan = memory && { key, resource, body: object, memory };
    // With a server-side label selector, an object whose labels stop matching arrives as
    // DELETED while it still exists: a real deletion cannot end with our finalizer on it.
    if (served.labelSelector && isDeletionBlocked(object, env.settings.persistence.finalizer)) {
      this.#track(
        this.#release(resource, object, orphan).catch((error) =>
          logger.error("Releasing the finalizer of {key} failed: {error}", { key, error })
        ),
      );
    } else if (orphan && isOrphaned(env, orphan)) {
      this.#track(this.#orphan(orphan));
    }
  }

  async #release(
    resource: Resource,
    object: KubeObject,
    orphan: Omit<OrphanInput, "signal"> | undefined,
  ): Promise<void> {
    const { env, client } = this.#options;
    const { gone } = await releaseFinalizer({
      client,
      resource,
      body: object,
      finalizer: env.settings.persistence.finalizer,
      logger: loggerFor(env, object),
    });
    // Really gone, not out of the selector: gone without our finalizer's consent.
    if (gone && orphan && isOrphaned(env, orphan)) await this.#orphan(orphan);
  }

  /** Run the deletion handlers of an object that went without waiting for our finalizer. */
  async #orphan(orphan: Omit<OrphanInput, "signal">): Promise<void> {
    const { env, posting, handlersSignal } = this.#options;
    await withPostingTarget(
      posting,
      () => processOrphan(env, { ...orphan, signal: handlersSignal }),
    ).catch((error) => {
      logger.error("Deletion handlers of {key} failed: {error}", { key: orphan.key, error });
    });
  }

  #track(task: Promise<unknown>): void {
    this.#pending.add(task);
    void task.finally(() => this.#pending.delete(task));
  }
}
