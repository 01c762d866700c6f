/**
 * Daemons and timers, and indexes, as the operator runs them: each plugged into the engine hooks
 * of `handling/contracts.ts` (`start`, `onEvent`, `cycle`, `indices`, `stop`).
 *
 * @module
 */

import { copyMemo } from "../handling/memos.ts";
import type {
  BackgroundEngine,
  EngineCycleInput,
  EngineVerdict,
  ObjectEvent,
  OperatorHandle,
} from "../handling/contracts.ts";
import { type KubeObject, type ObjectKey, objectKeyOf, type Resource } from "../kube/resource.ts";
import type { Logger, Memo } from "../registry/context.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings/settings.ts";
import { isDeletionOngoing } from "../storage/finalizers.ts";
import { OperatorIndexes } from "./indexes.ts";
import { SpawningEngine, type SpawningStats } from "./spawning.ts";

/** What the engines need from the operator's options. */
export interface BackgroundOptions {
  /** The handlers. */
  registry: Registry;
  /** The operator-wide memo. */
  memo: Memo;
  /** The object logger (default: category `kopf.objects` with the object reference). */
  logger?: (resource: Resource, body: KubeObject) => Logger;
  /** Seconds daemons without a cancellation timeout get at operator exit (default 5). */
  graceTimeout?: number;
}

function memoOf(
  handle: OperatorHandle,
  operatorMemo: Memo,
): (resource: Resource, body: KubeObject) => Memo {
  // The operator recalls an object's memory before engines see its events, so it is there
  // for live objects; a stray call after the object is gone gets a throwaway copy.
  return (resource, body) =>
    handle.memories.get(objectKeyOf(resource, body))?.memo ?? copyMemo(operatorMemo);
}

/**
 * Daemons and timers: spawned and stopped from every object event; each object's cycle learns
 * which stopped for good (no finalizer needed) and whether a deleted object's are still running
 * (its finalizer stays until they have stopped; the object is requeued when they have).
 */
export class DaemonsEngine implements BackgroundEngine {
  readonly name = "daemons";
  readonly handles = true;
  readonly #options: BackgroundOptions;
  #spawning: SpawningEngine | undefined;
  #indices: () => Readonly<Record<string, unknown>>;
  #ready: () => Promise<void>;
  #polling = 60;

  /**
   * An engine for the daemons and timers of `options.registry`; they start calling once
   * `ready` resolves (the indexes are built).
   */
  constructor(
    options: BackgroundOptions,
    indices: () => Readonly<Record<string, unknown>>,
    ready: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.#options = options;
    this.#indices = indices;
    this.#ready = ready;
  }

