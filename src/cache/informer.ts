/**
 * Shared informers: one list/watch per (resource, namespace or cluster-wide, label selector),
 * however many consumers want it, with a cache of the latest objects and a fan-out of changes.
 *
 * An informer starts with its first subscriber and stops with its last: the watch runs only
 * while someone listens. Label selectors go to the server, so objects that do not match are
 * neither sent nor stored.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { type KubeObject, type Resource, resourceKey } from "../kube/resource.ts";
import {
  listAndWatch,
  type ListAndWatchOptions,
  type ListWatch,
  type WatchStats,
  type WatchTransport,
} from "../kube/watch.ts";
import { internStrings, StringPool } from "./interning.ts";
import { ObjectStore, type StoreChange, stripManagedFields } from "./store.ts";

const logger = getLogger(["kopf", "informer"]);

/** What subscribers of an informer receive. */
export type InformerEvent<T extends KubeObject = KubeObject> =
  | StoreChange<T>
  | {
    /** The cache now holds the whole state: after the first listing and after each re-list. */
    type: "SYNCED";
    /** False for the first listing (and for the replay to a late subscriber). */
    relist: boolean;
  }
  | {
    /** The resource is not served any more (404): e.g. its CRD was deleted. */
    type: "MISSING";
  };

/** Whether an informer event is a change of one object (not a marker such as `SYNCED`). */
export function isChange<T extends KubeObject>(event: InformerEvent<T>): event is StoreChange<T> {
  return event.type !== "SYNCED" && event.type !== "MISSING";
}

/** A subscriber. Called synchronously, in order; it should only note or enqueue the change. */
export type InformerListener<T extends KubeObject = KubeObject> = (
  event: InformerEvent<T>,
) => void;

/** A subscription; unsubscribing the last one stops the informer. */
export interface Subscription extends Disposable {
  /** Stops delivering events to this subscriber (idempotent). */
  unsubscribe(): void;
}

/** Which objects an informer watches. */
export interface InformerScope {
  /** One namespace; omitted means cluster-wide (or a cluster-scoped resource). */
  namespace?: string;
  /** A label selector, applied by the server. */
  labelSelector?: string;
}

/** Settings shared by all informers of an {@linkcode Informers} registry. */
export interface InformersOptions extends
  Omit<
    ListAndWatchOptions,
    "namespace" | "labelSelector" | "fieldSelector" | "shardSelector" | "signal"
  > {
  /**
   * Applied to every object before it is stored and announced; it may modify the object in
   * place. Default: {@linkcode stripManagedFields}.
   */
  transform?: (object: KubeObject) => KubeObject;
}

/**
 * One shared list/watch with its cache. Get it from {@linkcode Informers.get}; it runs while
 * it has subscribers.
 */
export class Informer<T extends KubeObject = KubeObject> {
  /** The watched resource. */
  readonly resource: Resource;
  /** The watched namespace, or undefined for cluster-wide. */
  readonly namespace: string | undefined;
  /** The server-side label selector, if any. */
  readonly labelSelector: string | undefined;
  /** The latest state of every watched object. */
  readonly store: ObjectStore<T>;

  #transport: WatchTransport;
  #options: InformersOptions;
  #pool: StringPool;
  #onStop: () => void;
  #listeners = new Set<InformerListener<T>>();
  #abort: AbortController | undefined;
  #watch: ListWatch<T> | undefined;
  #shardSelector: string | undefined;
  #done: Promise<void> | undefined;
  #stats: Readonly<WatchStats> | undefined;
  #stopped = false;
  #syncWaiters: { resolve: () => void; reject: (reason: unknown) => void }[] = [];

  /** @internal Use {@linkcode Informers.get}. */
  constructor(
    transport: WatchTransport,
    resource: Resource,
    scope: InformerScope,
    options: InformersOptions,
    onStop: () => void,
    pool: StringPool = new StringPool(),
  ) {
    this.#transport = transport;
    this.#pool = pool;
    this.resource = resource;
    this.store = new ObjectStore<T>(resource);
    this.namespace = scope.namespace;
    this.labelSelector = scope.labelSelector || undefined;
    this.#options = options;
    this.#onStop = onStop;
  }

