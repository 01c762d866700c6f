/**
 * The HTTP layer under the client: Deno's `fetch` with one `Deno.HttpClient` per cluster, or
 * `node:https` for the two kubeconfig settings Deno's `fetch` cannot express.
 *
 * `insecure-skip-tls-verify` and `tls-server-name` have no per-client equivalent in Deno's
 * `fetch` (only the process-wide `--unsafely-ignore-certificate-errors` flag exists, and its
 * TCP "proxy" transport speaks plain HTTP, so it cannot redirect a TLS name either). For those
 * clusters requests go through `node:https`, which Deno implements on its own TLS stack and which
 * takes `rejectUnauthorized` and `servername` per agent. Everything else uses `fetch`.
 *
 * Both check the health of their connections (see `_health.ts`): while requests or watches are
 * in flight and nothing arrived for `readIdleTimeoutMs` (30 s), one `GET /version` goes over the
 * same connection and must be answered within `pingTimeoutMs` (15 s); otherwise the connection
 * is dead, a new one takes over, and every attempt in flight on the old one fails at once with a
 * {@linkcode ConnectionError} whose `dead` is true. `/version` because every client may read it
 * (the `system:public-info-viewer` role is bound to authenticated and unauthenticated users),
 * the server answers it from memory without touching etcd (a slow etcd is not a dead
 * connection, `/readyz` would wait on it), and its answer is a few hundred bytes. Any HTTP
 * status counts as an answer: the question is whether the connection carries bytes.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Agent as HttpsAgent } from "node:https";
import type { TlsSettings } from "./config/mod.ts";
import { ConnectionError } from "./errors.ts";
import { ConnectionHealth, type ConnectionHealthOptions, type HealthTimers } from "./_health.ts";
import { type ReaderConnectionOptions, StreamReader } from "./_stream_reader.ts";

const logger = getLogger(["kopf", "kube"]);

/** One request as the client hands it to a transport. */
export interface TransportRequest {
  method: string;
  url: string;
  /**
   * Header name and value pairs: a name may repeat (`Impersonate-Group`). Plain pairs cost
   * `fetch` a third of what a `Headers` does (no sorted iteration, fewer conversions).
   */
  headers: readonly (readonly [string, string])[];
  body?: string | Uint8Array<ArrayBuffer>;
  signal: AbortSignal;
  /**
   * Whether the body streams (a watch): then the response comes once its headers arrived.
   * Otherwise the body is read within the attempt and comes as `text`.
   */
  stream: boolean;
  /** Client certificate from the credentials (exec plugins may return one). */
  certPem?: string;
  keyPem?: string;
}

/** A transport's answer: the response, and for a request that does not stream, its body. */
export interface TransportResponse {
  /** The response; its body is already read unless the request streams. */
  response: Response;
  /** The body of a request that does not stream. */
  text?: string;
}

/** Sends requests to one cluster. */
export interface Transport {
  /** `"fetch"` or `"node-https"`, for logs and tests. */
  readonly kind: string;
  /**
   * Whether a silent connection is found out by the health check, watches included (then a
   * silent watch is a quiet resource, not a dead connection).
   */
  readonly checksConnections: boolean;
  /** Counters of the health checks. */
  readonly stats: TransportStats;
  /**
   * Resolves with the response once its headers arrived (a stream; its body streams) or its body
   * was read (any other request). Rejects with the signal's reason when it aborts, and with a
   * {@linkcode ConnectionError} (`dead: true`) when the connection is found dead (the body of a
   * stream fails the same way).
   */
  send(request: TransportRequest): Promise<TransportResponse>;
  /** Releases connections. */
  close(): void;
}

/** Where a request failed, which decides whether retrying is safe. */
export type FailurePhase =
  /** Before anything was sent (refused, DNS, unreachable): safe to retry any request. */
  | "connect"
  /** The server's certificate did not verify: retrying cannot help. */
  | "tls"
  /** After the request may have been sent: only idempotent requests may be retried. */
  | "transfer"
  /**
   * Deno refused the operation (`NotCapable`: a permission the process was not granted): nothing
   * was sent, and retrying cannot help, so the request fails at once with the reason.
   */
  | "denied";

/** Picks the transport a cluster's TLS settings need, for the API server at `server`. */
export function createTransport(
  tls: TlsSettings,
  server: string,
  options: TransportOptions = {},
): Transport {
  if (tls.insecureSkipTlsVerify || tls.tlsServerName) {
    return new NodeHttpsTransport(tls, server, options);
  }
  return new FetchTransport(tls, server, options);
}