  start(handle: OperatorHandle): void {
    this.#polling = handle.settings.background.cancellationPolling;
    const indices = this.#indices;
    this.#spawning = new SpawningEngine({
      registry: handle.registry,
      settings: handle.settings,
      client: handle.client,
      api: handle.api,
      memo: memoOf(handle, this.#options.memo),
      logger: this.#options.logger,
      // A live view: indexes are created before the daemons start, filled as events come.
      indices: new Proxy({}, {
        get: (_t, id) => (indices() as Record<string | symbol, unknown>)[id],
        has: (_t, id) => id in indices(),
        ownKeys: () => Reflect.ownKeys(indices()),
        getOwnPropertyDescriptor: (_t, id) => Reflect.getOwnPropertyDescriptor(indices(), id),
      }),
      ready: this.#ready,
      requeue: (resource, body) => handle.requeue(objectKeyOf(resource, body)),
    });
  }

  onEvent(event: ObjectEvent): void {
    if (!this.#spawning?.serves(event.resource)) return;
    this.#spawning.observe(event.resource, {
      type: event.type,
      key: event.key,
      object: event.object,
      initial: event.initial,
    });
  }

  release(key: ObjectKey, resource: Resource): Promise<unknown> | void {
    if (!this.#spawning?.serves(resource)) return;
    return this.#spawning.release(key);
  }

  cycle(input: EngineCycleInput): EngineVerdict {
    const spawning = this.#spawning;
    if (!spawning?.serves(input.resource)) return {};
    const excluded = spawning.excluded(input.resource, input.body);
    // The engine requeues the object as soon as its daemons have stopped; the delay is only a
    // fallback check, and keeps the finalizer meanwhile.
    const stopping = isDeletionOngoing(input.body) &&
      spawning.isRunning(input.resource, input.body);
    return { excluded, delays: stopping ? [this.#polling] : [] };
  }

  /** The daemons' and timers' counters (for metrics); `undefined` before the start. */
  get stats(): SpawningStats | undefined {
    return this.#spawning?.stats;
  }

  async stop(): Promise<void> {
    await this.#spawning?.stopAll({ graceTimeout: this.#options.graceTimeout ?? 5 });
  }
}

/**
 * Indexes: filled from every object event; every object's cycle waits until all indexes have
 * indexed the initial listing of their resources (Kopf blocks handlers the same way).
 */
export class IndexesEngine implements BackgroundEngine {
  readonly name = "indexes";
  readonly #options: BackgroundOptions;
  readonly #indexes: OperatorIndexes;
  #handle: OperatorHandle | undefined;
  #ready = false;
  #waiters: (() => void)[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;

  /** An engine for the indexes of `options.registry` (the indexes exist from the start). */
  constructor(options: BackgroundOptions, settings: Settings) {
    this.#options = options;
    this.#indexes = new OperatorIndexes({
      registry: options.registry,
      settings,
      memo: (resource, body) => this.#memo(resource, body),
      logger: options.logger,
    });
  }

  /** The indexes. */
  get indexes(): OperatorIndexes {
    return this.#indexes;
  }

  start(handle: OperatorHandle): void {
    this.#handle = handle;
    this.#indexes.api = handle.api;
  }

  onEvent(event: ObjectEvent): void {
    if (!this.#indexes.serves(event.resource)) return;
    this.#indexes.observe(event.resource, {
      type: event.type,
      key: event.key,
      object: event.object,
      initial: event.initial,
    });
  }

  indices(): Readonly<Record<string, unknown>> {
    return this.#indexes.indices;
  }

  /**
   * Whether every served informer of an indexed resource has listed, and every object it
   * holds has been indexed. Latches once true (as Kopf's readiness does).
   */
  get ready(): boolean {
    if (this.#ready) return true;
    const handle = this.#handle;
    if (!handle) return false;
    for (const informer of handle.informers.all()) {
      if (informer.subscribers === 0 || !this.#indexes.serves(informer.resource)) continue;
      if (!informer.synced) return false;
      for (const [, object] of informer.store.entries()) {
        if (!this.#indexes.isIndexed(informer.resource, object)) return false;
      }
    }
    this.#ready = true;
    return true;
  }

  /** Resolves once {@linkcode ready} (or when the operator stops). */
  async whenReady(): Promise<void> {
    if (!this.ready) await this.#waitReady();
  }

  async cycle(input: EngineCycleInput): Promise<EngineVerdict> {
    await this.whenReady();
    // The object's own latest state is indexed before its handlers see the indexes.
    if (this.#indexes.serves(input.resource)) {
      await this.#indexes.settled(input.resource, input.body);
    }
    return {};
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  #waitReady(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      // Readiness depends on informers syncing, which sends no event when a listing is empty:
      // check every 100 ms while someone waits.
      this.#timer ??= setInterval(() => {
        if (!this.ready && !this.#handle?.signal.aborted) return;
        clearInterval(this.#timer);
        this.#timer = undefined;
        for (const waiter of this.#waiters.splice(0)) waiter();
      }, 100);
    });
  }

  #memo(resource: Resource, body: KubeObject): Memo {
    const handle = this.#handle;
    if (!handle) return copyMemo(this.#options.memo);
    return memoOf(handle, this.#options.memo)(resource, body);
  }
}