  /**
   * The shard selector (KEP-5866) the server is asked to apply, if any: then the store holds
   * only that share of the objects. `undefined` also once the server has shown it ignores it.
   */
  get shardSelector(): string | undefined {
    return this.#watch ? this.#watch.shardSelector : this.#shardSelector;
  }

  /**
   * Watch only the objects of `shardSelector` (`undefined`: all): before the informer starts, its
   * first listing is that share; while it runs, it lists again — objects that come into the share
   * are announced as `ADDED` with `initial: true`, those that leave it as `DELETED` (their last
   * known state), the others only if they changed.
   */
  rescope(shardSelector: string | undefined): void {
    this.#shardSelector = shardSelector || undefined;
    this.#watch?.rescope(this.#shardSelector);
  }

  /** The first listing is complete: the store holds the whole state (of its share). */
  get synced(): boolean {
    return this.#stats?.synced ?? false;
  }

  /** The watch is connected and its last request succeeded. */
  get healthy(): boolean {
    return this.#stats?.healthy ?? false;
  }

  /** When the server last answered this informer (ms since the epoch), if ever. */
  get lastHealthyAt(): number | undefined {
    return this.#stats?.lastHealthyAt;
  }

  /** Live counters: lists, relists, watches, reconnects, events, bookmarks, errors. */
  get stats(): Readonly<WatchStats> | undefined {
    return this.#stats;
  }

  /** How many subscribers there are. */
  get subscribers(): number {
    return this.#listeners.size;
  }

  /** Whether the informer has stopped for good (its last subscriber left). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Adds a subscriber and starts the informer if it is the first.
   *
   * A subscriber that joins a running informer is first told the current contents (as
   * `ADDED` events with `initial: true`, then `SYNCED` if the first listing is complete),
   * synchronously, before this method returns; then it gets live changes.
   */
  subscribe(listener: InformerListener<T>): Subscription {
    if (this.#stopped) {
      throw new Error(
        `the informer of ${this.#describe()} has stopped; get a new one from Informers.get()`,
      );
    }
    if (this.#listeners.has(listener)) throw new Error("this listener is already subscribed");
    for (const [key, object] of this.store.entries()) {
      this.#deliver(listener, { type: "ADDED", key, object, initial: true });
    }
    if (this.synced) this.#deliver(listener, { type: "SYNCED", relist: false });
    this.#listeners.add(listener);
    if (!this.#abort) this.#start();
    let active = true;
    const unsubscribe = () => {
      if (!active) return;
      active = false;
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
    return { unsubscribe, [Symbol.dispose]: unsubscribe };
  }

  /** Resolves when the first listing is complete (or at once if it is); rejects on abort. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#stopped) return Promise.reject(new Error(`${this.#describe()}: stopped`));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#syncWaiters.push({
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (reason) => {
          signal?.removeEventListener("abort", onAbort);
          reject(reason);
        },
      });
    });
  }

  /**
   * Stops the informer now, whatever its subscribers (e.g. at operator shutdown). A stopped
   * informer cannot be restarted; {@linkcode Informers.get} then gives a new one.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#listeners.clear();
    this.#stop();
  }

  /** Resolves when the watch loop has ended after the informer stopped. */
  async closed(): Promise<void> {
    await this.#done;
  }

  #describe(): string {
    const where = this.namespace ? `namespace ${this.namespace}` : "all namespaces";
    const selector = this.labelSelector ? ` with labels ${this.labelSelector}` : "";
    const shard = this.shardSelector ? " (sharded)" : "";
    return `${resourceKey(this.resource)} in ${where}${selector}${shard}`;
  }

  #start(): void {
    const abort = new AbortController();
    this.#abort = abort;
    const { transform = stripManagedFields, ...watchOptions } = this.#options;
    const watch = listAndWatch<T>(this.#transport, this.resource, {
      ...watchOptions,
      namespace: this.namespace,
      labelSelector: this.labelSelector,
      shardSelector: this.#shardSelector,
      signal: abort.signal,
    });
    this.#watch = watch;
    this.#stats = watch.stats;
    logger.debug("Starting the informer of {what}.", { what: this.#describe() });
    this.#done = (async () => {
      try {
        for await (const event of watch) {
          if (event.type === "MISSING") {
            this.#broadcast({ type: "MISSING" });
            continue;
          }
          if (event.type === "SYNCED") {
            for (const waiter of this.#syncWaiters.splice(0)) waiter.resolve();
            this.#broadcast({ type: "SYNCED", relist: event.relist });
            continue;
          }
          const object = transform(event.object) as T;
          // Stored objects share one copy of their common strings (apiVersion, namespace, …).
          if (event.type !== "DELETED") internStrings(object, this.#pool);
          const change = this.store.apply({ ...event, object });
          if (change) this.#broadcast(change);
        }
      } catch (error) {
        // listAndWatch retries everything itself; reaching here is a bug, and a loud one.
        logger.error("The informer of {what} crashed: {error}", {
          what: this.#describe(),
          error,
        });
      }
    })();
  }

  #stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
    const stopped = new Error(`the informer of ${this.#describe()} stopped before it synced`);
    for (const waiter of this.#syncWaiters.splice(0)) waiter.reject(stopped);
    this.#onStop();
    logger.debug("Stopped the informer of {what}: no subscribers left.", {
      what: this.#describe(),
    });
  }

  #broadcast(event: InformerEvent<T>): void {
    for (const listener of this.#listeners) this.#deliver(listener, event);
  }

  #deliver(listener: InformerListener<T>, event: InformerEvent<T>): void {
    try {
      listener(event);
    } catch (error) {
      // One failing consumer must not starve the others or break the watch.
      logger.error("A subscriber of the informer of {what} failed on {type}: {error}", {
        what: this.#describe(),
        type: event.type,
        error,
      });
    }
  }
}

/**
 * The registry of shared informers: asking twice for the same resource, scope and selector
 * gives the same informer.
 *
 * @example
 * ```ts
 * import { KubeClient } from "../kube/client.ts";
 * import { Discovery } from "../kube/discovery.ts";
 * import { parseSelector } from "../kube/selector.ts";
 * import { Informers } from "./informer.ts";
 *
 * const client = await KubeClient.connect();
 * const [configMaps] = await new Discovery(client).resolve(parseSelector("v1", "configmaps"));
 * const informers = new Informers(client);
 * const informer = informers.get(configMaps, { namespace: "default" });
 * const subscription = informer.subscribe((event) => console.log(event.type));
 * await informer.waitForSync();
 * console.log(informer.store.size, "config maps");
 * subscription.unsubscribe(); // the last one: the watch stops
 * client.close();
 * ```
 */
export class Informers {
  #transport: WatchTransport;
  #options: InformersOptions;
  #informers = new Map<string, Informer<KubeObject>>();
  #retired = new Set<Informer<KubeObject>>();
  // Shared by all informers: namespaces, finalizers and labels recur across resources too.
  #pool = new StringPool();

