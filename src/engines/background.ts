/**
 * The background engines as the operator runs them: daemons and timers, indexes, and the
 * health endpoint, each plugged into the operator's engine hooks (`start`, `onEvent`, `cycle`,
 * `indices`, `stop`). {@linkcode backgroundEngines} makes the ones a registry needs.
 *
 * The operator's types are mirrored structurally here (this room does not import the
 * operator, which imports it).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type KubeObject, objectKeyOf, type Resource } from "../kube/resource.ts";
import type { Logger, Memo } from "../registry/context.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings.ts";
import { isDeletionOngoing } from "../storage/finalizers.ts";
import { runActivity } from "./activities.ts";
import {
  type HealthServer,
  ProbeCache,
  readinessOf,
  serveHealth,
  type WatchHealth,
} from "../health/server.ts";
import { OperatorIndexes } from "./indexes.ts";
import { copyMemo } from "./memos.ts";
import { SpawningEngine } from "./spawning.ts";
import type { PatchingClient } from "../actions/application.ts";

const logger = getLogger(["kopf", "engines"]);

/** An informer as the engines see it. */
export interface InformerLike extends WatchHealth {
  /** Its resource. */
  readonly resource: Resource;
  /** How many subscribers it has (0: no longer used). */
  readonly subscribers: number;
  /** Its cache. */
  readonly store: { entries(): Iterable<[string, KubeObject]> };
}

/** What the engines use of the running operator (the operator's `OperatorHandle`). */
export interface EngineHandle {
  /** The API client. */
  readonly client: PatchingClient;
  /** The settings. */
  readonly settings: Settings;
  /** The handlers. */
  readonly registry: Registry;
  /** Per-object memories. */
  readonly memories: { get(key: string): { readonly memo: Memo } | undefined };
  /** The shared informers. */
  readonly informers: { all(): readonly InformerLike[] };
  /** Aborted when the operator starts stopping. */
  readonly signal: AbortSignal;
  /** Run an object's handling cycle again. */
  requeue(key: string, delaySeconds?: number): void;
}

/** One object event (the operator's `ObjectEventInfo`). */
export interface EngineEvent {
  /** The operator's key of the object. */
  readonly key: string;
  /** The resource. */
  readonly resource: Resource;
  /** The event. */
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  /** The object. */
  readonly object: KubeObject;
  /** From the first listing of its watch. */
  readonly initial: boolean;
}

/** What an engine sees of an object in its cycle (the operator's `EngineCycleInput`). */
export interface EngineCycle {
  /** The operator's key of the object. */
  readonly key: string;
  /** The resource. */
  readonly resource: Resource;
  /** The latest body. */
  readonly body: KubeObject;
}

/** What an engine tells the cycle (the operator's `EngineVerdict`). */
export interface EngineCycleVerdict {
  /** Seconds until the object needs another cycle (keeps the finalizer of a deleted object). */
  readonly delays?: readonly number[];
  /** Daemons and timers stopped for good: they need no finalizer. */
  readonly excluded?: ReadonlySet<string>;
}

/** A background engine (the operator's `BackgroundEngine`). */
export interface Engine {
  /** A name for logs. */
  readonly name: string;
  /** Called once the client exists, before resources are watched. */
  start?(handle: EngineHandle): void | Promise<void>;
  /** Every object event of every served resource. */
  onEvent?(event: EngineEvent): void;
  /** Part of every object's cycle. */
  cycle?(input: EngineCycle): EngineCycleVerdict | Promise<EngineCycleVerdict>;
  /** Indexes by id. */
  indices?(): Readonly<Record<string, unknown>>;
  /** Called when the operator stops. */
  stop?(): void | Promise<void>;
}

/** What {@linkcode backgroundEngines} needs. */
export interface BackgroundOptions {
  /** The handlers. */
  registry: Registry;
  /** The operator-wide memo. */
  memo: Memo;
  /** The liveness URL (`--liveness`), if the health endpoint is served. */
  liveness?: string;
  /** The object logger (default: category `kopf.objects` with the object reference). */
  logger?: (resource: Resource, body: KubeObject) => Logger;
  /** Seconds daemons without a cancellation timeout get at operator exit (default 5). */
  graceTimeout?: number;
}

