/**
 * The operator loop, `kopf.run()` (Kopf's `running`): startup activities, then the client, the
 * Event poster and the informers; background engines started; what to serve observed
 * (`observation.ts`), every event dispatched (`dispatch.ts`), every queued key processed
 * (`processing.ts`); and the graceful stop: watches closed, daemons and timers stopped, running
 * handlers drained, Events flushed, cleanup activities — bounded by the ultimate exit timer.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { contain } from "../actions/containment.ts";
import { objectLogger } from "../actions/loggers.ts";
import { type PostingTarget, registerPostingTarget } from "../actions/posting.ts";
import { Informers } from "../cache/informer.ts";
import { ActivityError, runActivity } from "../engines/activities.ts";
import { loginConfig } from "../engines/login.ts";
import type { BackgroundEngine, OperatorHandle, ProcessingGate } from "../handling/contracts.ts";
import type { CycleEnvironment } from "../handling/environment.ts";
import { Memories } from "../handling/memories.ts";
import { REQUEST_BACKOFF } from "../kube/backoff.ts";
import { KubeClient } from "../kube/client.ts";
import { Discovery } from "../kube/discovery.ts";
import { Api } from "../kits/api.ts";
import { EventPoster } from "../kube/events.ts";
import { sleepUnless } from "../kube/time.ts";
import type { ObjectQueue } from "../queue/object_queue.ts";
import type { KubeObject, ObjectKey } from "../kube/resource.ts";
import type { Memo } from "../registry/context.ts";
import { defaultRegistry, type Registry } from "../registry/registry.ts";
import { Settings } from "../settings/settings.ts";
import { Dispatcher } from "./dispatch.ts";
import { backgroundEngines } from "./engines.ts";
import { Observation } from "./observation.ts";
import { objectQueue, type Processing } from "./processing.ts";
import { processingGate } from "../peering/gates.ts";
import { armUltimateExit, handleSignals } from "./shutdown.ts";

const logger = getLogger(["kopf", "operator"]);

/**
 * Options of {@linkcode run}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.RunOptions = {
 *   namespaces: ["team-*", "!team-test"],
 *   liveness: "http://0.0.0.0:8080/healthz",
 *   signal: AbortSignal.timeout(3_600_000), // stop after an hour
 * };
 * await kopf.run(options);
 * ```
 */
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
  /**
   * Called once every served resource is listed and watched, with the operator's {@linkcode Api}
   * (for an embedding application's own calls over the operator's connection and cache).
   */
  ready?: (operator: { readonly api: Api }) => void | Promise<void>;
  /** Serve the health endpoint (probes, readiness) at this URL, e.g. `http://0.0.0.0:8080/healthz`. */
  liveness?: string;
  /**
   * Serve Prometheus metrics at this URL, e.g. `http://0.0.0.0:9090/metrics` (default:
   * `settings.metrics.endpoint`); the liveness URL's host and port share its server.
   */
  metrics?: string;
  /** No Kopf peering (sets `settings.peering.standalone`; `--standalone`). */
  standalone?: boolean;
  /** Kopf's peering priority (sets `settings.peering.priority`; `--priority`, `--dev`: 666). */
  priority?: number;
  /**
   * The Kopf peering object's name; peering is then mandatory: paused while it is absent (sets
   * `settings.peering.name` and `.mandatory`; `--peering`).
   */
  peering?: string;
  /**
   * One replica handles objects at a time, elected with a Lease (sets
   * `settings.peering.leaderElection`; docs/peering.md).
   */
  leaderElection?: boolean;
  /** The Lease's namespace (sets `settings.peering.leaseNamespace`). */
  leaseNamespace?: string;
  /**
   * `"auto"`: every live replica handles a share of the objects (sets
   * `settings.peering.shards`; docs/peering.md).
   */
  shards?: "auto";
}