/** Classifies a transport error (anything but an abort) by where it happened. */
export function failurePhase(error: unknown): FailurePhase {
  if (isNotCapable(error)) return "denied";
  const code = errorCode(error);
  if (code && CONNECT_CODES.has(code)) return "connect";
  if (code && (TLS_CODES.has(code) || code.startsWith("ERR_TLS") || code.startsWith("CERT_"))) {
    return "tls";
  }
  const text = errorText(error);
  if (/invalid peer certificate|certificate verify|UnknownIssuer|NotValidForName/i.test(text)) {
    return "tls";
  }
  // Deno's fetch: "client error (Connect): tcp connect error / dns error / ..." happens before
  // any byte of the request left; "(SendRequest)" may be after.
  if (/client error \(Connect\)|tcp connect error|dns error|Connection refused/i.test(text)) {
    return "connect";
  }
  return "transfer";
}

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

const TLS_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
]);

function isNotCapable(error: unknown): boolean {
  for (let e: unknown = error, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof Deno.errors.NotCapable) return true;
  }
  return false;
}

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(" | ");
}

/** The probe of the connection health check. */
export const PROBE_PATH = "/version";

/** Options of {@linkcode createTransport}: the connection health check (see `_health.ts`). */
export interface TransportOptions {
  /** Silence while requests are in flight before a probe, ms (default 30 000; `0`: no check). */
  readIdleTimeoutMs?: number;
  /** How long a probe may take before the connection counts as dead, ms (default 15 000). */
  pingTimeoutMs?: number;
  /** Timers of the health check (tests). */
  timers?: HealthTimers;
}

/** Counters of a transport's connection health checks. */
export interface TransportStats {
  /** Probes sent, over all connections. */
  probes: number;
  /** Connections found dead and replaced. */
  deadConnections: number;
}

/** One request in flight on a connection: what to abort, and what to name when it fails. */
interface Attempt {
  controller: AbortController;
  verb: string;
  url: string;
}

/**
 * One pooled connection (a `Deno.HttpClient`, or a `node:https` agent) with its health check
 * and the attempts in flight on it.
 */
class Connection<H> {
  readonly attempts = new Set<Attempt>();
  readonly health: ConnectionHealth;
  /** Headers of the latest request: the probe carries the same credentials. */
  lastHeaders?: TransportRequest["headers"];

  constructor(
    readonly handle: H,
    options: Omit<ConnectionHealthOptions, "probe" | "onDead">,
    probe: (connection: Connection<H>, signal: AbortSignal) => Promise<void>,
    onDead: (connection: Connection<H>, reason: string) => void,
  ) {
    this.health = new ConnectionHealth({
      ...options,
      probe: (signal) => probe(this, signal),
      onDead: (reason) => onDead(this, reason),
    });
  }
}

/**
 * The connections of one transport, keyed by client certificate, with the health check: a
 * connection found dead is dropped (new requests get a new one), and every attempt in flight on
 * it is aborted with a {@linkcode ConnectionError} that says so (closing a `Deno.HttpClient` does
 * not end the requests under way on it: they would hang until the peer's TCP stack gave up).
 */
class Connections<H> {
  #map = new Map<string, Connection<H>>();
  #server: string;
  #options: Required<Omit<TransportOptions, "timers">> & { timers?: HealthTimers };
  #destroy: (handle: H) => void;
  #probe: (handle: H, headers: Headers, signal: AbortSignal) => Promise<void>;
  #retiredProbes = 0;
  #dead = 0;
  #onDeadHook?: () => void;

