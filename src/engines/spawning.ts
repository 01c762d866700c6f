/**
 * The spawning engine: keeps the daemons and timers of every object in step with the watch
 * stream — spawned when an object is first seen matching (or when the operator starts), stopped
 * when it is deleted, stops matching, or the operator exits.
 *
 * It listens to the shared informers directly (every event, not the coalesced queue), so the
 * live body of daemons and the idle clock of timers follow every change.
 *
 * Its contract with the handling cycle, which owns the finalizer:
 * - {@linkcode SpawningEngine.excluded} — the daemons/timers stopped for good for an object; pass
 *   it to `Registry.requiresFinalizer(cause, excluded)`;
 * - {@linkcode SpawningEngine.isRunning} — whether any daemon/timer of an object is still
 *   running or stopping; the finalizer of an object being deleted must stay until it is false;
 * - the `requeue` callback — called when that may have changed (a daemon exited or was
 *   abandoned), so the cycle looks at the object again and can release the finalizer.
 *
 * @module
 */

import type { Api } from "../kits/api.ts";
import { getLogger } from "@logtape/logtape";
import { type InformerEvent, isChange } from "../cache/informer.ts";
import { Patch } from "../storage/patch.ts";
import { type SleepingClock, SYSTEM_CLOCK } from "../kube/time.ts";
import { type KubeObject, objectKeyOf, type Resource } from "../kube/resource.ts";
import type { Logger, Memo, StopReason } from "../registry/context.ts";
import type { Registry } from "../registry/registry.ts";
import type { DaemonHandler, TimerHandler } from "../registry/records.ts";
import type { Settings } from "../settings/settings.ts";
import type { BodyEssence } from "../storage/diffbase.ts";
import { deepEqual } from "../storage/fields.ts";
import { isDeletionOngoing } from "../storage/finalizers.ts";
import { resourceContext } from "../actions/contexts.ts";
import { objectLogger } from "../actions/loggers.ts";
import { runDaemon, type Spawned, type SpawnEnv, stopSpawned } from "./daemons.ts";
import { DaemonStopper } from "./stopper.ts";
import { runTimer } from "./timers.ts";
import { type PatchingClient, PatchWriter } from "../actions/application.ts";

const logger = getLogger(["kopf", "spawning"]);

const NEVER: AbortSignal = new AbortController().signal;
const NONE: ReadonlySet<string> = new Set();

/** Options of {@linkcode SpawningEngine}. */
export interface SpawningEngineOptions {
  /** Where the daemons and timers are registered. */
  registry: Registry;
  /** The operator settings. */
  settings: Settings;
  /** Writes results and patches. */
  client: PatchingClient;
  /** The object's memo (shared with its other handlers). */
  memo: (resource: Resource, body: KubeObject) => Memo;
  /** The object's logger (default: category `kopf.objects` with the object reference). */
  logger?: (resource: Resource, body: KubeObject) => Logger;
  /** The operator's indexes by id. */
  indices?: Readonly<Record<string, unknown>>;
  /** The API for handlers (`api` in their contexts). */
  api?: Api;
  /**
   * Called when the daemons of an object changed in a way that matters to its finalizer (one
   * exited for good, or all of a deleted object's have stopped).
   */
  requeue?: (resource: Resource, body: KubeObject) => void;
  /** Aborts every daemon's signal at once (the operator's hard stop). */
  signal?: AbortSignal;
  /**
   * Resolves when daemons and timers may start calling their functions (Kopf: once every
   * index has indexed its initial listing). Default: at once.
   */
  ready?: () => Promise<void>;
  /** The time source (tests). */
  clock?: SleepingClock;
}

interface Task extends Spawned {
  exited: boolean;
  stopping?: Promise<unknown>;
}

interface ObjectState {
  readonly resource: Resource;
  readonly key: string;
  readonly uid: string | undefined;
  body: KubeObject;
  essence: BodyEssence | undefined;
  idleResetAt: number;
  readonly logger: Logger;
  readonly writer: PatchWriter;
  readonly foreverStopped: Set<string>;
  readonly running: Map<string, Task>;
  deleting: boolean;
  gone: boolean;
  /** Released to another operator (the gate closed): stopping, not respawned until seen again. */
  released: boolean;
}

