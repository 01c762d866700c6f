/**
 * Operator settings, grouped and named as in Kopf's `OperatorSettings` (camel-cased), with our
 * additions for client-side rate limiting, watch health and bounded concurrency.
 * docs/settings.md lists every difference from Kopf.
 *
 * Every setting is acted upon, or refused: the objects reject names they do not have (a typo, or
 * Kopf's snake_case name) and values of the wrong type with a {@linkcode SettingsError} naming
 * the setting and the line that assigned it. A setting accepted and ignored
 * would be a silent lie about what the operator does.
 *
 * @module
 */

import { captureCallSite } from "../code/call_site.ts";
import { AnnotationsDiffBaseStorage, type DiffBaseStorage } from "../storage/diffbase.ts";
import { DEFAULT_FINALIZER } from "../storage/finalizers.ts";
import { type ProgressStorage, SmartProgressStorage } from "../storage/progress.ts";
import type { WebhookServerProtocol } from "../storage/reviews.ts";
import { asap, type Lifecycle } from "./lifecycles.ts";

/**
 * A setting assigned by a name that does not exist, with a value of the wrong type, or one this
 * framework does not act upon; the message names the setting and where it was assigned.
 */
export class SettingsError extends TypeError {
  override name = "SettingsError";
}

/** Kopf's settings that are named or placed differently here, with where to look instead. */
const ELSEWHERE: Readonly<Record<string, string>> = {
  "queueing.exitTimeout": "settings.process.drainTimeout",
  "networking.connectTimeout":
    "settings.networking.readTimeout and .writeTimeout (deadlines of one attempt, connecting included)",
  "networking.trustEnv":
    "nothing: Deno's fetch follows HTTP_PROXY, HTTPS_PROXY and NO_PROXY from the environment always",
};

/** Settings whose values the generic type check cannot judge, with the refusal for others. */
const CHECKS: Readonly<Record<string, (value: unknown) => string | undefined>> = {
  "admission.server": (value) =>
    value === null || typeof value === "function" ||
      (typeof value === "object" && typeof (value as { serve?: unknown }).serve === "function")
      ? undefined
      : "expects a webhook server (e.g. new kopf.WebhookServer()), a function, or null",
  "admission.managed": (value) =>
    value === null || (typeof value === "string" && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(value))
      ? undefined
      : "expects the name of the webhook configurations (a DNS subdomain, e.g. " +
        '"auto.kopf.dev") or null',
  "peering.shards": (value) =>
    value === null || value === "auto" ? undefined : `expects "auto" or null`,
};

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function where(): string {
  const site = captureCallSite();
  return site ? ` (${site.file}:${site.line})` : "";
}

/** Why `value` cannot go to `group.key` that now holds `current`; `undefined` if it can. */
function refusal(group: string, key: string, current: unknown, value: unknown): string | undefined {
  const kind = (v: unknown) => v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  const [was, is] = [kind(current), kind(value)];
  const check = CHECKS[`${group}.${key}`];
  if (check) return check(value);
  // Numbers may be null (no limit) and arrays (a range); other primitives keep their type.
  if (was === "number" && !["number", "null", "array"].includes(is)) return `expects a number`;
  if (is === "number" && Number.isNaN(value)) return "expects a number, not NaN";
  if ((was === "boolean" || was === "string") && is !== was) return `expects a ${was}`;
  return undefined;
}

/**
 * `target` behind a guard that refuses unknown names and mistyped values (see the module docs).
 * Reads go straight through; only assignments are checked.
 */
function guarded<T extends object>(target: T, group: string): T {
  const check = (key: string | symbol, value: unknown, obj: object): void => {
    const path = `settings.${group}.${String(key)}`;
    if (typeof key === "symbol" || !(key in obj)) {
      const instead = ELSEWHERE[`${group}.${String(key)}`] ??
        (typeof key === "string" && camel(key) !== key && camel(key) in obj
          ? `settings.${group}.${camel(key)}`
          : undefined);
      const hint = instead ? `; use ${instead}` : `; known: ${Object.keys(obj).join(", ")}`;
      throw new SettingsError(`${path}${where()}: no such setting${hint}.`);
    }
    const why = refusal(group, key, (obj as Record<string, unknown>)[key], value);
    if (why) throw new SettingsError(`${path}${where()}: ${why}; got ${String(value)}.`);
  };
  return new Proxy(target, {
    set(obj, key, value, receiver) {
      check(key, value, obj);
      return Reflect.set(obj, key, value, receiver);
    },
    defineProperty(obj, key, descriptor) {
      if (!(key in obj)) check(key, descriptor.value, obj);
      return Reflect.defineProperty(obj, key, descriptor);
    },
    deleteProperty(_obj, key) {
      throw new SettingsError(`settings.${group}.${String(key)}${where()}: cannot be deleted.`);
    },
  });
}

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

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "process");
  }
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

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "posting");
  }
}