  constructor(init: {
    server: string;
    options: TransportOptions;
    destroy: (handle: H) => void;
    probe: (handle: H, headers: Headers, signal: AbortSignal) => Promise<void>;
    /** Called after a connection was found dead and replaced. */
    onDead?: () => void;
  }) {
    this.#onDeadHook = init.onDead;
    this.#server = init.server;
    this.#options = {
      readIdleTimeoutMs: init.options.readIdleTimeoutMs ?? 30_000,
      pingTimeoutMs: init.options.pingTimeoutMs ?? 15_000,
      timers: init.options.timers,
    };
    this.#destroy = init.destroy;
    this.#probe = init.probe;
  }

  get stats(): TransportStats {
    let probes = this.#retiredProbes;
    for (const connection of this.#map.values()) probes += connection.health.probes;
    return { probes, deadConnections: this.#dead };
  }

  /** The live connection for `key`, made by `create` if there is none. */
  get(key: string, create: () => H): Connection<H> {
    let connection = this.#map.get(key);
    if (!connection) {
      connection = new Connection<H>(
        create(),
        this.#options,
        (c, signal) => this.#sendProbe(c, signal),
        (c, reason) => this.#onDead(key, c, reason),
      );
      this.#map.set(key, connection);
    }
    return connection;
  }

  /**
   * Runs one attempt on `connection`: `open` starts it with a signal that aborts when the
   * request's own signal does or when the connection is found dead. A stream's body is
   * instrumented: every chunk counts as bytes received, and the attempt ends with the body.
   * Any other body is read here, in one piece: the attempt ends with it, and no second stream
   * wraps the first (a third of the client's cost per request, measured by bench/http_bench.ts).
   */
  async track(
    connection: Connection<H>,
    request: TransportRequest,
    open: (signal: AbortSignal) => Promise<Response>,
  ): Promise<TransportResponse> {
    const outer = request.signal;
    outer.throwIfAborted();
    const controller = new AbortController();
    const attempt: Attempt = { controller, verb: request.method, url: request.url };
    const forward = () => controller.abort(outer.reason);
    outer.addEventListener("abort", forward, { once: true });
    connection.attempts.add(attempt);
    connection.lastHeaders = request.headers;
    const end = connection.health.begin();
    const finish = () => {
      end();
      connection.attempts.delete(attempt);
      outer.removeEventListener("abort", forward);
    };
    let response: Response;
    let text: string | undefined;
    try {
      response = await open(controller.signal);
      if (!request.stream) text = await response.text();
    } catch (error) {
      finish();
      throw controller.signal.aborted ? controller.signal.reason : error;
    }
    connection.health.received();
    if (!request.stream || !response.body) {
      finish();
      return { response, text };
    }
    return { response: instrumented(response, connection.health, controller.signal, finish) };
  }

  /**
   * Another connection to the same server was found dead, and these may be too (a frozen network
   * path freezes every connection on it): an idle one is dropped (the next request makes a new
   * one, which costs a handshake, not a probe), a busy one is probed at once.
   */
  suspect(): void {
    for (const [key, connection] of this.#map) {
      if (connection.health.inFlight > 0) {
        connection.health.probeNow();
        continue;
      }
      this.#map.delete(key);
      this.#retiredProbes += connection.health.probes;
      connection.health.close();
      this.#destroy(connection.handle);
    }
  }

  /** Closes every connection (requests under way end as the handles' close makes them). */
  close(): void {
    for (const connection of this.#map.values()) {
      this.#retiredProbes += connection.health.probes;
      connection.health.close();
      this.#destroy(connection.handle);
    }
    this.#map.clear();
  }

  async #sendProbe(connection: Connection<H>, signal: AbortSignal): Promise<void> {
    const headers = new Headers({ Accept: "application/json" });
    for (const [name, value] of connection.lastHeaders ?? []) {
      const lower = name.toLowerCase();
      if (lower === "authorization" || lower === "user-agent") headers.set(lower, value);
    }
    await this.#probe(connection.handle, headers, signal);
  }

  #onDead(key: string, connection: Connection<H>, reason: string): void {
    if (this.#map.get(key) === connection) this.#map.delete(key);
    this.#dead++;
    this.#retiredProbes += connection.health.probes;
    const attempts = [...connection.attempts];
    const watches = attempts.filter((a) => WATCH_QUERY.test(a.url)).length;
    logger.warn(
      "The connection to {server} is dead ({reason}): replaced by a new one; " +
        "{requests} request(s) and {watches} watch(es) in flight on it fail over.",
      { server: this.#server, reason, requests: attempts.length - watches, watches },
    );
    for (const attempt of attempts) {
      attempt.controller.abort(
        new ConnectionError({
          verb: attempt.verb,
          url: attempt.url,
          cause: new Error(reason),
          maybeSent: true,
          dead: true,
        }),
      );
    }
    connection.health.close();
    this.#destroy(connection.handle);
    this.#onDeadHook?.();
  }
}

const WATCH_QUERY = /[?&]watch=(true|1)(&|$)/;

/**
 * A copy of `response` whose body reports every chunk to `health` and calls `finish` once when
 * it ends: read to the end, failed, cancelled by the reader, or aborted by `signal` (which
 * errors the body with the signal's reason, e.g. the dead connection's {@linkcode ConnectionError}).
 */
function instrumented(
  response: Response,
  health: ConnectionHealth,
  signal: AbortSignal,
  finish: () => void,
): Response {
  const reader = response.body!.getReader();
  let ended = false;
  const end = () => {
    if (ended) return false;
    ended = true;
    signal.removeEventListener("abort", onAbort);
    finish();
    return true;
  };
  let onAbort = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      onAbort = () => {
        if (!end()) return;
        controller.error(signal.reason);
        reader.cancel(signal.reason).catch(() => {});
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (end()) controller.error(signal.aborted ? signal.reason : error);
        return;
      }
      if (ended) return;
      if (chunk.done) {
        end();
        controller.close();
        return;
      }
      health.received();
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * Deno's `fetch` with one `Deno.HttpClient` for the cluster's requests. The API server speaks
 * HTTP/2, so a client is one TCP connection that every request shares: the health check of the
 * client is the health check of that connection. Watches go over a second connection, read on a
 * thread of their own (`_stream_reader.ts`: a busy main thread must not stall them), with the
 * same health check. A new connection is made when the client certificate changes (exec plugins
 * can rotate it) and when one is found dead. Where Workers cannot run, watches share the
 * requests' connection on the main thread.
 */
class FetchTransport implements Transport {
  readonly kind = "fetch";
  readonly checksConnections: boolean;
  #tls: TlsSettings;
  #connections: Connections<Deno.HttpClient>;
  /** The watches' connections: ids of the reader's. */
  #streams: Connections<number>;
  #reader = new StreamReader();
  #closed = false;

  constructor(tls: TlsSettings, server: string, options: TransportOptions) {
    this.#tls = tls;
    this.checksConnections = (options.readIdleTimeoutMs ?? 30_000) > 0;
    this.#connections = new Connections<Deno.HttpClient>({
      server,
      options,
      destroy: (client) => client.close(),
      probe: async (client, headers, signal) => {
        const response = await fetch(server + PROBE_PATH, { headers, signal, client });
        await response.arrayBuffer();
      },
      // The same network path: the watches' connection is suspect too (and vice versa).
      onDead: () => this.#streams.suspect(),
    });
    this.#streams = new Connections<number>({
      onDead: () => this.#connections.suspect(),
      server,
      options,
      destroy: (conn) => this.#reader.disconnect(conn),
      probe: async (conn, headers, signal) => {
        const url = server + PROBE_PATH;
        const response = await this.#reader.open(conn, { url, headers: [...headers], signal });
        await response.arrayBuffer();
      },
    });
    this.#connection(tls.certPem, tls.keyPem); // fail early on a bad CA or key
  }

  get stats(): TransportStats {
    const requests = this.#connections.stats;
    const streams = this.#streams.stats;
    return {
      probes: requests.probes + streams.probes,
      deadConnections: requests.deadConnections + streams.deadConnections,
    };
  }

  send(request: TransportRequest): Promise<TransportResponse> {
    if (this.#closed) return Promise.reject(new Error("the client is closed"));
    const certPem = request.certPem ?? this.#tls.certPem;
    const keyPem = request.keyPem ?? this.#tls.keyPem;
    if (request.stream && request.method === "GET" && this.#reader.usable) {
      const connection = this.#streams.get(
        connectionKey(certPem, keyPem),
        () => this.#reader.connect(this.#clientOptions(certPem, keyPem)),
      );
      return this.#streams.track(
        connection,
        request,
        (signal) =>
          this.#reader.open(connection.handle, {
            url: request.url,
            headers: request.headers,
            signal,
          }),
      );
    }
    const connection = this.#connection(certPem, keyPem);
    return this.#connections.track(connection, request, (signal) =>
      fetch(request.url, {
        method: request.method,
        headers: request.headers as [string, string][],
        body: request.body,
        signal,
        client: connection.handle,
        redirect: "manual",
      }));
  }

  close(): void {
    this.#closed = true;
    this.#connections.close();
    this.#streams.close();
    this.#reader.close();
  }

  #connection(certPem?: string, keyPem?: string): Connection<Deno.HttpClient> {
    return this.#connections.get(
      connectionKey(certPem, keyPem),
      () => Deno.createHttpClient(this.#clientOptions(certPem, keyPem)),
    );
  }

  #clientOptions(certPem?: string, keyPem?: string): ReaderConnectionOptions {
    const options: ReaderConnectionOptions = {};
    if (this.#tls.caPem) options.caCerts = [this.#tls.caPem];
    if (this.#tls.proxyUrl) options.proxy = { url: this.#tls.proxyUrl };
    if (certPem && keyPem) {
      options.cert = certPem;
      options.key = keyPem;
    }
    return options;
  }
}

