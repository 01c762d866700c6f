/**
 * Operator settings, grouped and named as in Kopf's `OperatorSettings` (camel-cased), with our
 * additions for client-side rate limiting, watch health and bounded concurrency.
 * docs/settings.md lists every difference from Kopf.
 *
 * @module
 */

import { AnnotationsDiffBaseStorage, type DiffBaseStorage } from "../storage/diffbase.ts";
import { DEFAULT_FINALIZER } from "../storage/finalizers.ts";
import { type ProgressStorage, SmartProgressStorage } from "../storage/progress.ts";
import { allAtOnce, type Lifecycle } from "./lifecycles.ts";

/**
 * Process-level behaviour.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.process.drainTimeout = 10; // running handlers get 10 s when the operator stops
 * settings.process.ultimateExitingTimeout = 60;
 * ```
 */
export class ProcessSettings {
  /** Seconds after which a hung graceful exit is forced (`null`: never). */
  ultimateExitingTimeout: number | null = 600;
  /**
   * Seconds that running handlers may take to finish when the operator stops; then their
   * signals are aborted and the operator stops waiting for them.
   */
  drainTimeout = 30;
}

/**
 * Kubernetes Events posted about objects.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.posting.level = "warning"; // kopf.info() posts nothing; kopf.warn() still does
 * settings.posting.reportingInstance = "my-operator-0"; // e.g. the pod name
 * ```
 */
export class PostingSettings {
  /** Post events at all (`kopf.event()`, `kopf.info()`, …). */
  enabled = true;
  /** Also post handler log messages as events (off by default, as in Kopf ≥ 1.44). */
  loggers = false;
  /** Minimal level of posted events. */
  level: "debug" | "info" | "warning" | "error" = "info";
  /** `reportingComponent` / `source.component` of events. */
  reportingComponent = "kopf";
  /** `reportingInstance` of events. */
  reportingInstance = "dev";
  /** `generateName` prefix of events. */
  eventNamePrefix = "kopf-event-";
}

/**
 * Peering between operator instances (Kopf's peering objects).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.peering.standalone = true; // peering is not implemented: every operator is standalone
 * ```
 */
export class PeeringSettings {
  /** The peering object's name. */
  name = "default";
  /** Do not log keep-alives. */
  stealth = false;
  /** This instance's priority; the highest live one runs. */
  priority = 0;
  /** Seconds our peering record lives without a keep-alive. */
  lifetime = 60;
  /** Pause until the peering object exists. */
  mandatory = false;
  /** Disable peering. */
  standalone = false;
  /** Cluster-wide (ClusterKopfPeering) rather than namespaced (KopfPeering) peering. */
  clusterwide = false;
}

/**
 * List/watch behaviour.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.watching.serverTimeout = [60, 120]; // shorter watch requests, spread over a minute
 * settings.watching.chunkSize = 100; // smaller pages when (re)listing
 * ```
 */
export class WatchingSettings {
  /**
   * `timeoutSeconds` asked from the server per watch request: a number, or `[min, max]` to
   * pick uniformly per request (client-go's spreading of reconnects), or `null` for none.
   */
  serverTimeout: number | readonly [number, number] | null = [300, 600];
  /** Client-side limit on a whole watch request, seconds (`null`: none). */
  clientTimeout: number | null = null;
  /** Connect timeout for watch requests, seconds (`null`: `networking.connectTimeout`). */
  connectTimeout: number | null = null;
  /** Pause between watch reconnects, seconds (the first one; later ones back off). */
  reconnectBackoff = 0.1;
  /**
   * Reconnect a watch that brought no event or bookmark for this many seconds. `null` (the
   * default): only a watch silent 30 s past its own `serverTimeout`, since the client's health
   * check (`networking.readIdleTimeout`) finds dead connections and a silent watch on a live
   * one is a quiet resource; 90 s for `node:https` (skip-verify) clusters, which have no such
   * check per watch.
   */
  idleTimeout: number | null = null;
  /** Page size of (re)lists (`null`: unpaginated, as Kopf). */
  chunkSize: number | null = 500;

