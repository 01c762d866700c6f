/**
 * `KubeClient`: every request the framework makes to the API server goes through here.
 *
 * Per request: credentials from the {@linkcode ClusterConfig} (re-fetched once after a 401),
 * a client-side token bucket (50 QPS and burst 100 to start with, adapting up to 1,000 QPS while
 * the server answers without throttling and back on 429s; see `rate_limit.ts`), a cap on requests
 * in flight (watch streams excluded — they live for minutes and would starve the cap), a
 * deadline per attempt by verb, a cap on the whole request with its retries (default 300 s,
 * Kopf's `request_timeout`), and retries with exponential backoff and full jitter.
 *
 * Deadlines per attempt — the API server ends a non-watch request itself after its own
 * `--request-timeout` (60 s by default) with a 504, so the client's deadlines sit around it:
 *
 * | attempt | deadline | why |
 * | --- | --- | --- |
 * | read (GET, HEAD, OPTIONS; LIST pages) | 60 s | the server gives up on a read by then; a retry is safe |
 * | write (POST, PUT, PATCH, DELETE) | 75 s | the server's 60 s and a margin: the server's own answer (even its 504) ends a write, not a guess on our side |
 * | watch, until the response headers | 30 s | the server answers a watch at once and streams afterwards |
 * | watch stream | none | the server ends it after its `timeoutSeconds`; the health check finds a dead connection |
 *
 * These bound a request on a healthy connection that gets no answer. A dead connection is found
 * sooner by the transport's health check (see `_transport.ts`): after 30 s of silence while
 * anything is in flight, a probe must be answered within 15 s, so a dead connection fails every
 * request and watch on it within 45 s of its last byte, and the retries go over a new one.
 *
 * A write that fails without an answer — no connection, a dead or broken one, a deadline — and is
 * then retried, or is not retried because it is not idempotent, is logged at WARNING with the verb,
 * the resource, the object's namespace/name and the cause, one line each time.
 *
 * Retry rules — a request is repeated only when repeating cannot do harm:
 *
 * | failure | idempotent (GET, HEAD, PUT, DELETE, merge/apply PATCH) | POST, JSON PATCH |
 * | --- | --- | --- |
 * | connection refused, DNS error (nothing was sent) | retried | retried |
 * | 429 Too Many Requests (rejected before processing) | retried, `Retry-After` honoured | retried |
 * | 503 with `Retry-After` (the server asks to come back) | retried | retried |
 * | other 5xx | retried | not retried (it may have been applied) |
 * | connection reset, dead connection, or deadline after sending | retried | not retried |
 * | TLS verification failure | not retried | not retried |
 * | 401 | credentials reloaded once, then retried | same |
 * | other 4xx | not retried | not retried |
 *
 * A POST may create an object (or, with `generateName`, a second one) even when its response
 * is lost; a JSON patch without a `test` op may apply twice (`add` to `/-`). Callers who know
 * their request is safe can pass `idempotent: true`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Backoff, type BackoffPolicy, REQUEST_BACKOFF } from "./backoff.ts";
import {
  type AuthMaterial,
  type ClusterConfig,
  loadConfig,
  type LoadConfigOptions,
} from "./config/mod.ts";
import {
  ApiError,
  ConnectionError,
  describeCause,
  type KubeStatus,
  RequestTimeoutError,
} from "./errors.ts";
import { InFlightLimit, TokenBucket } from "./rate_limit.ts";
import { type SleepingClock, SYSTEM_CLOCK } from "./time.ts";
import {
  apiVersion,
  describePath,
  type KubeList,
  type KubeObject,
  parsePath,
  type Resource,
  resourcePath,
} from "./resource.ts";
import { createTransport, failurePhase, type Transport } from "./_transport.ts";

const logger = getLogger(["kopf", "kube"]);

/** Query parameters; `undefined` values are left out, arrays repeat the key. */
export type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

