/**
 * The operator loop, `kopf.run()`: resolves the registered selectors through discovery, watches
 * every served resource through shared informers (one per resource × namespace × server-side
 * label selector), puts object keys on one coalescing queue, runs a handling cycle per key, and
 * stops gracefully.
 *
 * Custom resources that appear later are picked up: CRDs are watched only when some selector is
 * unresolved or non-specific (EVERYTHING, categories, predicates). Namespace globs are resolved
 * by watching namespaces; plain names are watched directly.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type Informer,
  type InformerEvent,
  Informers,
  isChange,
  type Subscription,
} from "./cache/informer.ts";
import type { StoreChange } from "./cache/store.ts";
import { KubeClient } from "./kube/client.ts";
import { Discovery, ResolveError } from "./kube/discovery.ts";
import { ApiError } from "./kube/errors.ts";
import { sleepUnless } from "./kube/time.ts";
import { EventPoster } from "./kube/events.ts";
import { matchNamespaces, specificNamespaces } from "./kube/namespaces.ts";
import {
  type KubeObject,
  type ObjectKey,
  parseObjectKey,
  type Resource,
  resourceKey,
} from "./kube/resource.ts";
import type { Memo } from "./registry/context.ts";
import { defaultRegistry, type Registry } from "./registry/registry.ts";
import { Settings } from "./settings.ts";
import type { RawBody } from "./storage/fields.ts";
import { isDeletionBlocked } from "./storage/finalizers.ts";
import { ObjectQueue, sequenceBackoff } from "./queue/object_queue.ts";
import {
  type CycleEnvironment,
  isOrphaned,
  loggerFor,
  type OrphanInput,
  processEvent,
  processObject,
  processOrphan,
} from "./handling/cycle.ts";
import { contain } from "./actions/containment.ts";
import type { BackgroundEngine, OperatorHandle } from "./handling/contracts.ts";
import { Memories } from "./handling/memories.ts";
import { releaseFinalizer } from "./actions/finalizers.ts";
import { registerPostingTarget, withPostingTarget } from "./actions/posting.ts";
import { ActivityError, runActivity } from "./engines/activities.ts";
import { backgroundEngines } from "./reactor/engines.ts";
import { loginConfig } from "./engines/login.ts";
import { armUltimateExit, handleSignals } from "./reactor/shutdown.ts";

const logger = getLogger(["kopf", "operator"]);

/** Options of {@linkcode run}. */
export interface RunOptions {
  /**
   * Namespace patterns to serve (Kopf's globs with `!` negation, or RegExps). Neither this nor
   * `clusterwide`: the whole cluster, with a warning (as Kopf).
   */
  namespaces?: readonly (string | RegExp)[];
  /** Serve all namespaces. */
  clusterwide?: boolean;
  /** The handlers (default: the global registry of `kopf.on.*`). */
  registry?: Registry;
  /** The settings (default: `new Settings()`). */
  settings?: Settings;
  /** Stops the operator when aborted. */
  signal?: AbortSignal;
  /** Stop on SIGINT/SIGTERM (default false: embedding applications handle their signals). */
  handleSignals?: boolean;
  /** Kubeconfig file(s). */
  kubeconfig?: string;
  /** Kubeconfig context. */
  context?: string;
  /** The operator-wide memo; every object's `memo` starts as a shallow copy of it. */
  memo?: Memo;
  /** Called once every served resource is listed and watched. */
  ready?: () => void | Promise<void>;
  /** Accepted for the CLI; served by the health engine. */
  liveness?: string;
  /** Accepted for the CLI (peering is not implemented: every operator is standalone). */
  standalone?: boolean;
  /** Accepted for the CLI (peering priority). */
  priority?: number;
}

/**
 * What the framework itself (and its tests) may pass besides {@linkcode RunOptions}: not part of
 * the public API.
 */
export interface OperatorInternals {
  /** A client to use instead of connecting (it is not closed on stop). */
  client?: KubeClient;
  /** Background engines (daemons, timers, indexes, health) besides the built-in ones. */
  engines?: readonly BackgroundEngine[];
}

