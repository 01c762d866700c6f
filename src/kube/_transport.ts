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
 * @module
 */

import type { Agent as HttpsAgent } from "node:https";
import type { TlsSettings } from "./config/mod.ts";

/** One request as the client hands it to a transport. */
export interface TransportRequest {
  method: string;
  url: string;
  headers: Headers;
  body?: string | Uint8Array<ArrayBuffer>;
  signal: AbortSignal;
  /** Client certificate from the credentials (exec plugins may return one). */
  certPem?: string;
  keyPem?: string;
}

/** Sends requests to one cluster. */
export interface Transport {
  /** `"fetch"` or `"node-https"`, for logs and tests. */
  readonly kind: string;
  /** Resolves with the response once its headers arrived; the body streams. */
  send(request: TransportRequest): Promise<Response>;
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
  | "transfer";

/** Picks the transport a cluster's TLS settings need. */
export function createTransport(tls: TlsSettings): Transport {
  if (tls.insecureSkipTlsVerify || tls.tlsServerName) return new NodeHttpsTransport(tls);
  return new FetchTransport(tls);
}

/** Classifies a transport error (anything but an abort) by where it happened. */
export function failurePhase(error: unknown): FailurePhase {
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

/**
 * Deno's `fetch` with one `Deno.HttpClient` (connection pool, HTTP/2) for the cluster. A new
 * client is made only when the client certificate changes (exec plugins can rotate it); the
 * old one is closed with the transport, since open watch streams may still use it.
 */
class FetchTransport implements Transport {
  readonly kind = "fetch";
  #tls: TlsSettings;
  #clients = new Map<string, Deno.HttpClient>();
  #closed = false;

  constructor(tls: TlsSettings) {
    this.#tls = tls;
    this.#client(tls.certPem, tls.keyPem); // fail early on a bad CA or key
  }

  send(request: TransportRequest): Promise<Response> {
    if (this.#closed) return Promise.reject(new Error("the client is closed"));
    const client = this.#client(
      request.certPem ?? this.#tls.certPem,
      request.keyPem ?? this.#tls.keyPem,
    );
    return fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: request.signal,
      client,
      redirect: "manual",
    });
  }

  close(): void {
    this.#closed = true;
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #client(certPem?: string, keyPem?: string): Deno.HttpClient {
    const key = certPem && keyPem ? `${certPem}\0${keyPem}` : "";
    let client = this.#clients.get(key);
    if (!client) {
      const options: Deno.CreateHttpClientOptions & Partial<Deno.TlsCertifiedKeyPem> = {};
      if (this.#tls.caPem) options.caCerts = [this.#tls.caPem];
      if (this.#tls.proxyUrl) options.proxy = { url: this.#tls.proxyUrl };
      if (certPem && keyPem) {
        options.cert = certPem;
        options.key = keyPem;
      }
      client = Deno.createHttpClient(options);
      this.#clients.set(key, client);
    }
    return client;
  }
}

/** `node:https` with one keep-alive agent, for skip-verify and tls-server-name clusters. */
class NodeHttpsTransport implements Transport {
  readonly kind = "node-https";
  #tls: TlsSettings;
  #agents = new Map<string, HttpsAgent>();
  #modules?: Promise<NodeModules>;
  #closed = false;

  constructor(tls: TlsSettings) {
    if (tls.proxyUrl) {
      throw new TypeError(
        "proxy-url cannot be combined with insecure-skip-tls-verify or tls-server-name",
      );
    }
    this.#tls = tls;
  }

  async send(request: TransportRequest): Promise<Response> {
    if (this.#closed) throw new Error("the client is closed");
    this.#modules ??= loadNodeModules();
    const { https, http, Readable } = await this.#modules;
    const url = new URL(request.url);
    const certPem = request.certPem ?? this.#tls.certPem;
    const keyPem = request.keyPem ?? this.#tls.keyPem;
    const secure = url.protocol === "https:";
    const agentKey = `${secure}\0${certPem ?? ""}\0${keyPem ?? ""}`;
    let agent = this.#agents.get(agentKey);
    if (!agent) {
      agent = secure
        ? new https.Agent({
          keepAlive: true,
          ca: this.#tls.caPem,
          cert: certPem,
          key: keyPem,
          rejectUnauthorized: !this.#tls.insecureSkipTlsVerify,
          servername: this.#tls.tlsServerName,
        })
        : new http.Agent({ keepAlive: true }) as unknown as HttpsAgent;
      this.#agents.set(agentKey, agent);
    }
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => headers[key] = value);
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

  close(): void {
    this.#closed = true;
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
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