/** Counters of the spawning engine. */
export interface SpawningStats {
  /** Objects with daemons or timers known. */
  objects: number;
  /** Daemons and timers running (or stopping). */
  running: number;
  /** Requests sent by daemons' and timers' writes. */
  writes: number;
  /** Writes not sent because they would change nothing. */
  skippedWrites: number;
}

/**
 * Runs the daemons and timers of all objects of the resources it is told the events of.
 *
 * @example
 * ```ts
 * import { Informers } from "../cache/informer.ts";
 * import { KubeClient } from "../kube/client.ts";
 * import { Discovery } from "../kube/discovery.ts";
 * import { parseSelector } from "../kube/selector.ts";
 * import { Registry } from "../registry/registry.ts";
 * import { Settings } from "../settings/settings.ts";
 * import { SpawningEngine } from "./spawning.ts";
 *
 * const registry = new Registry();
 * registry.timer("kopfexamples", { interval: 60 }, function tick() {});
 * const client = await KubeClient.connect();
 * const [resource] = await new Discovery(client).resolve(parseSelector("kopfexamples"));
 * const settings = new Settings();
 * const spawning = new SpawningEngine({ registry, settings, client, memo: () => ({}) });
 * const informer = new Informers(client).get(resource);
 * informer.subscribe((event) => spawning.observe(resource, event));
 * // …
 * await spawning.stopAll({ graceTimeout: 5 }); // at operator exit
 * client.close();
 * ```
 */
export class SpawningEngine {
  readonly #registry: Registry;
  readonly #settings: Settings;
  readonly #client: PatchingClient;
  readonly #memo: (resource: Resource, body: KubeObject) => Memo;
  readonly #logger: (resource: Resource, body: KubeObject) => Logger;
  readonly #indices: Readonly<Record<string, unknown>>;
  readonly #api: Api | undefined;
  readonly #requeue: (resource: Resource, body: KubeObject) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #clock: SleepingClock;
  readonly #ready: () => Promise<void>;
  readonly #objects = new Map<string, ObjectState>();
  #exiting = false;
  #graceTimeout: number | undefined;
  #retiredWrites = 0;
  #retiredSkips = 0;

  /** An engine with nothing attached yet. */
  constructor(options: SpawningEngineOptions) {
    this.#registry = options.registry;
    this.#settings = options.settings;
    this.#client = options.client;
    this.#memo = options.memo;
    this.#logger = options.logger ?? ((resource, body) => objectLogger(body, { resource }));
    this.#indices = options.indices ?? {};
    this.#api = options.api;
    this.#requeue = options.requeue ?? (() => {});
    this.#signal = options.signal;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#ready = options.ready ?? (() => Promise.resolve());
  }

  /** Whether the registry has daemons or timers for the resource. */
  serves(resource: Resource): boolean {
    return this.#registry.hasHandlers(resource, "daemon") ||
      this.#registry.hasHandlers(resource, "timer");
  }

  /** Handle one informer event of a resource. */
  observe(resource: Resource, event: InformerEvent): void {
    if (!isChange(event)) return;
    const body = event.object;
    const key = objectKeyOf(resource, body);
    let state = this.#objects.get(key);
    if (event.type === "DELETED") {
      if (state && sameObject(state, body)) {
        state.body = body;
        state.gone = true;
        this.#stopObject(state, "resource-deleted");
        this.#forgetIfIdle(state);
      }
      return;
    }
    if (state && !sameObject(state, body)) {
      // Deleted and re-created under the same name while we were not looking.
      state.gone = true;
      this.#stopObject(state, "resource-deleted");
      this.#objects.delete(key);
      state = undefined;
    }
    if (!state) {
      if (this.#exiting) return;
      state = this.#create(resource, key, body);
    }
    // Handed back to this operator: those still stopping are respawned when they have stopped.
    state.released = false;
    state.body = body;
    state.writer.observe(body);
    const essence = this.#settings.persistence.diffbaseStorage.build(
      body,
      this.#registry.extraFields(resource),
    );
    if (state.essence !== undefined && !deepEqual(state.essence, essence)) {
      state.idleResetAt = this.#clock.now();
    }
    state.essence = essence;
    if (isDeletionOngoing(body)) {
      state.deleting = true;
      this.#stopObject(state, "resource-deleted");
      return;
    }
    this.#reconcile(state);
  }

