/**
 * The operator's metrics: controller-runtime's and client-go's names and labels (so that existing
 * dashboards and alerts work), and Kopf's own. Most are read at scrape time from the stats that
 * exist anyway (the client's, the informers', the queue's, the Event poster's); counters and
 * histograms are kept only where nothing counts already: requests by code and method jointly
 * (the client's observer), queue wait and work times (the queue's observer), handling cycles
 * (the reactor's cycle listener) and handler attempts (the one execution path's listener).
 *
 * | family | labels | from |
 * |---|---|---|
 * | `controller_runtime_reconcile_total` | controller, result | cycles |
 * | `controller_runtime_reconcile_errors_total` | controller | cycles |
 * | `controller_runtime_reconcile_time_seconds` | controller | cycles |
 * | `controller_runtime_max_concurrent_reconciles`, `controller_runtime_active_workers` | controller | queue |
 * | `workqueue_depth`, `workqueue_adds_total`, `workqueue_retries_total` | name | queue |
 * | `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds` | name | queue observer |
 * | `workqueue_unfinished_work_seconds`, `workqueue_longest_running_processor_seconds` | name | queue |
 * | `rest_client_requests_total` | code, method, host | client observer |
 * | `rest_client_request_duration_seconds` | verb, host | client observer |
 * | `kopf_handler_runs_total` | handler, kind, outcome | handler attempts |
 * | `kopf_handler_retries_total`, `kopf_handler_duration_seconds` | handler | handler attempts |
 * | `kopf_watch_*`, `kopf_cached_objects` | resource, namespace | informers |
 * | `kopf_client_*` | — | client |
 * | `kopf_events_posted_total`, `kopf_events_dropped_total` | (reason) | Event poster |
 * | `kopf_index_size` | index | indexes |
 * | `kopf_daemons_running`, `kopf_daemon_objects` | — | daemons and timers |
 * | `kopf_patch_loop_suspects`, `kopf_patch_loop_suspects_total` | (controller) | cycles |
 * | `leader_election_master_status` | name | the peering gate (Lease leader election) |
 *
 * The operator has one object queue for all its resources: the `workqueue_*` families and the
 * worker gauges carry its name (`objects`) where controller-runtime has one queue per controller;
 * the reconcile families carry the resource (`plural.group`) as controller-runtime's `controller`.
 *
 * @module
 */

import { type ExecutionRecord, listenToExecutions } from "../actions/execution.ts";
import type { CycleRecord, OperatorHandle } from "../handling/contracts.ts";
import type { RequestAttempt } from "../kube/client.ts";
import type { Resource } from "../kube/resource.ts";
import type { QueueObserver } from "../queue/object_queue.ts";
import { type CounterChild, type HistogramChild, Registry } from "./registry.ts";

/** controller-runtime's reconcile-time buckets (seconds). */
const RECONCILE_BUCKETS = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.15,
  0.2,
  0.25,
  0.3,
  0.35,
  0.4,
  0.45,
  0.5,
  0.6,
  0.7,
  0.8,
  0.9,
  1,
  1.25,
  1.5,
  1.75,
  2,
  2.5,
  3,
  3.5,
  4,
  4.5,
  5,
  6,
  7,
  8,
  9,
  10,
  15,
  20,
  25,
  30,
  40,
  50,
  60,
];
/** client-go's workqueue buckets: 1 ns × 10ⁿ, n = 0…9 (seconds). */
const WORKQUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10];
/** client-go's request latency buckets (seconds). */
const REQUEST_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];
/** Handler durations: from a quick in-memory change to a long external call (seconds). */
const HANDLER_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Cycles in a row that wrote to their object and asked for nothing later after which the object
 * is a patch-loop suspect. A normal change takes two or three (our finalizer, the handlers'
 * results, the echo of our own write, which writes nothing); retries ask to run later and do not
 * count; a handler whose writes trigger itself again never stops.
 */
export const PATCH_LOOP_STREAK = 10;
/** A streak not continued for this long is forgotten (the object was left alone, or is gone). */
const STREAK_TTL_MS = 5 * 60_000;