function memoOf(
  handle: EngineHandle,
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
export class DaemonsEngine implements Engine {
  readonly name = "daemons";
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

  /** The spawning engine (once started), for stats. */
  get spawning(): SpawningEngine | undefined {
    return this.#spawning;
  }

  start(handle: EngineHandle): void {
    this.#polling = handle.settings.background.cancellationPolling;
    const indices = this.#indices;
    this.#spawning = new SpawningEngine({
      registry: handle.registry,
      settings: handle.settings,
      client: handle.client,
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

  onEvent(event: EngineEvent): void {
    if (!this.#spawning?.serves(event.resource)) return;
    this.#spawning.observe(event.resource, {
      type: event.type,
      key: event.key,
      object: event.object,
      initial: event.initial,
    });
  }

  cycle(input: EngineCycle): EngineCycleVerdict {
    const spawning = this.#spawning;
    if (!spawning?.serves(input.resource)) return {};
    const excluded = spawning.excluded(input.resource, input.body);
    // The engine requeues the object as soon as its daemons have stopped; the delay is only a
    // fallback check, and keeps the finalizer meanwhile.
    const stopping = isDeletionOngoing(input.body) &&
      spawning.isRunning(input.resource, input.body);
    return { excluded, delays: stopping ? [this.#polling] : [] };
  }

  async stop(): Promise<void> {
    await this.#spawning?.stopAll({ graceTimeout: this.#options.graceTimeout ?? 5 });
  }
}

/**
 * Indexes: filled from every object event; every object's cycle waits until all indexes have
 * indexed the initial listing of their resources (Kopf blocks handlers the same way).
 */
export class IndexesEngine implements Engine {
  readonly name = "indexes";
  readonly #options: BackgroundOptions;
  readonly #indexes: OperatorIndexes;
  #handle: EngineHandle | undefined;
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

  start(handle: EngineHandle): void {
    this.#handle = handle;
  }

  onEvent(event: EngineEvent): void {
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

  async cycle(input: EngineCycle): Promise<EngineCycleVerdict> {
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

/** The health endpoint: probes at the liveness URL, readiness next to it. */
export class HealthEngine implements Engine {
  readonly name = "health";
  readonly #options: BackgroundOptions & { liveness: string };
  readonly #indexes: () => { ready: boolean; indices: Readonly<Record<string, unknown>> };
  #server: HealthServer | undefined;
  #started = false;

  /** An engine serving `options.liveness`. */
  constructor(
    options: BackgroundOptions & { liveness: string },
    indexes: () => { ready: boolean; indices: Readonly<Record<string, unknown>> },
  ) {
    this.#options = options;
    this.#indexes = indexes;
  }

  /** The running server (after start). */
  get server(): HealthServer | undefined {
    return this.#server;
  }

  async start(handle: EngineHandle): Promise<void> {
    const { registry, memo } = this.#options;
    const cache = new ProbeCache(() =>
      runActivity({
        registry,
        activity: "probe",
        settings: handle.settings,
        memo,
        indices: this.#indexes().indices,
        signal: handle.signal,
      })
    );
    this.#server = await serveHealth({
      endpoint: this.#options.liveness,
      probes: () => cache.get(),
      readiness: () => {
        const watches = handle.informers.all().filter((i) => i.subscribers > 0);
        // Started: the operator serves something (or serves nothing yet has begun).
        this.#started ||= watches.length > 0;
        return readinessOf({
          watches,
          indexesReady: this.#indexes().ready,
          started: this.#started,
        });
      },
    });
    logger.info("Serving health status at {url} (readiness at {readyUrl}).", {
      url: this.#server.url,
      readyUrl: this.#server.readyUrl,
    });
  }

  /** Mark the operator as started (every resource resolved and watched). */
  markStarted(): void {
    this.#started = true;
  }

  async stop(): Promise<void> {
    await this.#server?.close();
  }
}

/**
 * The background engines a registry needs: indexes (if any `kopf.index`), daemons and timers
 * (if any), and the health endpoint (if `liveness` is given). Indexes come first so that every
 * other engine and handler sees them filled.
 *
 * @example
 * ```ts ignore
 * const engines = backgroundEngines({ registry, memo: {}, liveness: "http://127.0.0.1:8080/healthz" }, settings);
 * await kopf.run({ registry, settings, engines });
 * ```
 */
export function backgroundEngines(options: BackgroundOptions, settings: Settings): Engine[] {
  const engines: Engine[] = [];
  const { registry } = options;
  const hasIndexes = registry.handlers.some((h) => h.kind === "indexing");
  const hasSpawning = registry.handlers.some((h) => h.kind === "daemon" || h.kind === "timer");
  const indexes = new IndexesEngine(options, settings);
  if (hasIndexes) engines.push(indexes);
  if (hasSpawning) {
    const ready = hasIndexes ? () => indexes.whenReady() : undefined;
    engines.push(new DaemonsEngine(options, () => indexes.indices(), ready));
  }
  if (options.liveness) {
    engines.push(
      new HealthEngine({ ...options, liveness: options.liveness }, () => ({
        ready: !hasIndexes || indexes.ready,
        indices: indexes.indices(),
      })),
    );
  }
  return engines;
}