  /** Whether any daemon or timer of the object is running or still stopping. */
  isRunning(resource: Resource, body: KubeObject): boolean {
    const state = this.#objects.get(objectKeyOf(resource, body));
    return state !== undefined && sameObject(state, body) && state.running.size > 0;
  }

  /** The ids of the object's daemons and timers that exited for good (not to be respawned). */
  excluded(resource: Resource, body: KubeObject): ReadonlySet<string> {
    const state = this.#objects.get(objectKeyOf(resource, body));
    return state && sameObject(state, body) ? state.foreverStopped : NONE;
  }

  /** Counters (for the health endpoint and benchmarks). */
  get stats(): SpawningStats {
    let running = 0;
    let writes = this.#retiredWrites;
    let skippedWrites = this.#retiredSkips;
    for (const state of this.#objects.values()) {
      running += state.running.size;
      writes += state.writer.writes;
      skippedWrites += state.writer.skipped;
    }
    return { objects: this.#objects.size, running, writes, skippedWrites };
  }

  /**
   * Stop every daemon and timer (the operator exits): no new ones are spawned, all are stopped
   * in parallel through their cancellation stages; those without `cancellationTimeout` get
   * `graceTimeout` seconds (default 5, as Kopf gives hung tasks) before they are abandoned.
   */
  async stopAll(
    options: { reason?: StopReason; graceTimeout?: number } = {},
  ): Promise<void> {
    this.#exiting = true;
    this.#graceTimeout = options.graceTimeout ?? 5;
    const reason = options.reason ?? "operator-exiting";
    const stops = [...this.#objects.values()].map((state) => this.#stopObject(state, reason));
    await Promise.all(stops);
  }

  /**
   * This operator no longer handles the object (its gate closed: another replica has it): its
   * daemons and timers stop (reason `operator-pausing`) and are not respawned until the object is
   * observed again.
   */
  release(key: string): Promise<unknown> {
    const state = this.#objects.get(key);
    if (!state) return Promise.resolve();
    state.released = true;
    const stopped = this.#stopObject(state, "operator-pausing");
    this.#forgetIfIdle(state);
    return stopped;
  }

  #create(resource: Resource, key: string, body: KubeObject): ObjectState {
    const state: ObjectState = {
      resource,
      key,
      uid: body.metadata?.uid,
      body,
      essence: undefined,
      idleResetAt: this.#clock.now(),
      logger: this.#logger(resource, body),
      writer: new PatchWriter(this.#client, resource, {
        consistencyTimeout: this.#settings.persistence.consistencyTimeout,
      }),
      foreverStopped: new Set(),
      running: new Map(),
      deleting: false,
      gone: false,
      released: false,
    };
    this.#objects.set(key, state);
    return state;
  }