/** A handler attempt's outcome as the metrics name it. */
export type HandlerOutcome = "success" | "temporary" | "permanent" | "timeout" | "cancelled";

/** The outcome of a handler attempt. */
export function outcomeOf(record: ExecutionRecord): HandlerOutcome {
  const { outcome } = record;
  if (outcome.cancelled) return "cancelled";
  if (!outcome.final) return "temporary";
  if (!outcome.error) return "success";
  return outcome.error.name === "HandlerTimeoutError" ? "timeout" : "permanent";
}

/** controller-runtime's `controller` label of a resource: `plural.group` (`plural` for core). */
export function controllerOf(resource: Pick<Resource, "plural" | "group">): string {
  return resource.group ? `${resource.plural}.${resource.group}` : resource.plural;
}

/** What the collectors read besides the operator handle. */
export interface CollectorOptions {
  /** The indexes by id (their sizes), if the operator has any. */
  readonly indices?: () => Readonly<Record<string, unknown>>;
  /** The daemons' and timers' counters, if the operator has any. */
  readonly background?: () => { readonly objects: number; readonly running: number } | undefined;
}

/**
 * The operator's metrics registry, fed once the operator runs ({@linkcode OperatorMetrics.attach})
 * and detached when it stops.
 *
 * @example
 * ```ts
 * import { OperatorMetrics } from "./collectors.ts";
 *
 * const metrics = new OperatorMetrics();
 * metrics.expose(); // "" until attached to a running operator's handle
 * ```
 */
export class OperatorMetrics {
  /** The families. */
  readonly registry = new Registry();
  readonly #options: CollectorOptions;
  readonly #detach: (() => void)[] = [];
  #handle: OperatorHandle | undefined;