/** Options of {@linkcode KubeClient.request}. */
export interface RequestOptions {
  /** Query parameters. */
  query?: Query;
  /** A JSON-able body, or a prepared string/bytes (then set `contentType`). */
  body?: unknown;
  /** Body content type (default `application/json` when there is a body). */
  contentType?: string;
  /** `Accept` header (default `application/json`). */
  accept?: string;
  /** Aborts the request, including waits for rate limits and retries. */
  signal?: AbortSignal;
  /**
   * Deadline per attempt, in milliseconds (default: the client's `readTimeoutMs` or
   * `writeTimeoutMs`, by verb), within the client's whole-request `timeoutMs`.
   */
  timeoutMs?: number;
  /** Overrides whether the request is safe to repeat (see the module docs). */
  idempotent?: boolean;
  /** Overrides the client's retry limit for this request. */
  retries?: number;
}

/** Options of {@linkcode KubeClient.stream}. */
export interface StreamOptions {
  /** Query parameters (e.g. `watch=true`, `resourceVersion`, `allowWatchBookmarks`). */
  query?: Query;
  /** Closes the stream. */
  signal?: AbortSignal;
  /** How long to wait for the response headers, in milliseconds (default: `watchTimeoutMs`). */
  timeoutMs?: number;
  /**
   * Retries for opening the stream (default 0: watch loops have their own reconnect backoff,
   * and two nested backoffs would multiply).
   */
  retries?: number;
  /** `Accept` header (default `application/json`). */
  accept?: string;
}

/** Settings of a {@linkcode KubeClient}. */
export interface ClientOptions {
  /**
   * Cap on a whole request, retries and their pauses included, in milliseconds (default
   * 300 000, Kopf's `request_timeout`). Watch streams are capped only until their headers.
   */
  timeoutMs?: number;
  /** Deadline of one attempt of a read (GET, HEAD, OPTIONS), in milliseconds (default 60 000). */
  readTimeoutMs?: number;
  /** Deadline of one attempt of a write (POST, PUT, PATCH, DELETE), ms (default 75 000). */
  writeTimeoutMs?: number;
  /** Deadline for the response headers of a watch, in milliseconds (default 30 000). */
  watchTimeoutMs?: number;
  /**
   * Silence on a connection with requests or watches in flight before the health check probes
   * it, in milliseconds (default 30 000, client-go's `ReadIdleTimeout`; `0`: no health check).
   */
  readIdleTimeoutMs?: number;
  /**
   * How long the health check's probe may take before the connection counts as dead, in
   * milliseconds (default 15 000, client-go's `PingTimeout`).
   */
  pingTimeoutMs?: number;
  /**
   * Starting and lowest requests per second of the token bucket (default 50; `0` turns it off).
   */
  qps?: number;
  /**
   * Highest rate the token bucket adapts up to while the server answers without throttling
   * (default 1000, or `qps` if that is higher; equal to `qps`: a fixed rate).
   */
  maxQps?: number;
  /** Requests allowed at once above the sustained rate (default 100). */
  burst?: number;
  /** Requests in flight at most, watch streams excluded (default 64; `0` = no cap). */
  maxInFlight?: number;
  /** Retries after the first attempt for retryable failures (default 8). */
  retries?: number;
  /** Retry backoff (default 0.5 s ×2, cap 30 s, full jitter). */
  backoff?: BackoffPolicy;
  /** Longest `Retry-After` honoured, in milliseconds (default 60 000). */
  maxRetryAfterMs?: number;
  /**
   * Wait exactly the server's `Retry-After` when it gives one (Kopf's `enforce_retry_after`);
   * default: the longer of it and the backoff's delay.
   */
  enforceRetryAfter?: boolean;
  /** `User-Agent` header. */
  userAgent?: string;
  /** Time source for the limiters and retry sleeps (tests). */
  clock?: SleepingClock;
  /** Random source for the jitter (tests). */
  random?: () => number;
}

/** Options of {@linkcode KubeClient.connect}: where to connect, and how to behave. */
export interface ConnectOptions extends LoadConfigOptions, ClientOptions {}