  /** Kopf's name of {@linkcode idleTimeout}. */
  get inactivityTimeout(): number | null {
    return this.idleTimeout;
  }

  /** Kopf's name of {@linkcode idleTimeout}. */
  set inactivityTimeout(value: number | null) {
    this.idleTimeout = value;
  }
}

/**
 * Per-object work queue.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.queueing.workerLimit = 20; // at most 20 objects handled at once
 * ```
 */
export class QueueingSettings {
  /** Objects processed concurrently (`null`: unbounded, as Kopf's default — not recommended). */
  workerLimit: number | null = 100;
  /** Seconds an idle per-object worker stays around. */
  idleTimeout = 5;
  /** Seconds to drain the queue on exit. */
  exitTimeout = 2;
  /** Throttling delays (seconds) after framework errors on an object, the last one repeats. */
  errorDelays: readonly number[] = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610];
}

/**
 * Discovery of resources and namespaces.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.scanning.disabled = true; // no watching of CRDs and namespaces for changes
 * ```
 */
export class ScanningSettings {
  /** Do not watch CRDs and namespaces for changes. */
  disabled = false;
}

/**
 * Admission webhooks.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.admission.managed = null; // no webhook configurations are managed
 * ```
 */
export class AdmissionSettings {
  /** The webhook server or tunnel (an engine object; `null`: no webhooks served). */
  server: unknown = null;
  /** Name of the webhook configurations to manage (`null`: unmanaged). */
  managed: string | null = null;
}

/**
 * Handler execution.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.execution.defaultBackoff = 10; // retry failed handlers after 10 s, not 60 s
 * settings.execution.lifecycle = kopf.lifecycles.asap; // Kopf's pacing: one handler per write
 * ```
 */
export class ExecutionSettings {
  /** Seconds before retrying a handler after an arbitrary error. */
  defaultBackoff = 60;
  /**
   * Which due handlers run per cycle. Default {@linkcode allAtOnce} (one write per cycle);
   * Kopf's default is `asap` (one handler, hence one write, per cycle).
   */
  lifecycle: Lifecycle = allAtOnce;
}

/**
 * Daemons and timers.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.background.cancellationPolling = 5; // check stopping daemons every 5 s
 * ```
 */
export class BackgroundSettings {
  /** Seconds between checks whether a stopping daemon has exited. */
  cancellationPolling = 60;
  /** Seconds to wait for a daemon to exit instantly on stop (`null`: see the cycles). */
  instantExitTimeout: number | null = null;
  /** Zero-time event-loop cycles to wait for a daemon to exit instantly. */
  instantExitZeroTimeCycles: number | null = 10;
}

/**
 * API requests.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.networking.qps = 20; // start at 20 requests per second …
 * settings.networking.maxQps = 20; // … and stay there
 * settings.networking.maxInFlight = 8;
 * ```
 */
export class NetworkingSettings {
  /** Whole-request timeout for non-watch requests, retries included, seconds. */
  requestTimeout: number | null = 300;
  /** Deadline of one attempt of a read (GET; the API server's own timeout is 60 s), seconds. */
  readTimeout = 60;
  /** Deadline of one attempt of a write (POST, PUT, PATCH, DELETE), seconds. */
  writeTimeout = 75;
  /** Deadline for the response headers of a watch request, seconds. */
  watchOpenTimeout = 30;
  /**
   * Silence on a connection with requests or watches in flight before it is probed, seconds
   * (client-go's `ReadIdleTimeout`; `0`: no health check).
   */
  readIdleTimeout = 30;
  /** How long a probe may take before the connection is dead and replaced, seconds. */
  pingTimeout = 15;
  /** Connect timeout, seconds (`null`: none beyond `requestTimeout`). */
  connectTimeout: number | null = null;
  /** Retry delays (seconds) for retriable API errors; the count is the number of retries. */
  errorBackoffs: readonly number[] = [1, 1, 2, 3, 5, 8, 13, 21];
  /** Always wait exactly the server's `Retry-After` (else the longer of it and the backoff). */
  enforceRetryAfter = false;
  /** Honour proxy environment variables. */
  trustEnv = false;
  /**
   * Client-side request rate limit, requests per second, to start with and at the least (0:
   * off). The rate doubles every half second in which requests wait and the API server answers
   * without throttling, up to {@linkcode NetworkingSettings.maxQps}; it halves on a 429 (or a
   * 503 with `Retry-After`), and is back at `qps` once demand stays below it for 30 s.
   */
  qps = 50;
  /** Highest rate the limit adapts up to (set it to `qps` for a fixed rate). */
  maxQps = 1000;
  /** Token bucket size of the rate limit. */
  burst = 100;
  /** Maximum concurrent non-watch requests (0: unbounded). Watches never count. */
  maxInFlight = 32;
}