  #contextInput(state: ObjectState, param: unknown, signal: AbortSignal, patch: Patch) {
    return {
      resource: state.resource,
      body: () => state.body,
      logger: state.logger,
      memo: this.#memo(state.resource, state.body),
      param,
      signal,
      indices: this.#indices,
      api: this.#api,
      patch,
    };
  }

  #reconcile(state: ObjectState): void {
    if (this.#exiting || state.deleting || state.gone || state.released) return;
    let filterContext: unknown;
    const matching = this.#registry.selectSpawning({
      resource: state.resource,
      body: state.body,
      context: () =>
        filterContext ??= resourceContext(
          this.#contextInput(state, undefined, NEVER, new Patch()),
          {},
        ),
    }, state.foreverStopped);
    const ids = new Set(matching.map((h) => h.id));
    for (const task of state.running.values()) {
      if (!ids.has(task.handler.id) && !task.stopping) {
        task.stopping = this.#stopTask(state, task, "filters-mismatch");
      }
    }
    for (const handler of matching) {
      if (!state.running.has(handler.id)) this.#spawn(state, handler);
    }
  }

  #spawn(state: ObjectState, handler: DaemonHandler | TimerHandler): void {
    const stopper = new DaemonStopper({ clock: this.#clock, parent: this.#signal });
    const env: SpawnEnv = {
      settings: this.#settings,
      logger: state.logger,
      clock: this.#clock,
      stopper,
      context: (extra) => {
        const input = this.#contextInput(state, handler.param, extra.signal, extra.patch);
        return resourceContext(input, {
          retry: extra.retry,
          started: extra.started,
          runtime: extra.runtime,
          stopped: extra.stopped,
        });
      },
      write: (patch) => state.writer.write(state.body, patch, state.logger),
      idleResetAt: () => state.idleResetAt,
      body: () => state.body,
    };
    const task: Task = {
      handler,
      stopper,
      logger: state.logger,
      exited: false,
      done: Promise.resolve(),
    };
    const run = (async () => {
      // Stopped while waiting for readiness: never called.
      const stopped = new Promise<void>((resolve) =>
        stopper.requested.addEventListener("abort", () => resolve(), { once: true })
      );
      await Promise.race([this.#ready(), stopped]);
      if (stopper.isSet) return;
      await (handler.kind === "daemon" ? runDaemon(handler, env) : runTimer(handler, env));
    })();
    (task as { done: Promise<void> }).done = run
      .catch((error) => {
        state.logger.error("{title} crashed: {error}", { title: handler.title, error });
      })
      .finally(() => {
        task.exited = true;
        this.#exited(state, task);
      });
    state.running.set(handler.id, task);
  }

  #stopTask(state: ObjectState, task: Task, reason: StopReason): Promise<unknown> {
    const graceTimeout = this.#exiting ? this.#graceTimeout : undefined;
    return stopSpawned(task, reason, {
      settings: this.#settings,
      clock: this.#clock,
      graceTimeout,
    }).then((result) => {
      if (result === "abandoned" && state.running.get(task.handler.id) === task) {
        state.running.delete(task.handler.id);
        this.#settled(state);
      }
    }, (error) => {
      logger.error("Stopping {title} failed: {error}", { title: task.handler.title, error });
    });
  }

  #stopObject(state: ObjectState, reason: StopReason): Promise<unknown> {
    const stops: Promise<unknown>[] = [];
    for (const task of state.running.values()) {
      task.stopping ??= this.#stopTask(state, task, reason);
      stops.push(task.stopping);
    }
    return Promise.all(stops);
  }

  #exited(state: ObjectState, task: Task): void {
    const ownExit = task.stopper.reason === null;
    task.stopper.set("done");
    if (state.running.get(task.handler.id) === task) state.running.delete(task.handler.id);
    if (ownExit) {
      // It returned or failed for good: never respawned for this object in this process.
      state.foreverStopped.add(task.handler.id);
    }
    if (state.deleting || state.gone || state.released || ownExit) {
      this.#settled(state);
    } else if (!this.#exiting) {
      // Stopped because the filters stopped matching: they may match again by now.
      this.#reconcile(state);
    }
  }

  #settled(state: ObjectState): void {
    if (state.gone || state.released) {
      this.#forgetIfIdle(state);
      return;
    }
    if (!state.deleting || state.running.size === 0) {
      try {
        this.#requeue(state.resource, state.body);
      } catch (error) {
        logger.error("Requeueing after daemons stopped failed: {error}", { error });
      }
    }
  }

  #forgetIfIdle(state: ObjectState): void {
    if (state.running.size > 0) return;
    if (this.#objects.get(state.key) === state) {
      this.#objects.delete(state.key);
      this.#retiredWrites += state.writer.writes;
      this.#retiredSkips += state.writer.skipped;
    }
  }
}

function sameObject(state: ObjectState, body: KubeObject): boolean {
  const uid = body.metadata?.uid;
  return state.uid === undefined || uid === undefined || state.uid === uid;
}