  /** Creates a registry whose informers all use `transport` and `options`. */
  constructor(transport: WatchTransport, options: InformersOptions = {}) {
    this.#transport = transport;
    this.#options = options;
  }

  /** How many informers are registered (running or waiting for their first subscriber). */
  get size(): number {
    return this.#informers.size;
  }

  /** All registered informers. */
  all(): Informer<KubeObject>[] {
    return [...this.#informers.values()];
  }

  /** The shared informer for this resource and scope, created on first use. */
  get<T extends KubeObject = KubeObject>(
    resource: Resource,
    scope: InformerScope = {},
  ): Informer<T> {
    const key = [resourceKey(resource), scope.namespace ?? "", scope.labelSelector ?? ""].join(
      "\u0000",
    );
    let informer = this.#informers.get(key);
    if (!informer) {
      const created: Informer<KubeObject> = new Informer<KubeObject>(
        this.#transport,
        resource,
        scope,
        this.#options,
        () => {
          if (this.#informers.get(key) === created) this.#informers.delete(key);
          this.#retired.add(created);
          void created.closed().then(() => this.#retired.delete(created));
        },
        this.#pool,
      );
      informer = created;
      this.#informers.set(key, informer);
    }
    return informer as unknown as Informer<T>;
  }

  /** Stops every informer (as if all subscribers left) and waits for their watches to end. */
  async stop(): Promise<void> {
    const all = [...this.#informers.values()];
    this.#informers.clear();
    for (const informer of all) informer.stop();
    await Promise.all([...all, ...this.#retired].map((informer) => informer.closed()));
  }
}