/** How many handlers are registered in the global registry (for the CLI). */
export function countHandlers(registry: Registry = defaultRegistry()): number {
  return registry.handlers.length;
}

interface Scope {
  readonly informer: Informer<KubeObject>;
  readonly subscription: Subscription;
}

interface Served {
  readonly resource: Resource;
  readonly labelSelector: string | undefined;
  readonly scopes: Map<string, Scope>;
}

/** Where an object's latest state is: its resource, and the informer caching it. */
interface Location {
  readonly resource: Resource;
  readonly informer: Informer<KubeObject>;
}

const CRDS: Resource = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
  kind: "CustomResourceDefinition",
  singular: "customresourcedefinition",
  shortcuts: ["crd", "crds"],
  categories: [],
  namespaced: false,
  preferred: true,
  verbs: ["list", "watch", "get"],
  subresources: ["status"],
};

const NAMESPACES: Resource = {
  group: "",
  version: "v1",
  plural: "namespaces",
  kind: "Namespace",
  singular: "namespace",
  shortcuts: ["ns"],
  categories: [],
  namespaced: false,
  preferred: true,
  verbs: ["list", "watch", "get"],
  subresources: ["status"],
};

/** One running operator. */
class Operator {
  readonly #options: RunOptions & OperatorInternals;
  readonly #settings: Settings;
  readonly #registry: Registry;
  readonly #stop = new AbortController();
  readonly #memories: Memories;
  readonly #served = new Map<string, Served>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #warned = new Set<string>();
  readonly #handlersStop = new AbortController();
  readonly #memo: Memo;
  readonly #engineList: readonly BackgroundEngine[];
  #client!: KubeClient;
  #ownClient = false;
  #poster!: EventPoster;
  #informers!: Informers;
  #queue!: ObjectQueue;
  #discovery!: Discovery;
  #env!: CycleEnvironment;
  #namespaces: Set<string> | null = null;
  #observers: Subscription[] = [];
  #rescanTimer: ReturnType<typeof setTimeout> | undefined;
  #observingCrds = false;
  #rescanning: Promise<void> = Promise.resolve();

