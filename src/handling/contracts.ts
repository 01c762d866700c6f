/**
 * The joins between the operator loop (`reactor/`), the handling cycle and the background engines
 * (daemons and timers, indexes, health) — declared once, here, in the lowest of the three layers.
 *
 * The reactor feeds every engine the {@linkcode ObjectEvent}s of the resources it serves, gives it
 * an {@linkcode OperatorHandle} at start, and asks it in every object's cycle for its
 * {@linkcode EngineVerdict} (Kopf spawns daemons before, and stops them after, the changing
 * handlers). controller-runtime's `source`/`handler` packages and Kopf's `engines` hooks are the
 * models.
 *
 * @module
 */

import type { Api } from "../kits/api.ts";
import type { Logger } from "@logtape/logtape";
import type { Informers } from "../cache/informer.ts";
import type { KubeClient } from "../kube/client.ts";
import type { EventPosterStats } from "../kube/events.ts";
import type { KubeObject, ObjectKey, Resource } from "../kube/resource.ts";
import type { QueueCounters, QueueObserver } from "../queue/object_queue.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings/settings.ts";
import type { Memories, ObjectMemory } from "./memories.ts";

/** One event of an object of a served resource, in order per object. */
export interface ObjectEvent {
  /** The object's key. */
  readonly key: ObjectKey;
  /** The resource. */
  readonly resource: Resource;
  /** What happened. */
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  /** The object (for `DELETED`, its last state). Engines must not modify it. */
  readonly object: KubeObject;
  /** From the first listing of its watch (the object existed before). */
  readonly initial: boolean;
}

/** What an engine sees of an object in its cycle. */
export interface EngineCycleInput {
  /** The object's key. */
  readonly key: ObjectKey;
  /** The resource. */
  readonly resource: Resource;
  /** The latest body (the cache's copy: do not modify it). */
  readonly body: KubeObject;
  /** The essence changed since last handled (resets timers' idle time). */
  readonly changed: boolean;
  /** The object's memory (its memo is shared with its handlers). */
  readonly memory: ObjectMemory;
  /** The object's logger. */
  readonly logger: Logger;
}

/** What an engine tells the cycle about one object. */
export interface EngineVerdict {
  /**
   * Seconds until the object needs another cycle for this engine (e.g. daemons still stopping
   * while the object is being deleted). While any delay is pending for an object being deleted,
   * our finalizer stays on it.
   */
  readonly delays?: readonly number[];
  /** Daemon/timer ids that stopped for good for this object: they need no finalizer any more. */
  readonly excluded?: ReadonlySet<string>;
}

/** What engines may read of the operator's object queue (for metrics): numbers only. */
export interface QueueView {
  /** The queue's name (`workqueue_*{name}`). */
  readonly name: string;
  /** Keys ready to run and waiting for a worker. */
  readonly size: number;
  /** Keys with a pending delayed wake-up. */
  readonly delayed: number;
  /** Runs in progress. */
  readonly inFlight: number;
  /** How many runs may be in progress at once. */
  readonly concurrency: number;
  /** Monotonic counters (adds, runs, retries). */
  readonly counters: QueueCounters;
  /** Seconds each run in progress has been running (timed only for a queue observer). */
  runningSeconds(): number[];
}

/** One handling cycle of one object, as it ended (controller-runtime's reconcile). */
export interface CycleRecord {
  /** The object's key. */
  readonly key: ObjectKey;
  /** The object's resource. */
  readonly resource: Resource;
  /** Seconds the cycle took. */
  readonly seconds: number;
  /**
   * controller-runtime's result: `success` (nothing more to do), `requeue_after` (run again
   * later: a retry, a timer, a daemon stopping), or `error` (the framework failed the cycle).
   */
  readonly result: "success" | "requeue_after" | "error";
  /** Requests that changed the object in this cycle. */
  readonly writes: number;
}

/** What engines can use of a running operator. */
export interface OperatorHandle {
  /** The API client. */
  readonly client: KubeClient;
  /** The settings. */
  readonly settings: Settings;
  /** The handlers. */
  readonly registry: Registry;
  /** Per-object memories (memos). */
  readonly memories: Memories;
  /** The shared informers. */
  readonly informers: Informers;
  /** The API for handlers (`api` in their contexts). */
  readonly api: Api;
  /** What decides which objects this operator handles (peering), if anything does. */
  readonly gate?: ProcessingGate;
  /** Aborted when the operator starts stopping. */
  readonly signal: AbortSignal;
  /** Run an object's handling cycle again (e.g. when its daemons have stopped). */
  requeue(key: ObjectKey, delaySeconds?: number): void;
  /**
   * Stop the operator because this engine cannot go on (Kopf: a root task that fails ends the
   * operator, e.g. its webhook server); the run then fails with `error` once it has stopped.
   */
  fail(error: Error): void;
  /** The object queue's numbers (for metrics). */
  readonly queue: QueueView;
  /** The Event poster's counters (for metrics). */
  events(): EventPosterStats;
}