/** Connections are per client certificate. */
function connectionKey(certPem?: string, keyPem?: string): string {
  return certPem && keyPem ? `${certPem}\0${keyPem}` : "";
}

/**
 * `node:https` with one keep-alive agent, for skip-verify and tls-server-name clusters.
 *
 * HTTP/1.1 carries one request per socket, so the health check is the agent's, not one
 * connection's: it probes through the agent after `readIdleTimeoutMs` of silence on all of its
 * sockets together. The probe takes a free kept-alive socket when there is one, else a new
 * socket; a probe that fails or gets no answer destroys every socket of the agent (new requests
 * get a new agent) and fails every attempt in flight, as for `fetch`. A probe that succeeds on a
 * new socket cannot vouch for the busy ones, so `checksConnections` is `false`: a silent socket
 * among healthy ones is bounded by the per-verb deadlines of requests, and for watches by the
 * watch loop's idle timer, which stays on for this transport.
 */
class NodeHttpsTransport implements Transport {
  readonly kind = "node-https";
  readonly checksConnections = false;
  #tls: TlsSettings;
  #connections: Connections<HttpsAgent>;
  #modules?: Promise<NodeModules>;
  #closed = false;

  constructor(tls: TlsSettings, server: string, options: TransportOptions) {
    if (tls.proxyUrl) {
      throw new TypeError(
        "proxy-url cannot be combined with insecure-skip-tls-verify or tls-server-name",
      );
    }
    this.#tls = tls;
    this.#connections = new Connections<HttpsAgent>({
      server,
      options,
      destroy: (agent) => agent.destroy(),
      probe: async (agent, headers, signal) => {
        const response = await this.#request(agent, {
          method: "GET",
          url: server + PROBE_PATH,
          headers: [...headers],
          signal,
          stream: false,
        });
        await response.arrayBuffer();
      },
    });
  }

  get stats(): TransportStats {
    return this.#connections.stats;
  }

  async send(request: TransportRequest): Promise<TransportResponse> {
    if (this.#closed) throw new Error("the client is closed");
    this.#modules ??= loadNodeModules();
    const { https, http } = await this.#modules;
    const secure = new URL(request.url).protocol === "https:";
    const certPem = request.certPem ?? this.#tls.certPem;
    const keyPem = request.keyPem ?? this.#tls.keyPem;
    const connection = this.#connections.get(
      `${secure}\0${certPem ?? ""}\0${keyPem ?? ""}`,
      () =>
        secure
          ? new https.Agent({
            keepAlive: true,
            // Without a `ca`, Deno's node:https reads the system's CA store, which needs
            // `--allow-sys` (and "ca" is no valid descriptor of it): the sandbox would refuse
            // every request. A cluster that skips verification needs no CA at all.
            ca: this.#tls.caPem ?? (this.#tls.insecureSkipTlsVerify ? [] : undefined),
            cert: certPem,
            key: keyPem,
            rejectUnauthorized: !this.#tls.insecureSkipTlsVerify,
            servername: this.#tls.tlsServerName,
          })
          : new http.Agent({ keepAlive: true }) as unknown as HttpsAgent,
    );
    return await this.#connections.track(
      connection,
      request,
      (signal) => this.#request(connection.handle, { ...request, signal }),
    );
  }

  close(): void {
    this.#closed = true;
    this.#connections.close();
  }

  async #request(agent: HttpsAgent, request: TransportRequest): Promise<Response> {
    this.#modules ??= loadNodeModules();
    const { https, http, Readable } = await this.#modules;
    const url = new URL(request.url);
    const secure = url.protocol === "https:";
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of request.headers) {
      const key = name.toLowerCase();
      const had = headers[key];
      headers[key] = had === undefined ? value : [had, value].flat();
    }
    return await new Promise<Response>((resolve, reject) => {
      const req = (secure ? https : http).request(url, {
        method: request.method,
        headers,
        agent,
        signal: request.signal,
      });
      req.on("response", (res) => {
        const responseHeaders = new Headers();
        for (const [key, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const v of [value].flat()) responseHeaders.append(key, String(v));
        }
        const status = res.statusCode ?? 0;
        const body = status === 204 || status === 304 || request.method === "HEAD"
          ? null
          : Readable.toWeb(res) as ReadableStream<Uint8Array>;
        if (!body) res.resume();
        resolve(
          new Response(body, { status, statusText: res.statusMessage, headers: responseHeaders }),
        );
      });
      req.on("error", (error) => reject(request.signal.aborted ? request.signal.reason : error));
      req.end(request.body);
    });
  }
}

interface NodeModules {
  https: typeof import("node:https");
  http: typeof import("node:http");
  Readable: typeof import("node:stream").Readable;
}

async function loadNodeModules(): Promise<NodeModules> {
  const [https, http, stream] = await Promise.all([
    import("node:https"),
    import("node:http"),
    import("node:stream"),
  ]);
  return { https: https.default, http: http.default, Readable: stream.Readable };
}