/**
 * Peering between operator instances: Kopf's peering objects (`KopfPeering`/`ClusterKopfPeering`:
 * the highest priority runs, equal ones all pause; compatible with Python Kopf), and Lease leader
 * election or sharding for several replicas of one operator (docs/peering.md).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.peering.priority = 100; // Kopf's peering: operators with less pause for this one
 *   settings.peering.leaderElection = true; // and one replica at a time handles objects
 * });
 * ```
 */
export class PeeringSettings {
  /** The peering object's name (Kopf's `KopfPeering`/`ClusterKopfPeering`). */
  name = "default";
  /** Do not log keep-alives. */
  stealth = false;
  /** This instance's priority; the highest live one runs, equal ones all pause. */
  priority = 0;
  /** Seconds our peering record lives without a keep-alive. */
  lifetime = 60;
  /** Pause until the peering object exists (`--peering NAME` sets it). */
  mandatory = false;
  /** No Kopf peering at all, even if the peering CRD exists (Leases still work). */
  standalone = false;
  /** Cluster-wide (ClusterKopfPeering) rather than namespaced (KopfPeering) peering. */
  clusterwide = false;
  /**
   * One replica of the operator handles objects at a time, elected with a Lease (client-go's
   * leader election); the others keep their caches warm and take over when it goes.
   */
  leaderElection = false;
  /**
   * `"auto"`: every live replica handles a share of the objects: the 64-bit FNV-1a hash space of
   * `metadata.uid` is cut into equal slots shared out among the replicas' shard Leases, and each
   * replica watches its share with a KEP-5866 shard selector where the API server applies one
   * (`null`: no sharding; docs/peering.md).
   */
  shards: "auto" | null = null;
  /**
   * The name of the leader election's Lease, and the ring name (label value) of the shard Leases
   * (`null`: `kopf-<name>`, from {@linkcode PeeringSettings.name}: `kopf-default`). Different
   * operators in one namespace need different names.
   */
  leaseName: string | null = null;
  /**
   * The namespace of the Leases (`null`: the service account's in a pod, else the first
   * namespace served, else `default`).
   */
  leaseNamespace: string | null = null;
  /** Seconds a Lease is valid after its last renewal, as seen by the others (client-go: 15). */
  leaseDuration = 15;
  /** Seconds a holder keeps trying to renew before it gives up and stops (client-go: 10). */
  renewDeadline = 10;
  /** Seconds between attempts to acquire or renew (client-go: 2; acquiring, +0–20 % jitter). */
  retryPeriod = 2;
  /** Give the Lease up when stopping, so that another replica takes over at once. */
  releaseOnCancel = true;
  /**
   * This operator's identity in peering records and Leases (`null`: for peering Kopf's —
   * `$POD_ID`, else `user@host/<time>/<random>`; for Leases the pod name — `$POD_NAME`, else
   * `$HOSTNAME`, else the host name — plus `_` and a random suffix).
   */
  identity: string | null = null;

  /** Kopf's inverse of {@linkcode PeeringSettings.clusterwide}. */
  get namespaced(): boolean {
    return !this.clusterwide;
  }

  /** Kopf's inverse of {@linkcode PeeringSettings.clusterwide}. */
  set namespaced(value: boolean) {
    this.clusterwide = !value;
  }

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "peering");
  }
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
  /**
   * Client-side limit on a whole watch request, seconds (`null`: none): the request is closed and
   * the watch resumes from where it stood, as when the server ends it.
   */
  clientTimeout: number | null = null;
  /**
   * Deadline for a watch request's response headers, seconds (`null`:
   * `networking.watchOpenTimeout`).
   */
  connectTimeout: number | null = null;
  /**
   * The pause before re-opening a failed watch, seconds: the first one; the next ones double up
   * to 30 s (client-go's reflector; Kopf's default is a fixed 0.1 s).
   */
  reconnectBackoff = 0.8;
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

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "watching");
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
  /** Throttling delays (seconds) after framework errors on an object, the last one repeats. */
  errorDelays: readonly number[] = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610];

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "queueing");
  }
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

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "scanning");
  }
}