/**
 * A background engine plugged into the operator: it starts with the operator, sees every object
 * event, takes part in every object's cycle, and is stopped before the operator stops.
 */
export interface BackgroundEngine {
  /** A name for logs. */
  readonly name: string;
  /** Called once the client exists, before resources are watched. */
  start?(operator: OperatorHandle): void | Promise<void>;
  /** Every object event of every served resource, in order per object. Must not throw. */
  onEvent?(event: ObjectEvent): void;
  /** Take part in one cycle of one object (before its changing handlers). */
  cycle?(input: EngineCycleInput): EngineVerdict | Promise<EngineVerdict>;
  /**
   * Resolves once other handlers may run (Kopf: every index has indexed the initial listing of
   * its resources, so no handler, timer or daemon ever sees a partial index).
   */
  whenReady?(): Promise<void>;
  /** Told how long each queued key waited and worked (given to the queue when it is made). */
  readonly queueObserver?: QueueObserver;
  /** Every handling cycle of every object, as it ends. Must not throw. */
  onCycle?(record: CycleRecord): void;
  /**
   * Whether this engine runs handlers for objects (daemons, timers): if so, it sees the events
   * of the objects the {@linkcode ProcessingGate} admits only, and {@linkcode release} for those
   * it stops admitting. Engines that only observe (indexes, health) see every event.
   */
  readonly handles?: boolean;
  /** This operator no longer handles the object (the gate closed): stop what runs for it. */
  release?(key: ObjectKey, resource: Resource): void | Promise<unknown>;
  /** This engine's indexes by id (merged into every handler's `indices`). */
  indices?(): Readonly<Record<string, unknown>>;
  /** Called when the operator stops, before the client is closed. */
  stop?(): void | Promise<void>;
}

/** What the reactor gives a {@linkcode ProcessingGate} when the operator starts. */
export interface GateHooks {
  /** The API client. */
  readonly client: KubeClient;
  /** The settings. */
  readonly settings: Settings;
  /** The namespace patterns served (for where a Lease lives when nothing else says). */
  readonly namespaces?: readonly (string | RegExp)[];
  /** Aborted when the operator starts stopping. */
  readonly signal: AbortSignal;
  /**
   * What the gate admits has changed: the reactor signals the in-flight handlers of objects no
   * longer admitted, stops their daemons and timers, and queues every admitted cached object;
   * then it re-scopes its informers to the gate's `watchSelector()`.
   * Resolves once the handling of the objects no longer admitted has ended (a hand-over may go
   * on then).
   */
  changed(): Promise<void>;
}

/**
 * The one join of "may this operator handle objects now — this object?" (leader election; Kopf's
 * peering and sharding to come). Caches stay warm (watching, indexes) whatever it says; what it
 * closes is handling: no new cycle, `on.event` handler, daemon or timer starts for an object it
 * does not admit, and those running are signalled when it stops admitting the object.
 */
export interface ProcessingGate {
  /** A name for logs. */
  readonly name: string;
  /** Start (e.g. campaigning for a Lease); resolves once started, not once admitted. */
  start(hooks: GateHooks): void | Promise<void>;
  /** Whether this operator may handle this object now. Must be cheap: asked for every event. */
  admits(key: ObjectKey, object: KubeObject | undefined): boolean;
  /**
   * The leader elections this gate campaigns in, by Lease name, and whether this replica leads
   * each now (client-go's `leader_election_master_status`, read at scrape time).
   */
  leadership?(): readonly { readonly name: string; readonly leading: boolean }[];
  /**
   * The KEP-5866 shard selector of the objects this gate may come to admit, for the informers'
   * LISTs and WATCHes (sharding), or `undefined` for any object. Asked after each `changed()`;
   * it must cover whatever `admits()` may say yes to before the next `changed()`.
   */
  watchSelector?(): string | undefined;
  /** Stop (e.g. give the Lease up) once handling has drained. */
  stop(): void | Promise<void>;
}