  constructor(options: RunOptions & OperatorInternals) {
    this.#options = options;
    this.#settings = options.settings ?? new Settings();
    this.#registry = options.registry ?? defaultRegistry();
    this.#memo = options.memo ?? {};
    this.#memories = new Memories(this.#memo);
    // Indexes, daemons and timers, and the health endpoint, as the registry and options need.
    const builtins = backgroundEngines({
      registry: this.#registry,
      memo: this.#memo,
      liveness: options.liveness,
      logger: (_resource, body) => loggerFor(this.#env, body),
    }, this.#settings);
    this.#engineList = [...builtins, ...(options.engines ?? [])];
  }

  async run(): Promise<void> {
    const removeSignals = this.#listenForStop();
    // Handler code that fails outside its call, or tries to exit, must not end the operator.
    const release = contain();
    let unregister = () => {};
    try {
      if (this.#stop.signal.aborted) return;
      // Startup handlers may change the settings: everything is built after them.
      await this.#activity("startup");
      if (this.#stop.signal.aborted) return;
      await this.#connect();
      unregister = registerPostingTarget({
        poster: this.#poster,
        settings: this.#settings.posting,
      });
      for (const engine of this.#engines) await engine.start?.(this.#handle());
      await this.#serve();
      if (!this.#stop.signal.aborted) await this.#waitForSync();
      if (!this.#stop.signal.aborted) await this.#options.ready?.();
      await new Promise<void>((resolve) => {
        if (this.#stop.signal.aborted) return resolve();
        this.#stop.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    } finally {
      // A stop that hangs (a stuck handler, cleanup) must not keep the process alive forever.
      const ultimate = armUltimateExit(this.#settings.process.ultimateExitingTimeout);
      removeSignals();
      try {
        await this.#shutdown();
        unregister();
        await this.#activity("cleanup").catch((error) =>
          logger.error("Cleanup failed: {error}", { error })
        );
      } finally {
        ultimate.dispose();
        release();
      }
    }
  }

  get #engines(): readonly BackgroundEngine[] {
    return this.#engineList;
  }

  /** Run an operator activity (startup, cleanup) if it has handlers; a failure throws. */
  async #activity(activity: "startup" | "cleanup"): Promise<void> {
    if (!this.#registry.activityHandlers(activity).length) return;
    const indices = Object.assign({}, ...this.#engines.map((e) => e.indices?.() ?? {}));
    try {
      await runActivity({
        registry: this.#registry,
        activity,
        settings: this.#settings,
        memo: this.#memo,
        indices,
        // Startup stops retrying when the operator is stopped; cleanup runs to its end.
        signal: activity === "startup" ? this.#stop.signal : undefined,
      });
    } catch (error) {
      if (
        activity === "startup" && this.#stop.signal.aborted && !(error instanceof ActivityError)
      ) {
        return;
      }
      throw error;
    }
  }

  #listenForStop(): () => void {
    const external = this.#options.signal;
    const onAbort = () => {
      if (this.#stop.signal.aborted) return;
      logger.info("Stop-flag is raised. Operator is stopping.");
      this.#stop.abort();
    };
    if (external?.aborted) this.#stop.abort();
    else external?.addEventListener("abort", onAbort, { once: true });
    // The first signal stops gracefully; a second one exits at once.
    const signals = this.#options.handleSignals ? handleSignals(() => this.#stop.abort()) : null;
    return () => {
      external?.removeEventListener("abort", onAbort);
      signals?.dispose();
    };
  }

  async #connect(): Promise<void> {
    const { networking, watching, posting, queueing } = this.#settings;
    if (this.#options.client) {
      this.#client = this.#options.client;
    } else {
      const clientOptions = {
        qps: networking.qps,
        maxQps: networking.maxQps,
        burst: networking.burst,
        maxInFlight: networking.maxInFlight,
        timeoutMs: networking.requestTimeout === null
          ? undefined
          : networking.requestTimeout * 1000,
        readTimeoutMs: networking.readTimeout * 1000,
        writeTimeoutMs: networking.writeTimeout * 1000,
        watchTimeoutMs: networking.watchOpenTimeout * 1000,
        readIdleTimeoutMs: networking.readIdleTimeout * 1000,
        pingTimeoutMs: networking.pingTimeout * 1000,
        retries: networking.errorBackoffs.length,
      };
      // With kopf.on.login handlers, their credentials (refreshed on 401 and on expiration).
      const login = await loginConfig({
        registry: this.#registry,
        settings: this.#settings,
        memo: this.#memo,
        indices: Object.assign({}, ...this.#engines.map((e) => e.indices?.() ?? {})),
        signal: this.#stop.signal,
      });
      this.#client = login ? new KubeClient(login, clientOptions) : await KubeClient.connect({
        kubeconfig: this.#options.kubeconfig,
        context: this.#options.context,
        ...clientOptions,
      });
      this.#ownClient = true;
    }
    this.#poster = new EventPoster(this.#client, {
      reportingComponent: posting.reportingComponent,
      reportingInstance: posting.reportingInstance,
      eventNamePrefix: posting.eventNamePrefix,
    });
    const serverTimeout = watching.serverTimeout;
    this.#informers = new Informers(this.#client, {
      pageSize: watching.chunkSize ?? undefined,
      idleTimeoutMs: watching.idleTimeout === null ? undefined : watching.idleTimeout * 1000,
      serverTimeoutSeconds: serverTimeout === null
        ? undefined
        : typeof serverTimeout === "number"
        ? [serverTimeout, serverTimeout]
        : serverTimeout,
    });
    this.#discovery = new Discovery(this.#client);
    this.#env = {
      client: this.#client,
      registry: this.#registry,
      settings: this.#settings,
      memories: this.#memories,
      poster: this.#poster,
      indices: () => Object.assign({}, ...this.#engines.map((e) => e.indices?.() ?? {})),
      engines: this.#engines.filter((e) => typeof e.cycle === "function"),
    };
    const target = { poster: this.#poster, settings: posting };
    this.#queue = new ObjectQueue({
      name: "objects",
      concurrency: queueing.workerLimit ?? 1_000_000,
      backoff: sequenceBackoff(queueing.errorDelays),
      process: (key, signal) => withPostingTarget(target, () => this.#process(key, signal)),
    });
  }

  #handle(): OperatorHandle {
    return {
      client: this.#client,
      settings: this.#settings,
      registry: this.#registry,
      memories: this.#memories,
      informers: this.#informers,
      signal: this.#stop.signal,
      requeue: (key, delaySeconds) =>
        delaySeconds ? this.#queue.addAfter(key, delaySeconds) : this.#queue.add(key),
    };
  }

  /**
   * Where the object of a key is cached, derived from the key rather than remembered per object:
   * with many objects, a map of locations costs ~90 bytes each for what the key already says.
   */
  #locate(key: ObjectKey): Location | undefined {
    const { resource, namespace } = parseObjectKey(key);
    const served = this.#served.get(resource);
    if (!served) return undefined;
    const scope = namespace === undefined
      ? served.scopes.get("")
      : served.scopes.get(namespace) ?? served.scopes.get("");
    return scope && { resource: served.resource, informer: scope.informer };
  }

  async #process(key: string, signal: AbortSignal): Promise<{ requeueAfter?: number } | void> {
    const location = this.#locate(key);
    if (!location) return;
    const body = location.informer.store.get(key);
    const result = await processObject(this.#env, {
      key,
      resource: location.resource,
      body,
      signal,
    });
    return result.requeueAfter === undefined ? undefined : { requeueAfter: result.requeueAfter };
  }