/** Request counters, as plain numbers (read at scrape time by `src/metrics/collectors.ts`). */
export interface ClientMetrics {
  /** Attempts sent, by HTTP method (retries included). */
  requests: Record<string, number>;
  /** Responses by HTTP status code. */
  responses: Record<string, number>;
  /** Attempts that were retries. */
  retries: number;
  /** Requests that had to wait for the token bucket. */
  throttledWaits: number;
  /** Total time spent waiting for the token bucket, in milliseconds. */
  throttledMs: number;
  /** The token bucket's current rate, requests per second (`0`: off). */
  qps: number;
  /** Times the rate was raised because the server answered without throttling. */
  rateRaises: number;
  /** Times the rate was lowered because the server throttled or demand went quiet. */
  rateCuts: number;
  /** Times credentials were reloaded after a 401. */
  reauthentications: number;
  /** Attempts that failed without a response (connection errors and timeouts). */
  transportErrors: number;
  /** Watch streams opened. */
  streams: number;
  /** Health probes sent over connections that were silent while requests were in flight. */
  probes: number;
  /** Connections found dead by the health check and replaced. */
  deadConnections: number;
  /** Requests holding an in-flight slot right now. */
  inFlight: number;
  /** Requests waiting for an in-flight slot right now. */
  waitingForSlot: number;
}

/** One attempt of a request, as the client saw it (metrics: client-go's `rest_client_*`). */
export interface RequestAttempt {
  /** The HTTP method. */
  readonly method: string;
  /** The response's status code; `undefined` when none came (connection error, timeout). */
  readonly status: number | undefined;
  /** Seconds from sending to the answer (a stream's: to its headers). */
  readonly seconds: number;
}

/** Told of every attempt the client sends (retries included), as it ends. Must not throw. */
export interface RequestObserver {
  /** One attempt ended. */
  requested?(attempt: RequestAttempt): void;
}

/** Options shared by the typed helpers. */
export interface ObjectOptions {
  /** Namespace (omit for cluster-scoped resources). */
  namespace?: string;
  /** Subresource such as `"status"`. */
  subresource?: string;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** Options of {@linkcode KubeClient.list}. */
export interface ListOptions {
  /** Namespace; omit for all namespaces (or for cluster-scoped resources). */
  namespace?: string;
  /** Server-side label selector, e.g. `app=web,tier!=db`. */
  labelSelector?: string;
  /** Server-side field selector, e.g. `metadata.name=x`. */
  fieldSelector?: string;
  /** Page size; the result's `metadata.continue` fetches the next page. */
  limit?: number;
  /** The continue token of the previous page. */
  continue?: string;
  /** List at (or not older than) this resourceVersion; `"0"` allows the watch cache. */
  resourceVersion?: string;
  /** How `resourceVersion` is interpreted. */
  resourceVersionMatch?: "Exact" | "NotOlderThan";
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** Options of {@linkcode KubeClient.create} and {@linkcode KubeClient.replace}. */
export interface WriteOptions extends ObjectOptions {
  /** The field manager recorded for this write (required for server-side apply). */
  fieldManager?: string;
  /** Validate only (`dryRun=All`). */
  dryRun?: boolean;
}

/**
 * Patch flavours: JSON merge patch, JSON patch (RFC 6902), or server-side apply.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const type: kopf.PatchType = "json";
 * kopf.on.create("kopfexamples", async function createFn({ api, name, namespace }) {
 *   await api.patch("kopfexamples", name, [{ op: "add", path: "/metadata/labels/seen", value: "yes" }], {
 *     namespace,
 *     type,
 *   });
 * });
 * ```
 */
export type PatchType = "merge" | "json" | "apply";

/** Options of {@linkcode KubeClient.patch}. */
export interface PatchOptions extends WriteOptions {
  /** Patch flavour (default `"merge"`). */
  type?: PatchType;
  /** Server-side apply only: take over conflicting fields from other managers. */
  force?: boolean;
}

/** Options of {@linkcode KubeClient.delete}. */
export interface DeleteOptions extends ObjectOptions {
  /** How dependents are deleted (garbage collection). */
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  /** Delete only if the object still has this uid / resourceVersion. */
  preconditions?: { uid?: string; resourceVersion?: string };
  /** Grace period before the object is deleted (pods). */
  gracePeriodSeconds?: number;
  /** Validate only (`dryRun=All`). */
  dryRun?: boolean;
}

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/** Methods that change nothing: the read deadline applies, a failure is no write to report. */
const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The Kubernetes API client.
 *
 * @example
 * ```ts
 * import { KubeClient } from "./client.ts";
 * import { Discovery } from "./discovery.ts";
 * import { parseSelector } from "./selector.ts";
 * const client = await KubeClient.connect({ qps: 20 });
 * try {
 *   const [pods] = await new Discovery(client).resolve(parseSelector("v1", "pods"));
 *   const page = await client.list(pods, { namespace: "default", limit: 100 });
 *   console.log(page.items.length);
 * } finally {
 *   client.close();
 * }
 * ```
 */
export class KubeClient {
  /** The resolved configuration this client talks with. */
  readonly config: ClusterConfig;
  /** API server base URL. */
  readonly server: string;
  /** The context's default namespace, if any (never applied implicitly). */
  readonly namespace?: string;
  #transport: Transport;
  #bucket: TokenBucket;
  #slots: InFlightLimit;
  #timeoutMs: number;
  #readTimeoutMs: number;
  #writeTimeoutMs: number;
  #watchTimeoutMs: number;
  #retries: number;
  #backoff: BackoffPolicy;
  #maxRetryAfterMs: number;
  #enforceRetryAfter: boolean;
  #userAgent: string;
  #clock: SleepingClock;
  #random: () => number;
  #closed = false;
  #observers: RequestObserver[] = [];
  #metrics = {
    requests: {} as Record<string, number>,
    responses: {} as Record<string, number>,
    retries: 0,
    throttledWaits: 0,
    throttledMs: 0,
    qps: 0,
    rateRaises: 0,
    rateCuts: 0,
    reauthentications: 0,
    transportErrors: 0,
    streams: 0,
  };