/**
 * The Prometheus metrics endpoint (`kopf run --metrics URL`, `KOPF_RUN_METRICS`, or
 * `metrics` in `kopf.run()`'s options, which win over this setting).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * settings.metrics.endpoint = "http://0.0.0.0:9090/metrics"; // served while the operator runs
 * ```
 */
export class MetricsSettings {
  /**
   * Serve the metrics at this URL (`http://host:port/path`); `null`: no metrics are collected.
   * The same host and port as the liveness URL share one server.
   */
  endpoint: string | null = null;

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "metrics");
  }
}

/**
 * Admission webhooks (`kopf.on.validate`, `kopf.on.mutate`; docs/admission.md).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookServer({ addr: "127.0.0.1", port: 9443 });
 *   settings.admission.managed = "auto.kopf.dev"; // the operator keeps the configurations
 * });
 * ```
 */
export class AdmissionSettings {
  /**
   * The webhook server or tunnel that receives the admission requests (`null`: none; with
   * admission handlers registered, the operator then refuses to start). `kopf run
   * --webhook-server URL` sets it before the startup handlers run.
   */
  server: WebhookServerProtocol | null = null;
  /**
   * The name of the `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration` the
   * operator creates and keeps in sync with its handlers and its server (`null`: they are not
   * managed, e.g. created by the deployment). Their webhooks are removed at graceful exit,
   * except the handlers' marked `persistent`.
   */
  managed: string | null = null;

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "admission");
  }
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
 * settings.execution.lifecycle = kopf.lifecycles.shuffled; // due handlers in random order
 * ```
 */
export class ExecutionSettings {
  /** Seconds before retrying a handler after an arbitrary error. */
  defaultBackoff = 60;
  /**
   * Which of the due handlers run, and in which order, round after round within one cycle
   * (Kopf's cycles, without a write in between). Default {@linkcode asap}, Kopf's: one at a time,
   * the least retried first, in declared order — each sees the results and patches of those
   * before it (Kopf's "communicate through status" pattern), and a parent is re-invoked once per
   * sub-handler, as in Kopf. Every cycle still ends in one `/status` write and one object write.
   */
  lifecycle: Lifecycle = asap;
  /**
   * Run the handlers a round picks at the same time instead of one after another: faster for
   * independent slow handlers (with `lifecycle = allAtOnce`: all due handlers at once), but the
   * handlers of one round do not see each other's results and patches.
   */
  concurrent = false;
  /**
   * Handler calls in progress at most, over all objects (`null`: no bound beyond
   * `queueing.workerLimit` objects at a time). Kopf's `max_workers` bounds its thread pool of
   * synchronous handlers; here it bounds every handler, timer and index function call, since
   * all share one event loop. Daemons run outside it (they run for the object's lifetime), and
   * so do operator activities. A call waiting for a slot has not started: its timeout and
   * runtime do not count yet. Sub-handlers run in their parent's slot.
   */
  maxWorkers: number | null = null;
  /**
   * Seconds a handler may block the event loop (synchronous code: every other object waits)
   * before a WARNING names it, with the remedy (`null`: never warn). Kopf runs synchronous
   * handlers in threads; here there is one event loop.
   */
  stallThreshold: number | null = 1;

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "execution");
  }
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

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "background");
  }
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
  /**
   * Retries of failed API requests (retriable errors: 429, 5xx of reads, connection failures):
   * the count is the number of retries, each value the ceiling of that retry's delay in seconds
   * (the delay is drawn below it, so that many clients failing at once do not retry in step).
   */
  errorBackoffs: readonly number[] = [1, 1, 2, 3, 5, 8, 13, 21];
  /** Always wait exactly the server's `Retry-After` (else the longer of it and the backoff). */
  enforceRetryAfter = false;
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

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "networking");
  }
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

  /** Refuses unknown names and mistyped values (see the module docs). */
  constructor() {
    return guarded(this, "persistence");
  }
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
  /** The Prometheus metrics endpoint. */
  metrics: MetricsSettings = new MetricsSettings();

  /** Refuses unknown groups and replacing a group (its fields are set one by one). */
  constructor() {
    return new Proxy(this, {
      set(_obj, key) {
        const known = typeof key === "string" && key in _obj;
        throw new SettingsError(
          `settings.${String(key)}${where()}: ` +
            (known ? "set its fields, not the group." : "no such group of settings."),
        );
      },
    });
  }
}