  // --- What to serve -----------------------------------------------------------------------

  async #serve(): Promise<void> {
    const { namespaces, clusterwide } = this.#options;
    if (namespaces?.length && clusterwide) {
      throw new TypeError("kopf.run(): give either namespaces or clusterwide, not both");
    }
    if (!namespaces?.length) {
      if (!clusterwide) {
        logger.warn(
          "No namespaces or clusterwide mode are given: serving the whole cluster. " +
            "Use namespaces: [...] or clusterwide: true to make it explicit.",
        );
      }
      this.#namespaces = null;
    } else {
      await this.#resolveNamespaces(namespaces);
    }
    const { resources, observe } = await this.#resolve();
    for (const resource of resources) this.#serveResource(resource);
    if (observe && !this.#settings.scanning.disabled) this.#observeCrds();
  }

  async #resolveNamespaces(patterns: readonly (string | RegExp)[]): Promise<void> {
    const names = specificNamespaces(patterns);
    if (names || this.#settings.scanning.disabled) {
      this.#namespaces = new Set(names ?? specificNamespaces(literalPatterns(patterns)) ?? []);
      return;
    }
    try {
      await this.#client.list(NAMESPACES, { limit: 1, signal: this.#stop.signal });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) throw error;
      const literals = specificNamespaces(literalPatterns(patterns)) ?? [];
      logger.warn(
        "Namespaces cannot be listed (403): serving only the namespaces named literally " +
          "({names}); the globs are ignored.",
        { names: literals.join(", ") || "none" },
      );
      this.#namespaces = new Set(literals);
      return;
    }
    this.#namespaces = new Set();
    const informer = this.#informers.get(NAMESPACES);
    this.#observers.push(informer.subscribe((event) => this.#onNamespace(event, patterns)));
    await informer.waitForSync(this.#stop.signal).catch(() => {});
  }