  readonly #reconciles = this.registry.counter({
    name: "controller_runtime_reconcile_total",
    help: "Total number of reconciliations per controller",
    labelNames: ["controller", "result"],
  });
  readonly #reconcileErrors = this.registry.counter({
    name: "controller_runtime_reconcile_errors_total",
    help: "Total number of reconciliation errors per controller",
    labelNames: ["controller"],
  });
  readonly #reconcileTime = this.registry.histogram({
    name: "controller_runtime_reconcile_time_seconds",
    help: "Length of time per reconciliation per controller",
    labelNames: ["controller"],
    buckets: RECONCILE_BUCKETS,
  });
  readonly #queueWait = this.registry.histogram({
    name: "workqueue_queue_duration_seconds",
    help: "How long in seconds an item stays in workqueue before being requested",
    labelNames: ["name"],
    buckets: WORKQUEUE_BUCKETS,
  });
  readonly #queueWork = this.registry.histogram({
    name: "workqueue_work_duration_seconds",
    help: "How long in seconds processing an item from workqueue takes",
    labelNames: ["name"],
    buckets: WORKQUEUE_BUCKETS,
  });
  readonly #requests = this.registry.counter({
    name: "rest_client_requests_total",
    help: "Number of HTTP requests, partitioned by status code, method, and host",
    labelNames: ["code", "method", "host"],
  });
  readonly #requestTime = this.registry.histogram({
    name: "rest_client_request_duration_seconds",
    help: "Request latency in seconds. Broken down by verb, and host",
    labelNames: ["verb", "host"],
    buckets: REQUEST_BUCKETS,
  });
  readonly #handlerRuns = this.registry.counter({
    name: "kopf_handler_runs_total",
    help: "Handler attempts by handler id, kind and outcome " +
      "(success, temporary, permanent, timeout, cancelled)",
    labelNames: ["handler", "kind", "outcome"],
  });
  readonly #handlerRetries = this.registry.counter({
    name: "kopf_handler_retries_total",
    help: "Handler attempts that were retries of an earlier failed attempt",
    labelNames: ["handler"],
  });
  readonly #handlerTime = this.registry.histogram({
    name: "kopf_handler_duration_seconds",
    help: "How long handler attempts took",
    labelNames: ["handler"],
    buckets: HANDLER_BUCKETS,
  });
  // Hot-path children resolved once per label set and kept.
  readonly #requestChildren = new Map<string, CounterChild>();
  readonly #requestTimeChildren = new Map<string, HistogramChild>();
  #host = "";
  readonly #controllers = new Set<string>();
  /** Objects in a streak of writing cycles: their length and when the last one ended. */
  readonly #streaks = new Map<string, { length: number; at: number }>();
  #streakPrunedAt = 0;
  readonly #patchLoops = this.registry.counter({
    name: "kopf_patch_loop_suspects_total",
    help: `Objects that reached ${PATCH_LOOP_STREAK} handling cycles in a row each writing to ` +
      "the object (their own writes trigger their handlers again)",
    labelNames: ["controller"],
  });

  /** The queue's timings, fed to the object queue when the operator makes it. */
  readonly queueObserver: QueueObserver;

  /** Metrics of one operator. */
  constructor(options: CollectorOptions = {}) {
    this.#options = options;
    const wait = () => this.#queueWait.labels(this.#handle?.queue.name ?? "objects");
    const work = () => this.#queueWork.labels(this.#handle?.queue.name ?? "objects");
    let waitChild: HistogramChild | undefined;
    let workChild: HistogramChild | undefined;
    this.queueObserver = {
      started: (_key, seconds) => (waitChild ??= wait()).observe(seconds),
      finished: (_key, seconds) => (workChild ??= work()).observe(seconds),
    };
    this.#declarePulled();
  }

  /** Start feeding from a running operator. */
  attach(handle: OperatorHandle): void {
    this.#handle = handle;
    try {
      this.#host = new URL(handle.client.server).host;
    } catch {
      this.#host = handle.client.server;
    }
    this.#detach.push(handle.client.observe({ requested: (a) => this.#requested(a) }));
    this.#detach.push(listenToExecutions((record) => this.#executed(record)));
  }

  /** Stop feeding (the last values stay readable). */
  detach(): void {
    for (const stop of this.#detach.splice(0)) stop();
  }

  /** One handling cycle ended. */
  cycled(record: CycleRecord): void {
    const controller = controllerOf(record.resource);
    if (!this.#controllers.has(controller)) {
      // As controller-runtime: every result and the errors at 0 from the start, so that rates
      // and alerts over them have a series to work with before the first error.
      this.#controllers.add(controller);
      for (const result of ["success", "error", "requeue", "requeue_after"]) {
        this.#reconciles.labels(controller, result);
      }
      this.#reconcileErrors.labels(controller);
    }
    this.#reconciles.labels(controller, record.result).inc();
    this.#streak(record, controller);
    if (record.result === "error") this.#reconcileErrors.labels(controller).inc();
    this.#reconcileTime.labels(controller).observe(record.seconds);
  }

  #streak(record: CycleRecord, controller: string): void {
    const now = performance.now();
    if (record.writes > 0 && record.result === "success") {
      const streak = this.#streaks.get(record.key) ?? { length: 0, at: now };
      streak.length++;
      streak.at = now;
      this.#streaks.set(record.key, streak);
      if (streak.length === PATCH_LOOP_STREAK) this.#patchLoops.labels(controller).inc();
    } else if (record.writes > 0 || record.result !== "requeue_after") {
      // A cycle that wrote nothing, or a retry, ends the streak; one that only waits (for our
      // own write to come back, for a delayed handler) neither ends nor extends it.
      this.#streaks.delete(record.key);
    }
    if (now - this.#streakPrunedAt > 60_000) this.#pruneStreaks(now);
  }

  #pruneStreaks(now: number): void {
    this.#streakPrunedAt = now;
    for (const [key, streak] of this.#streaks) {
      if (now - streak.at > STREAK_TTL_MS) this.#streaks.delete(key);
    }
  }

  /** The text exposition. */
  expose(): string {
    return this.registry.expose();
  }

  #requested(attempt: RequestAttempt): void {
    const code = attempt.status === undefined ? "<error>" : String(attempt.status);
    const key = `${code} ${attempt.method}`;
    let counter = this.#requestChildren.get(key);
    if (!counter) {
      counter = this.#requests.labels(code, attempt.method, this.#host);
      this.#requestChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.#requestTimeChildren.get(attempt.method);
    if (!histogram) {
      histogram = this.#requestTime.labels(attempt.method, this.#host);
      this.#requestTimeChildren.set(attempt.method, histogram);
    }
    histogram.observe(attempt.seconds);
  }

  #executed(record: ExecutionRecord): void {
    const id = record.handler.id;
    // Every record the registry makes has its kind; the base type does not say so.
    const kind = (record.handler as { kind?: string }).kind ?? "unknown";
    this.#handlerRuns.labels(id, kind, outcomeOf(record)).inc();
    if (record.retry > 0) this.#handlerRetries.labels(id).inc();
    this.#handlerTime.labels(id).observe(record.seconds);
  }

  #declarePulled(): void {
    const r = this.registry;
    const handle = () => this.#handle;
    const queue = (read: (q: OperatorHandle["queue"]) => number) => () => {
      const h = handle();
      return h ? [[[h.queue.name], read(h.queue)] as const] : [];
    };
    r.pulled(
      "gauge",
      {
        name: "leader_election_master_status",
        help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates " +
          "backup, 1 indicates master. 'name' is the string used to identify the lease.",
        labelNames: ["name"],
      },
      () =>
        (handle()?.gate?.leadership?.() ?? []).map((l) => [[l.name], l.leading ? 1 : 0] as const),
    );
    r.pulled("gauge", {
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"],
    }, queue((q) => q.concurrency));
    r.pulled("gauge", {
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"],
    }, queue((q) => q.inFlight));
    r.pulled("gauge", {
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name"],
    }, queue((q) => q.size));
    r.pulled("counter", {
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name"],
    }, queue((q) => q.counters.adds));
    r.pulled("counter", {
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: ["name"],
    }, queue((q) => q.counters.retries));
    r.pulled("gauge", {
      name: "workqueue_unfinished_work_seconds",
      help: "How many seconds of work has been done that is in progress and hasn't been " +
        "observed by work_duration. Large values indicate stuck threads.",
      labelNames: ["name"],
    }, queue((q) => q.runningSeconds().reduce((a, b) => a + b, 0)));
    r.pulled("gauge", {
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames: ["name"],
    }, queue((q) => Math.max(0, ...q.runningSeconds())));
    r.pulled("gauge", {
      name: "kopf_queue_delayed",
      help: "Keys of the object queue waiting for a delayed wake-up (retries, timers)",
      labelNames: ["name"],
    }, queue((q) => q.delayed));

    const client = (read: (m: ClientStats) => number) => () => {
      const h = handle();
      return h ? [[[], read(h.client.metrics)] as const] : [];
    };
    const clientFamilies: [string, "counter" | "gauge", string, (m: ClientStats) => number][] = [
      [
        "kopf_client_retries_total",
        "counter",
        "Request attempts that were retries",
        (m) => m.retries,
      ],
      [
        "kopf_client_rate_limited_waits_total",
        "counter",
        "Requests that waited for the client's token bucket",
        (m) => m.throttledWaits,
      ],
      [
        "kopf_client_rate_limited_seconds_total",
        "counter",
        "Seconds requests spent waiting for the client's token bucket",
        (m) => m.throttledMs / 1000,
      ],
      ["kopf_client_qps", "gauge", "The client's current rate limit (0: off)", (m) => m.qps],
      ["kopf_client_in_flight", "gauge", "Requests in flight", (m) => m.inFlight],
      [
        "kopf_client_waiting_for_slot",
        "gauge",
        "Requests waiting for an in-flight slot",
        (m) => m.waitingForSlot,
      ],
      [
        "kopf_client_transport_errors_total",
        "counter",
        "Request attempts that got no response (connection errors, timeouts)",
        (m) => m.transportErrors,
      ],
    ];
    for (const [name, type, help, read] of clientFamilies) {
      r.pulled(type, { name, help }, client(read));
    }

    const informers = (read: (i: InformerLike) => number | undefined) => () => {
      const h = handle();
      if (!h) return [];
      const samples: [string[], number][] = [];
      for (const informer of h.informers.all()) {
        const value = read(informer);
        if (value === undefined) continue;
        samples.push([[controllerOf(informer.resource), informer.namespace ?? ""], value]);
      }
      return samples;
    };
    const watch = ["resource", "namespace"];
    r.pulled("gauge", {
      name: "kopf_cached_objects",
      help: "Objects in the informers' caches",
      labelNames: watch,
    }, informers((i) => i.store.size));
    r.pulled("counter", {
      name: "kopf_watch_reconnects_total",
      help: "Watch requests re-opened after the first one",
      labelNames: watch,
    }, informers((i) => i.stats?.reconnects));
    r.pulled("counter", {
      name: "kopf_watch_relists_total",
      help: "Listings after the first one (each after a 410 Gone)",
      labelNames: watch,
    }, informers((i) => i.stats?.relists));
    r.pulled("counter", {
      name: "kopf_watch_errors_total",
      help: "Failed list or watch requests (each followed by a backoff)",
      labelNames: watch,
    }, informers((i) => i.stats?.errors));
    r.pulled("counter", {
      name: "kopf_watch_events_total",
      help: "Object events received from watches",
      labelNames: watch,
    }, informers((i) => i.stats?.events));
    r.pulled("gauge", {
      name: "kopf_watch_healthy",
      help: "1 while the watch is connected and its last request succeeded",
      labelNames: watch,
    }, informers((i) => i.healthy ? 1 : 0));

    const events = () => handle()?.events();
    r.pulled("counter", {
      name: "kopf_events_posted_total",
      help: "Kubernetes Events created (POST) and updated by aggregation (PATCH)",
      labelNames: ["verb"],
    }, () => {
      const s = events();
      return s ? [[["create"], s.posted], [["patch"], s.patched]] : [];
    });
    r.pulled("counter", {
      name: "kopf_events_dropped_total",
      help: "Kubernetes Events not posted, by reason",
      labelNames: ["reason"],
    }, () => {
      const s = events();
      return s
        ? [
          [["rate_limited"], s.droppedRateLimited],
          [["queue_full"], s.droppedQueueFull],
          [["failed"], s.failed],
        ]
        : [];
    });
    const background = () => handle() ? this.#options.background?.() : undefined;
    r.pulled("gauge", {
      name: "kopf_patch_loop_suspects",
      help: `Objects now in a streak of ${PATCH_LOOP_STREAK} or more handling cycles each ` +
        "writing to the object (a patch loop)",
    }, () => {
      if (!handle()) return [];
      this.#pruneStreaks(performance.now());
      let suspects = 0;
      for (const streak of this.#streaks.values()) {
        if (streak.length >= PATCH_LOOP_STREAK) suspects++;
      }
      return [[[], suspects]];
    });
    r.pulled("gauge", {
      name: "kopf_daemons_running",
      help: "Daemons and timers running (or stopping), of all objects",
    }, () => {
      const s = background();
      return s ? [[[], s.running]] : [];
    });
    r.pulled("gauge", {
      name: "kopf_daemon_objects",
      help: "Objects with daemons or timers",
    }, () => {
      const s = background();
      return s ? [[[], s.objects]] : [];
    });
    r.pulled("gauge", {
      name: "kopf_index_size",
      help: "Keys in each index",
      labelNames: ["index"],
    }, () => {
      const indices = handle() ? this.#options.indices?.() ?? {} : {};
      const samples: [string[], number][] = [];
      for (const [id, index] of Object.entries(indices)) {
        const size = (index as { size?: unknown } | null)?.size;
        if (typeof size === "number") samples.push([[id], size]);
      }
      return samples;
    });
  }
}

type ClientStats = OperatorHandle["client"]["metrics"];
type InformerLike = ReturnType<OperatorHandle["informers"]["all"]>[number];