/**
 * Where and how state is kept on objects.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.persistence.finalizer = "my-op.example.com/finalizer";
 * settings.persistence.progressStorage = new kopf.AnnotationsProgressStorage({
 *   prefix: "my-op.example.com",
 * });
 * settings.persistence.diffbaseStorage = new kopf.AnnotationsDiffBaseStorage({
 *   prefix: "my-op.example.com",
 * });
 * ```
 */
export class PersistenceSettings {
  /** Our finalizer. */
  finalizer: string = DEFAULT_FINALIZER;
  /** Where handlers' progress is kept. */
  progressStorage: ProgressStorage = new SmartProgressStorage();
  /** Where the last handled essence is kept. */
  diffbaseStorage: DiffBaseStorage = new AnnotationsDiffBaseStorage();
  /**
   * Seconds to wait for our own patch to come back through the watch before running
   * state-dependent handlers on a possibly stale object (0: do not wait).
   */
  consistencyTimeout = 5;
  /**
   * Add the finalizer in a write of its own before any handler runs (Kopf's order, the default),
   * so that an object whose creation handlers have started always gets its deletion handlers,
   * even when it is deleted while they run or the operator dies meanwhile. `false` puts the
   * finalizer in the same write as the handlers' first outcome: one write less per object with
   * a deletion handler, but an object deleted before that write is released without its deletion
   * handlers (docs/engine.md). Only resources that need a finalizer (a non-optional deletion
   * handler, a daemon asking for cleanup time) get one at all.
   */
  finalizerFirst = true;
}

/**
 * All operator settings. Mutate them in an `on.startup` handler or pass an instance to the
 * operator.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.persistence.finalizer = "my-op.example.com/finalizer";
 *   settings.networking.qps = 20;
 *   settings.execution.lifecycle = kopf.lifecycles.asap;
 * });
 *
 * // Or, when embedding the operator:
 * const settings = new kopf.Settings();
 * settings.networking.qps = 20;
 * const options: kopf.RunOptions = { settings, namespaces: ["default"] }; // for kopf.run()
 * ```
 */
export class Settings {
  /** Process-level behaviour. */
  process: ProcessSettings = new ProcessSettings();
  /** Kubernetes Events. */
  posting: PostingSettings = new PostingSettings();
  /** Peering. */
  peering: PeeringSettings = new PeeringSettings();
  /** Watching. */
  watching: WatchingSettings = new WatchingSettings();
  /** Queueing. */
  queueing: QueueingSettings = new QueueingSettings();
  /** Scanning. */
  scanning: ScanningSettings = new ScanningSettings();
  /** Admission webhooks. */
  admission: AdmissionSettings = new AdmissionSettings();
  /** Execution. */
  execution: ExecutionSettings = new ExecutionSettings();
  /** Background tasks (daemons, timers). */
  background: BackgroundSettings = new BackgroundSettings();
  /** Networking. */
  networking: NetworkingSettings = new NetworkingSettings();
  /** Persistence. */
  persistence: PersistenceSettings = new PersistenceSettings();
}