  #onNamespace(event: InformerEvent, patterns: readonly (string | RegExp)[]): void {
    if (!isChange(event) || !this.#namespaces) return;
    const name = event.object.metadata?.name;
    if (!name || !matchNamespaces(name, patterns)) return;
    if (event.type === "DELETED") {
      if (!this.#namespaces.delete(name)) return;
      logger.debug("Namespace {namespace} is gone: not served any more.", { namespace: name });
      for (const served of this.#served.values()) this.#unserveScope(served, name);
    } else if (!this.#namespaces.has(name)) {
      this.#namespaces.add(name);
      logger.debug("Namespace {namespace} is served.", { namespace: name });
      for (const served of this.#served.values()) {
        if (served.resource.namespaced) this.#serveScope(served, name);
      }
    }
  }

  /** Resolve every selector; unresolved and non-specific ones ask for CRD observation. */
  async #resolve(warn = true): Promise<{ resources: Resource[]; observe: boolean }> {
    const found = new Map<string, Resource>();
    let observe = false;
    for (const selector of this.#registry.selectors()) {
      if (!selector.isSpecific) observe = true;
      try {
        for (
          const resource of await this.#discovery.resolve(selector, { signal: this.#stop.signal })
        ) {
          found.set(resourceKey(resource), resource);
        }
      } catch (error) {
        if (!(error instanceof ResolveError)) throw error;
        observe = true;
        const text = error.kind === "unknown"
          ? `Unresolved resources cannot be served (try creating their CRDs): ${selector}`
          : `Ambiguous resources will not be served (try specifying API groups): ${error.message}`;
        // Re-scans say what changed as they serve or stop serving (at INFO), not this again.
        if (warn && !this.#warned.has(text)) {
          this.#warned.add(text);
          logger.warn(text.replaceAll("{", "{{").replaceAll("}", "}}"));
        }
      }
    }
    return { resources: [...found.values()], observe };
  }

  #observeCrds(): void {
    if (this.#observingCrds) return;
    this.#observingCrds = true;
    const informer = this.#informers.get(CRDS);
    this.#observers.push(informer.subscribe((event) => {
      // A new CRD is served only once established: wait for the burst of its events to settle.
      if (isChange(event) && !event.initial) this.#scheduleRescan(500);
    }));
  }

  #scheduleRescan(delayMs: number): void {
    clearTimeout(this.#rescanTimer);
    this.#rescanTimer = setTimeout(() => {
      this.#rescanning = this.#rescanning.then(() => this.#rescan()).catch((error) =>
        logger.error("Re-scanning the resources failed: {error}", { error })
      );
    }, delayMs);
  }

  async #rescan(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#discovery.invalidate();
    const { resources } = await this.#resolve(false);
    const wanted = new Map(resources.map((r) => [resourceKey(r), r]));
    for (const [key, served] of this.#served) {
      if (wanted.has(key)) continue;
      logger.info("Resource {resource} is not served any more.", { resource: key });
      for (const scope of [...served.scopes.keys()]) this.#unserveScope(served, scope);
      this.#served.delete(key);
    }
    for (const [key, resource] of wanted) {
      if (this.#served.has(key)) continue;
      logger.info("Resource {resource} is served.", { resource: key });
      this.#serveResource(resource);
    }
  }

  /**
   * A served resource is gone from the API (404; e.g. its CRD was deleted): stop watching it, and
   * watch CRDs so that it is served again when it returns.
   */
  #missing(served: Served): void {
    const key = resourceKey(served.resource);
    if (this.#served.get(key) !== served) return;
    logger.info(
      "Resource {resource} is gone from the API (its CRD deleted?): not served any more, " +
        "until it returns.",
      { resource: key },
    );
    for (const scope of [...served.scopes.keys()]) this.#unserveScope(served, scope);
    this.#served.delete(key);
    if (this.#settings.scanning.disabled) return;
    this.#observeCrds();
    // It may be back already (a 404 that passed): look now, not only on the next CRD event.
    this.#scheduleRescan(0);
  }

  #serveResource(resource: Resource): void {
    const key = resourceKey(resource);
    if (this.#served.has(key) || this.#stop.signal.aborted) return;
    const served: Served = {
      resource,
      labelSelector: this.#registry.labelSelector(resource) ?? undefined,
      scopes: new Map(),
    };
    this.#served.set(key, served);
    if (!resource.namespaced || this.#namespaces === null) {
      this.#serveScope(served, undefined);
    } else {
      for (const namespace of this.#namespaces) this.#serveScope(served, namespace);
    }
  }

  #serveScope(served: Served, namespace: string | undefined): void {
    const scopeKey = namespace ?? "";
    if (served.scopes.has(scopeKey)) return;
    const informer = this.#informers.get(served.resource, {
      namespace,
      labelSelector: served.labelSelector,
    });
    const subscription = informer.subscribe((event) => this.#onEvent(served, informer, event));
    served.scopes.set(scopeKey, { informer, subscription });
  }

  #unserveScope(served: Served, namespace: string): void {
    const scope = served.scopes.get(namespace);
    if (!scope) return;
    for (const key of scope.informer.store.keys()) {
      this.#memories.forget(key);
      this.#queue.forget(key);
    }
    scope.subscription.unsubscribe();
    served.scopes.delete(namespace);
  }

  async #waitForSync(): Promise<void> {
    const informers = [...this.#served.values()].flatMap((s) =>
      [...s.scopes.values()].map((scope) => scope.informer)
    );
    await Promise.all(informers.map((i) => i.waitForSync(this.#stop.signal).catch(() => {})));
  }

  // --- Events --------------------------------------------------------------------------------

  #onEvent(served: Served, informer: Informer<KubeObject>, event: InformerEvent): void {
    if (this.#stop.signal.aborted) return;
    if (event.type === "MISSING") return this.#missing(served);
    if (!isChange(event)) return;
    const { resource } = served;
    const key = event.key;
    const object = event.object as RawBody;
    const rv = object.metadata?.resourceVersion;
    const memory = event.type === "DELETED"
      ? this.#memories.get(key)
      : this.#memories.recall(key, object.metadata?.uid);
    memory?.see(rv);
    if (memory && event.initial) memory.noticedByListing = true;
    for (const engine of this.#engines) {
      try {
        engine.onEvent?.({ key, resource, type: event.type, object, initial: event.initial });
      } catch (error) {
        logger.error("A background engine failed on an event: {error}", { error });
      }
    }
    if (this.#registry.hasHandlers(resource, "watching")) {
      this.#chainEvent(key, resource, informer, event);
    }
    if (event.type === "DELETED") {
      this.#gone(key, served, object);
      return;
    }
    this.#queue.add(key);
  }

  #chainEvent(
    key: string,
    resource: Resource,
    informer: Informer<KubeObject>,
    event: StoreChange<KubeObject>,
  ): void {
    const target = { poster: this.#poster, settings: this.#settings.posting };
    const task = () =>
      withPostingTarget(target, () =>
        processEvent(this.#env, {
          key,
          resource,
          type: event.initial ? null : event.type,
          object: event.object as RawBody,
          latest: informer.store.get(event.key) as RawBody | undefined,
          signal: this.#handlersStop.signal,
        })).then(() => {}, (error) => {
          logger.error("Event handlers of {key} failed: {error}", { key, error });
        });
    const memory = this.#memories.get(key);
    const next = memory ? memory.chain(task) : Promise.resolve().then(task);
    this.#pending.add(next);
    void next.finally(() => this.#pending.delete(next));
  }

  #gone(key: string, served: Served, object: RawBody): void {
    const resource = served.resource;
    const memory = this.#memories.get(key);
    this.#memories.forget(key);
    this.#queue.forget(key);
    if (this.#registry.hasHandlers(resource, "changing")) {
      loggerFor(this.#env, object).debug("Deleted, really deleted, and we are notified.");
    }
    const orphan = memory && { key, resource, body: object, memory };
    // With a server-side label selector, an object whose labels stop matching arrives as
    // DELETED while it still exists: a real deletion cannot end with our finalizer on it.
    const finalizer = this.#settings.persistence.finalizer;
    if (served.labelSelector && isDeletionBlocked(object, finalizer)) {
      this.#track(
        this.#releaseFinalizer(resource, object, orphan).catch((error) =>
          logger.error("Releasing the finalizer of {key} failed: {error}", { key, error })
        ),
      );
    } else if (orphan && isOrphaned(this.#env, orphan)) {
      this.#track(this.#orphan(orphan));
    }
  }

  #track(task: Promise<unknown>): void {
    this.#pending.add(task);
    void task.finally(() => this.#pending.delete(task));
  }

  /** Run the deletion handlers of an object that went without waiting for our finalizer. */
  async #orphan(orphan: Omit<OrphanInput, "signal">): Promise<void> {
    const target = { poster: this.#poster, settings: this.#settings.posting };
    await withPostingTarget(
      target,
      () => processOrphan(this.#env, { ...orphan, signal: this.#handlersStop.signal }),
    ).catch((error) => {
      logger.error("Deletion handlers of {key} failed: {error}", { key: orphan.key, error });
    });
  }

  async #releaseFinalizer(
    resource: Resource,
    object: RawBody,
    orphan: Omit<OrphanInput, "signal"> | undefined,
  ): Promise<void> {
    const { gone } = await releaseFinalizer({
      client: this.#client,
      resource,
      body: object,
      finalizer: this.#settings.persistence.finalizer,
      logger: loggerFor(this.#env, object),
    });
    // Really gone, not out of the selector: gone without our finalizer's consent.
    if (gone && orphan && isOrphaned(this.#env, orphan)) await this.#orphan(orphan);
  }

  // --- Stopping ------------------------------------------------------------------------------

  async #shutdown(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#rescanTimer);
    for (const observer of this.#observers) observer.unsubscribe();
    for (const served of this.#served.values()) {
      for (const scope of served.scopes.values()) scope.subscription.unsubscribe();
    }
    const drain = this.#settings.process.drainTimeout;
    const abortHandlers = setTimeout(() => this.#handlersStop.abort(), drain * 1000);
    // Daemons and timers are told to stop at once, while running handlers finish.
    const engines = Promise.all(this.#engines.map(async (engine) => {
      try {
        await engine.stop?.();
      } catch (error) {
        logger.error("A background engine failed to stop: {error}", { error });
      }
    }));
    try {
      await this.#queue?.shutdown({ drainTimeout: drain });
      await Promise.race([
        Promise.allSettled([...this.#pending]),
        sleepUnless(drain + 1, this.#handlersStop.signal),
      ]);
      await engines;
      await this.#rescanning;
      await this.#poster?.close({ timeout: 10 });
    } finally {
      clearTimeout(abortHandlers);
      this.#handlersStop.abort();
      await this.#informers?.stop();
      if (this.#ownClient) this.#client.close();
    }
  }
}

function literalPatterns(patterns: readonly (string | RegExp)[]): string[] {
  return patterns.filter((p): p is string => typeof p === "string" && !/[!*?,]/.test(p));
}

/**
 * Run an operator in this process until `signal` aborts (or SIGINT/SIGTERM with
 * `handleSignals`): discover and watch the resources of the registered handlers and handle
 * their objects. Resolves when the operator has stopped: watches closed, running handlers
 * finished (or aborted after `settings.process.drainTimeout`), events flushed.
 *
 * @example
 * ```ts ignore
 * import * as kopf from "jsr:@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", ({ name, logger }) => {
 *   logger.info(`Created ${name}`);
 *   return { message: "hello" };
 * });
 *
 * const controller = new AbortController();
 * await kopf.run({ namespaces: ["default"], signal: controller.signal });
 * ```
 */
export async function run(options: RunOptions = {}): Promise<void> {
  await new Operator(options).run();
}

/** {@linkcode run} with the framework's internal options (engines, a ready-made client). */
export async function runOperator(
  options: RunOptions & OperatorInternals = {},
): Promise<void> {
  await new Operator(options).run();
}