  /** Loads the configuration (see `loadConfig`) and creates a client for it. */
  static async connect(options: ConnectOptions = {}): Promise<KubeClient> {
    return new KubeClient(await loadConfig(options), options);
  }

  /** Creates a client for an already loaded configuration. */
  constructor(config: ClusterConfig, options: ClientOptions = {}) {
    this.config = config;
    this.server = config.server.replace(/\/+$/, "");
    this.namespace = config.namespace;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#random = options.random ?? Math.random;
    this.#timeoutMs = options.timeoutMs ?? 300_000;
    this.#readTimeoutMs = options.readTimeoutMs ?? 60_000;
    this.#writeTimeoutMs = options.writeTimeoutMs ?? 75_000;
    this.#watchTimeoutMs = options.watchTimeoutMs ?? 30_000;
    this.#retries = options.retries ?? 8;
    this.#backoff = options.backoff ?? REQUEST_BACKOFF;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.#enforceRetryAfter = options.enforceRetryAfter ?? false;
    this.#userAgent = options.userAgent ?? `kopf-deno/0.1.0 (deno ${Deno.version.deno})`;
    const qps = options.qps ?? 50;
    this.#bucket = new TokenBucket({
      qps,
      burst: options.burst ?? 100,
      maxQps: Math.max(qps, options.maxQps ?? 1000),
      clock: this.#clock,
    });
    this.#bucket.onRateChange = ({ from, to, cause }) => {
      if (to > from) this.#metrics.rateRaises++;
      else this.#metrics.rateCuts++;
      const message = cause === "throttled"
        ? "The API server throttles: client rate limit lowered from {from} to {to} QPS"
        : cause === "quiet"
        ? "Client rate limit back to {to} QPS"
        : "Client rate limit raised from {from} to {to} QPS (the API server is not throttling)";
      if (cause === "throttled") logger.info(message, { from, to });
      else logger.debug(message, { from, to });
    };
    this.#slots = new InFlightLimit(options.maxInFlight ?? 64);
    this.#transport = createTransport(config.tls, this.server, {
      readIdleTimeoutMs: options.readIdleTimeoutMs,
      pingTimeoutMs: options.pingTimeoutMs,
    });
    logger.debug("Kubernetes client for {server} ({source}) via {transport}", {
      server: this.server,
      source: config.source,
      transport: this.#transport.kind,
    });
  }

  /**
   * Whether the transport's health check finds silent dead connections, watches included: then
   * a silent watch is a quiet resource, and the watch loop needs no idle timer of its own.
   */
  get checksConnections(): boolean {
    return this.#transport.checksConnections;
  }

  /** A snapshot of the request counters. */
  get metrics(): ClientMetrics {
    const m = this.#metrics;
    const { probes, deadConnections } = this.#transport.stats;
    return {
      ...m,
      probes,
      deadConnections,
      requests: { ...m.requests },
      responses: { ...m.responses },
      qps: this.#bucket.enabled ? this.#bucket.qps : 0,
      inFlight: this.#slots.active,
      waitingForSlot: this.#slots.waiting,
    };
  }

  /**
   * Tell `observer` of every attempt from now on (metrics); returns the function that stops it.
   * Without observers, an attempt costs nothing more.
   */
  observe(observer: RequestObserver): () => void {
    this.#observers = [...this.#observers, observer];
    return () => {
      this.#observers = this.#observers.filter((o) => o !== observer);
    };
  }

  #observed(method: string, status: number | undefined, sentAt: number): void {
    const attempt = { method, status, seconds: (performance.now() - sentAt) / 1000 };
    for (const observer of this.#observers) observer.requested?.(attempt);
  }

  /**
   * Sends a request and returns the parsed JSON response (or the text, for non-JSON answers).
   * Throws {@linkcode ApiError} for non-2xx answers, {@linkcode ConnectionError} when the
   * server cannot be reached, {@linkcode RequestTimeoutError} on timeouts — after retries.
   */
  async request<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<T> {
    method = method.toUpperCase();
    const { response, text } = await this.#send(method, path, {
      query: options.query,
      body: options.body,
      contentType: options.contentType,
      accept: options.accept,
      signal: options.signal,
      timeoutMs: options.timeoutMs ??
        (READ_METHODS.has(method) ? this.#readTimeoutMs : this.#writeTimeoutMs),
      idempotent: options.idempotent ?? isIdempotent(method, options.contentType),
      retries: options.retries ?? this.#retries,
      stream: false,
    });
    if (!text) return undefined as T;
    const type = response.headers.get("content-type") ?? "";
    if (type.includes("json") || type === "") {
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        if (type.includes("json")) {
          throw new ApiError({
            verb: method,
            path,
            status: response.status,
            reason: "BadResponse",
            message: `invalid JSON in the response: ${String(error)}`,
          });
        }
      }
    }
    return text as T;
  }

  /**
   * Opens a long-lived GET (a watch) and returns the `Response` with its body still streaming.
   * Same credentials and token bucket as every request, but no in-flight slot and a deadline
   * only for the response headers (`watchTimeoutMs`). Throws {@linkcode ApiError} for
   * non-2xx answers (after reading the `Status` body) and {@linkcode ConnectionError} when the
   * server cannot be reached. The body stays bound to `options.signal` until it aborts: give
   * each stream a signal of its own, not a long-lived one.
   */
  async stream(path: string, options: StreamOptions = {}): Promise<Response> {
    const { response } = await this.#send("GET", path, {
      query: options.query,
      accept: options.accept,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.#watchTimeoutMs,
      idempotent: true,
      retries: options.retries ?? 0,
      stream: true,
    });
    this.#metrics.streams++;
    return response;
  }

  /** Reads one object (or its subresource). */
  get<T = KubeObject>(resource: Resource, name: string, options: ObjectOptions = {}): Promise<T> {
    return this.request<T>("GET", this.#path(resource, options, name), { signal: options.signal });
  }

  /** Lists one page of objects; follow `metadata.continue` for more. */
  list<T = KubeObject>(resource: Resource, options: ListOptions = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>(
      "GET",
      resourcePath(resource, { namespace: options.namespace }),
      {
        query: {
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
          limit: options.limit,
          continue: options.continue,
          resourceVersion: options.resourceVersion,
          resourceVersionMatch: options.resourceVersionMatch,
        },
        signal: options.signal,
      },
    );
  }

  /**
   * Creates an object. The namespace defaults to the body's `metadata.namespace`; `apiVersion`
   * and `kind` are filled in from the resource when missing.
   */
  create<T = KubeObject>(
    resource: Resource,
    body: KubeObject,
    options: WriteOptions = {},
  ): Promise<T> {
    const namespace = options.namespace ??
      (resource.namespaced ? body.metadata?.namespace : undefined);
    const path = resourcePath(resource, {
      namespace,
      name: options.subresource ? body.metadata?.name : undefined,
      subresource: options.subresource,
    });
    return this.request<T>("POST", path, {
      body: { apiVersion: apiVersion(resource), kind: resource.kind, ...body },
      query: writeQuery(options),
      signal: options.signal,
    });
  }

  /** Replaces an object (PUT); conflicts if `metadata.resourceVersion` is stale. */
  replace<T = KubeObject>(
    resource: Resource,
    name: string,
    body: KubeObject,
    options: WriteOptions = {},
  ): Promise<T> {
    return this.request<T>("PUT", this.#path(resource, options, name, body), {
      body: { apiVersion: apiVersion(resource), kind: resource.kind, ...body },
      query: writeQuery(options),
      signal: options.signal,
    });
  }

  /**
   * Patches an object (or its subresource): a JSON merge patch (default), a JSON patch
   * (an array of operations), or server-side apply (needs `fieldManager`; `force` takes over
   * conflicting fields).
   */
  patch<T = KubeObject>(
    resource: Resource,
    name: string,
    patch: unknown,
    options: PatchOptions = {},
  ): Promise<T> {
    const type = options.type ?? "merge";
    if (type === "apply" && !options.fieldManager) {
      throw new TypeError("server-side apply needs a fieldManager");
    }
    if (type === "json" && !Array.isArray(patch)) {
      throw new TypeError("a JSON patch must be an array of operations");
    }
    if (options.force && type !== "apply") {
      throw new TypeError("force is only meaningful for server-side apply");
    }
    let body = patch;
    if (type === "apply" && patch && typeof patch === "object" && !Array.isArray(patch)) {
      body = { apiVersion: apiVersion(resource), kind: resource.kind, ...patch };
    }
    return this.request<T>("PATCH", this.#path(resource, options, name), {
      body,
      contentType: PATCH_CONTENT_TYPES[type],
      query: { ...writeQuery(options), force: options.force ? true : undefined },
      signal: options.signal,
    });
  }

  /**
   * Deletes an object. Resolves with what the server returns: the object (while finalizers
   * hold it) or a `Status`.
   */
  delete<T = KubeObject | KubeStatus>(
    resource: Resource,
    name: string,
    options: DeleteOptions = {},
  ): Promise<T> {
    const hasBody = options.propagationPolicy !== undefined ||
      options.preconditions !== undefined ||
      options.gracePeriodSeconds !== undefined;
    return this.request<T>("DELETE", this.#path(resource, options, name), {
      body: hasBody
        ? {
          apiVersion: "v1",
          kind: "DeleteOptions",
          propagationPolicy: options.propagationPolicy,
          preconditions: options.preconditions,
          gracePeriodSeconds: options.gracePeriodSeconds,
        }
        : undefined,
      query: { dryRun: options.dryRun ? "All" : undefined },
      signal: options.signal,
    });
  }

  /** Closes the connections. Requests after this fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.close();
  }

  #path(resource: Resource, options: ObjectOptions, name: string, body?: KubeObject): string {
    const namespace = options.namespace ??
      (resource.namespaced ? body?.metadata?.namespace : undefined);
    return resourcePath(resource, { namespace, name, subresource: options.subresource });
  }

  async #send(method: string, path: string, init: {
    query?: Query;
    body?: unknown;
    contentType?: string;
    accept?: string;
    signal?: AbortSignal;
    timeoutMs: number;
    idempotent: boolean;
    retries: number;
    stream: boolean;
  }): Promise<{ response: Response; text?: string }> {
    if (this.#closed) throw new Error(`${method} ${describePath(path)}: the client is closed`);
    const url = this.#url(path, init.query);
    const { signal } = init;
    let body: string | Uint8Array<ArrayBuffer> | undefined;
    let contentType = init.contentType;
    if (init.body !== undefined) {
      if (typeof init.body === "string") {
        body = init.body;
      } else if (init.body instanceof Uint8Array) {
        body = new Uint8Array(init.body);
      } else {
        body = JSON.stringify(init.body);
        contentType ??= "application/json";
      }
    }
    const backoff = new Backoff(this.#backoff, this.#random);
    let attempt = 0;
    let reauthenticated = false;
    // The whole request, retries and their pauses included, ends by this time.
    const deadline = this.#clock.now() + this.#timeoutMs;
    // For log lines of failures only: not built for the requests that succeed.
    const what = () => describeTarget(path, init.body);

    while (true) {
      signal?.throwIfAborted();
      const waited = await this.#bucket.acquire(signal);
      if (waited > 0) {
        this.#metrics.throttledWaits++;
        this.#metrics.throttledMs += waited;
      }
      const release = init.stream ? () => {} : await this.#slots.acquire(signal);
      let auth: AuthMaterial;
      try {
        auth = await this.config.credentials.get();
      } catch (error) {
        // Not a transport failure: an exec plugin or token file problem, reported as it is.
        release();
        throw error;
      }
      let response: Response;
      let text: string | undefined;
      let sentAt: number | undefined;
      // One controller per attempt, aborted by the caller's signal or by the deadline (an
      // AbortSignal.any() of the two cost more per request, and Deno could collect it while the
      // fetch ran, losing its abort).
      const attemptMs = Math.max(1, Math.min(init.timeoutMs, deadline - this.#clock.now()));
      const attemptAbort = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        attemptAbort.abort(new DOMException("request timed out", "TimeoutError"));
      }, attemptMs);
      const forward = () => attemptAbort.abort(signal!.reason);
      signal?.addEventListener("abort", forward, { once: true });
      try {
        const headers: [string, string][] = [
          ["accept", init.accept ?? "application/json"],
          ["user-agent", this.#userAgent],
        ];
        if (contentType) headers.push(["content-type", contentType]);
        for (const [key, value] of auth.headers) headers.push([key, value]);
        this.#metrics.requests[method] = (this.#metrics.requests[method] ?? 0) + 1;
        sentAt = performance.now();
        ({ response, text } = await this.#transport.send({
          method,
          url,
          headers,
          body,
          signal: attemptAbort.signal,
          stream: init.stream,
          certPem: auth.certPem,
          keyPem: auth.keyPem,
        }));
        // An error body of a stream is small: read under the same timeout. A stream's own body
        // outlives this attempt, and the caller's signal still ends it.
        if (init.stream && !response.ok) text = await response.text();
      } catch (error) {
        clearTimeout(timer);
        signal?.removeEventListener("abort", forward);
        release();
        if (sentAt !== undefined && this.#observers.length) {
          this.#observed(method, undefined, sentAt);
        }
        if (signal?.aborted) throw signal.reason;
        this.#metrics.transportErrors++;
        this.#bucket.observe("failed");
        const dead = error instanceof ConnectionError && error.dead;
        const phase = timedOut || dead ? "transfer" : failurePhase(error);
        const retryable = phase === "connect" || (phase === "transfer" && init.idempotent);
        const delay = retryable && attempt < init.retries ? backoff.next() : 0;
        const cause = timedOut
          ? `no response within ${attemptMs / 1000} s`
          : dead
          ? `the connection to ${(error as ConnectionError).host} was dead: ${
            describeCause((error as ConnectionError).cause)
          }`
          : describeCause(error);
        const write = !READ_METHODS.has(method);
        if (
          !retryable || attempt >= init.retries || this.#clock.now() + delay >= deadline
        ) {
          if (write && retryable === false && phase === "transfer") {
            // The write may have been applied, or not: whoever made it must know it is unknown.
            logger.warn(
              "{verb} {what}: {cause}; not retried: a {verb} is not idempotent and may have " +
                "been applied.",
              { verb: method, what: what(), cause },
            );
          }
          if (timedOut) {
            throw new RequestTimeoutError({
              verb: method,
              path,
              timeoutMs: attemptMs,
              attempts: attempt + 1,
            });
          }
          throw new ConnectionError({
            verb: method,
            url,
            cause: dead ? (error as ConnectionError).cause : error,
            attempts: attempt + 1,
            maybeSent: phase === "transfer",
            dead,
          });
        }
        if (phase === "connect") {
          // Nothing reached the server: say so at once, with where and why, for every attempt
          // (as Kopf does), rather than only when the retries run out a minute later.
          logger.warn(
            "{verb} {what}: cannot connect to {host}: {cause}; retry {attempt}/{retries} in " +
              "{delay} ms.",
            {
              verb: method,
              what: what(),
              host: new URL(url).host,
              cause,
              attempt: attempt + 1,
              retries: init.retries,
              delay: Math.round(delay),
            },
          );
        } else if (write) {
          logger.warn("{verb} {what}: {cause}; retry {attempt}/{retries} in {delay} ms.", {
            verb: method,
            what: what(),
            cause,
            attempt: attempt + 1,
            retries: init.retries,
            delay: Math.round(delay),
          });
        } else {
          logger.debug("{verb} {what}: {cause}; retry {attempt}/{retries} in {delay} ms", {
            verb: method,
            what: what(),
            cause,
            attempt: attempt + 1,
            retries: init.retries,
            delay: Math.round(delay),
          });
        }
        await this.#clock.sleep(delay, signal);
        attempt++;
        this.#metrics.retries++;
        continue;
      }
      clearTimeout(timer);
      release();
      // A stream's body stays bound to the caller's signal (one per stream: the watch's own).
      if (!init.stream || !response.ok) signal?.removeEventListener("abort", forward);
      const status = response.status;
      this.#metrics.responses[status] = (this.#metrics.responses[status] ?? 0) + 1;
      if (this.#observers.length) this.#observed(method, status, sentAt!);
      if (status >= 200 && status < 300) {
        this.#bucket.observe("ok");
        return { response, text };
      }

      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      this.#bucket.observe(
        status === 429 || (status === 503 && retryAfter !== undefined)
          ? "throttled"
          : status >= 500
          ? "failed"
          : "ok",
      );
      const error = ApiError.from(method, path, status, parseBody(text), retryAfter);
      if (status === 401 && !reauthenticated && this.config.credentials.invalidate()) {
        // Rejected by authentication, so nothing happened: safe to repeat at once, any method.
        reauthenticated = true;
        this.#metrics.reauthentications++;
        logger.info("{verb} {what}: 401 Unauthorized; reloading credentials and retrying once", {
          verb: method,
          what: describePath(path),
        });
        continue;
      }
      const retryable = status === 429 ||
        (status === 503 && error.retryAfterSeconds !== undefined) ||
        (status >= 500 && init.idempotent);
      if (!retryable || attempt >= init.retries) throw error;
      let delay = backoff.next();
      if (error.retryAfterSeconds !== undefined) {
        const asked = Math.min(error.retryAfterSeconds * 1000, this.#maxRetryAfterMs);
        delay = this.#enforceRetryAfter ? asked : Math.max(delay, asked);
      }
      if (this.#clock.now() + delay >= deadline) throw error;
      logger.debug("{verb} {what}: {status} {reason}; retry {attempt}/{retries} in {delay} ms", {
        verb: method,
        what: describePath(path),
        status,
        reason: error.reason,
        attempt: attempt + 1,
        retries: init.retries,
        delay: Math.round(delay),
      });
      await this.#clock.sleep(delay, signal);
      attempt++;
      this.#metrics.retries++;
    }
  }

  #url(path: string, query?: Query): string {
    if (!path.startsWith("/")) path = `/${path}`;
    let url = this.server + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value === undefined) continue;
        if (Array.isArray(value)) { for (const v of value) params.append(key, v); }
        else params.append(key, String(value));
      }
      const text = params.toString();
      if (text) url += (path.includes("?") ? "&" : "?") + text;
    }
    return url;
  }
}

/** Whether a request may be repeated without a different outcome (see the module docs). */
export function isIdempotent(method: string, contentType?: string): boolean {
  method = method.toUpperCase();
  if (IDEMPOTENT_METHODS.has(method)) return true;
  if (method === "PATCH") {
    return contentType === PATCH_CONTENT_TYPES.merge || contentType === PATCH_CONTENT_TYPES.apply ||
      contentType === "application/strategic-merge-patch+json";
  }
  return false;
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date; `undefined` if absent or bad. */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function parseBody(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The request's target for log lines: `describePath()`, plus the object's name from the body
 * when the path names none (a create: `kopfexamples.kopf.dev ns/name`).
 */
function describeTarget(path: string, body: unknown): string {
  const parts = parsePath(path);
  const metadata = (body as KubeObject | undefined)?.metadata;
  if (!parts || parts.name !== undefined || !metadata || typeof metadata !== "object") {
    return describePath(path);
  }
  const name = metadata.name ?? (metadata.generateName ? `${metadata.generateName}*` : undefined);
  if (name === undefined) return describePath(path);
  const type = (parts.group ? `${parts.plural}.${parts.group}` : parts.plural) +
    (parts.subresource ? `/${parts.subresource}` : "");
  const namespace = parts.namespace ?? metadata.namespace;
  return `${type} ${namespace ? `${namespace}/` : ""}${name}`;
}

function writeQuery(options: WriteOptions): Query {
  return { fieldManager: options.fieldManager, dryRun: options.dryRun ? "All" : undefined };
}