/** What the framework's own tests and benchmarks may pass besides {@linkcode RunOptions}. */
export interface OperatorInternals {
  /** A client to use instead of connecting (e.g. to read its metrics); not closed on stop. */
  readonly client?: KubeClient;
}

/** What exists once the operator is connected. */
interface Connected {
  readonly client: KubeClient;
  readonly api: Api;
  readonly poster: EventPoster;
  readonly informers: Informers;
  readonly env: CycleEnvironment;
  readonly posting: PostingTarget;
  readonly queue: ObjectQueue;
  readonly processing: Processing;
  readonly observation: Observation;
  readonly dispatcher: Dispatcher;
  readonly gate: ProcessingGate | undefined;
}

/** One running operator. */
class Operator {
  readonly #options: RunOptions;
  readonly #internals: OperatorInternals;
  readonly #settings: Settings;
  readonly #registry: Registry;
  readonly #memo: Memo;
  readonly #memories: Memories;
  readonly #engines: readonly BackgroundEngine[];
  readonly #stop = new AbortController();
  /** Why an engine stopped the operator (`OperatorHandle.fail`): the run rejects with it. */
  #failure: Error | undefined;
  readonly #handlersStop = new AbortController();
  #connected: Connected | undefined;

  constructor(options: RunOptions, internals: OperatorInternals = {}) {
    this.#options = options;
    this.#internals = internals;
    this.#settings = options.settings ?? new Settings();
    this.#registry = options.registry ?? defaultRegistry();
    this.#memo = options.memo ?? {};
    this.#memories = new Memories(this.#memo);
    // Indexes, daemons and timers, and the health endpoint, as the registry and options need.
    this.#engines = backgroundEngines({
      registry: this.#registry,
      memo: this.#memo,
      liveness: options.liveness,
      metrics: options.metrics ?? this.#settings.metrics.endpoint ?? undefined,
      logger: (resource, body) =>
        objectLogger(body, {
          resource,
          posting: { settings: this.#settings.posting, poster: this.#connected?.poster },
        }),
    }, this.#settings);
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
      const connected = this.#connected = await this.#connect();
      unregister = registerPostingTarget(connected.posting);
      for (const engine of this.#engines) await engine.start?.(this.#handle(connected));
      await connected.gate?.start({
        client: connected.client,
        settings: this.#settings,
        namespaces: this.#options.namespaces,
        signal: this.#stop.signal,
        changed: () => this.#regate(connected),
      });
      await connected.observation.start();
      if (!this.#stop.signal.aborted) await connected.observation.synced();
      if (!this.#stop.signal.aborted) await this.#options.ready?.({ api: connected.api });
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
    if (this.#failure) throw this.#failure;
  }

  /**
   * The gate opened or closed: in-flight cycles of objects no longer admitted are signalled and
   * their daemons and timers stopped; every admitted cached object is queued (its daemons and
   * timers spawned), as if just listed. Resolves when the handling of those no longer admitted
   * has ended; then the informers watch what the gate may admit next (sharding).
   */
  async #regate(connected: Connected): Promise<void> {
    const { gate, processing, queue, observation } = connected;
    if (!gate || this.#stop.signal.aborted) return;
    const ending: Promise<unknown>[] = [processing.revoke()];
    const handling = this.#engines.filter((engine) => engine.handles);
    for (const { key, resource, object } of observation.cached()) {
      const admitted = gate.admits(key, object);
      for (const engine of handling) {
        try {
          if (admitted) {
            engine.onEvent?.({ key, resource, type: "MODIFIED", object, initial: true });
          } else ending.push(Promise.resolve(engine.release?.(key, resource)));
        } catch (error) {
          logger.error("A background engine failed on a hand-over: {error}", { error });
        }
      }
      if (admitted) queue.add(key);
    }
    await Promise.allSettled(ending);
    observation.rescope(gate.watchSelector?.());
  }

  #indices(): Readonly<Record<string, unknown>> {
    return Object.assign({}, ...this.#engines.map((e) => e.indices?.() ?? {}));
  }

  /** Run an operator activity (startup, cleanup) if it has handlers; a failure throws. */
  async #activity(activity: "startup" | "cleanup"): Promise<void> {
    if (!this.#registry.activityHandlers(activity).length) return;
    try {
      await runActivity({
        registry: this.#registry,
        activity,
        settings: this.#settings,
        memo: this.#memo,
        indices: this.#indices(),
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

  async #connect(): Promise<Connected> {
    const settings = this.#settings;
    const { networking, watching, posting } = settings;
    const clientOptions = {
      qps: networking.qps,
      maxQps: networking.maxQps,
      burst: networking.burst,
      maxInFlight: networking.maxInFlight,
      timeoutMs: networking.requestTimeout === null ? undefined : networking.requestTimeout * 1000,
      readTimeoutMs: networking.readTimeout * 1000,
      writeTimeoutMs: networking.writeTimeout * 1000,
      watchTimeoutMs: (watching.connectTimeout ?? networking.watchOpenTimeout) * 1000,
      readIdleTimeoutMs: networking.readIdleTimeout * 1000,
      pingTimeoutMs: networking.pingTimeout * 1000,
      retries: networking.errorBackoffs.length,
      backoff: { ...REQUEST_BACKOFF, stepsMs: networking.errorBackoffs.map((s) => s * 1000) },
      enforceRetryAfter: networking.enforceRetryAfter,
    };
    // With kopf.on.login handlers, their credentials (refreshed on 401 and on expiration).
    const login = await loginConfig({
      registry: this.#registry,
      settings,
      memo: this.#memo,
      indices: this.#indices(),
      signal: this.#stop.signal,
    });
    const client = this.#internals.client ??
      (login ? new KubeClient(login, clientOptions) : await KubeClient.connect({
        kubeconfig: this.#options.kubeconfig,
        context: this.#options.context,
        ...clientOptions,
      }));
    const poster = new EventPoster(client, {
      reportingComponent: posting.reportingComponent,
      reportingInstance: posting.reportingInstance,
      eventNamePrefix: posting.eventNamePrefix,
    });
    const serverTimeout = watching.serverTimeout;
    const informers = new Informers(client, {
      pageSize: watching.chunkSize ?? undefined,
      idleTimeoutMs: watching.idleTimeout === null ? undefined : watching.idleTimeout * 1000,
      clientTimeoutMs: watching.clientTimeout === null ? undefined : watching.clientTimeout * 1000,
      backoff: { initialMs: watching.reconnectBackoff * 1000 },
      serverTimeoutSeconds: serverTimeout === null
        ? undefined
        : typeof serverTimeout === "number"
        ? [serverTimeout, serverTimeout]
        : serverTimeout,
    });
    const discovery = new Discovery(client);
    const api = new Api({ client, discovery, informers });
    const env: CycleEnvironment = {
      client,
      api,
      registry: this.#registry,
      settings,
      memories: this.#memories,
      poster,
      indices: () => this.#indices(),
      whenReady: async () => {
        for (const engine of this.#engines) await engine.whenReady?.();
      },
      engines: this.#engines.filter((e) => typeof e.cycle === "function"),
    };
    const target: PostingTarget = { poster, settings: posting };
    // The three stages refer to each other (events → queue → worker → the observed caches):
    // each calls the others only once the operator runs, after all three exist.
    // Peering, if configured, decides what this operator handles (caches stay warm regardless).
    if (this.#options.standalone) settings.peering.standalone = true;
    if (this.#options.priority !== undefined) settings.peering.priority = this.#options.priority;
    if (this.#options.peering) {
      settings.peering.name = this.#options.peering;
      settings.peering.mandatory = true;
    }
    if (this.#options.leaderElection) settings.peering.leaderElection = true;
    if (this.#options.shards) settings.peering.shards = this.#options.shards;
    if (this.#options.leaseNamespace) {
      settings.peering.leaseNamespace = this.#options.leaseNamespace;
    }
    const gate = processingGate(settings);
    const admits = gate &&
      ((key: ObjectKey, object: KubeObject | undefined) => gate.admits(key, object));
    const processing = objectQueue({
      env,
      posting: target,
      locate: (key) => observation.locate(key),
      admits,
      engines: this.#engines,
    });
    const queue = processing.queue;
    const dispatcher = new Dispatcher({
      env,
      client,
      engines: this.#engines,
      queue,
      posting: target,
      missing: (served) => observation.missing(served),
      handlersSignal: this.#handlersStop.signal,
      admits,
    });
    const observation = new Observation({
      registry: this.#registry,
      settings,
      client,
      informers,
      discovery,
      signal: this.#stop.signal,
      namespaces: this.#options.namespaces,
      clusterwide: this.#options.clusterwide,
      onEvent: (served, informer, event) => dispatcher.dispatch(served, informer, event),
      onDropped: (key) => {
        this.#memories.forget(key);
        queue.forget(key);
      },
    });
    return {
      client,
      api,
      poster,
      informers,
      env,
      posting: target,
      queue,
      processing,
      observation,
      dispatcher,
      gate,
    };
  }

  #handle(connected: Connected): OperatorHandle {
    const { queue, poster } = connected;
    const concurrency = this.#settings.queueing.workerLimit ?? Infinity;
    return {
      client: connected.client,
      settings: this.#settings,
      registry: this.#registry,
      memories: this.#memories,
      informers: connected.informers,
      api: connected.api,
      gate: connected.gate,
      signal: this.#stop.signal,
      requeue: (key, delaySeconds) =>
        delaySeconds ? queue.addAfter(key, delaySeconds) : queue.add(key),
      fail: (error) => {
        this.#failure ??= error;
        this.#stop.abort();
      },
      queue: {
        name: "objects",
        get size() {
          return queue.size;
        },
        get delayed() {
          return queue.delayed;
        },
        get inFlight() {
          return queue.inFlight;
        },
        concurrency,
        get counters() {
          return queue.counters;
        },
        runningSeconds: () => queue.runningSeconds(),
      },
      events: () => poster.stats,
    };
  }

  async #shutdown(): Promise<void> {
    this.#stop.abort();
    const connected = this.#connected;
    connected?.dispatcher.stop();
    const observed = connected?.observation.stop();
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
      await connected?.queue.shutdown({ drainTimeout: drain });
      await Promise.race([
        Promise.allSettled(connected?.dispatcher.pending ?? []),
        sleepUnless(drain + 1, this.#handlersStop.signal),
      ]);
      await engines;
      await observed;
      await connected?.poster.close({ timeout: 10 });
    } finally {
      clearTimeout(abortHandlers);
      this.#handlersStop.abort();
      // Handling has drained: the Lease may go to the next replica now.
      await Promise.resolve(connected?.gate?.stop()).catch((error) =>
        logger.error("Peering failed to stop: {error}", { error })
      );
      await connected?.informers.stop();
      if (connected && connected.client !== this.#internals.client) connected.client.close();
    }
  }
}

/**
 * Run an operator in this process until `signal` aborts (or SIGINT/SIGTERM with
 * `handleSignals`): discover and watch the resources of the registered handlers and handle
 * their objects. Resolves when the operator has stopped: watches closed, running handlers
 * finished (or aborted after `settings.process.drainTimeout`), events flushed.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function createFn({ name, logger }) {
 *   logger.info(`Created ${name}`);
 *   return { message: "hello" };
 * });
 *
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGTERM", () => controller.abort());
 * await kopf.run({ namespaces: ["default"], signal: controller.signal });
 * ```
 */
export async function run(options: RunOptions = {}): Promise<void> {
  await new Operator(options).run();
}

/** {@linkcode run} with a ready-made client (the framework's tests and benchmarks). */
export async function runOperator(
  options: RunOptions,
  internals: OperatorInternals,
): Promise<void> {
  await new Operator(options, internals).run();
}
