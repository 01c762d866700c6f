/**
 * The webhook server's HTTP side: one listener on an address, answering `POST <path>/<webhook>`
 * with the operator's {@linkcode WebhookFn}, refusing anything else with a 4xx and a one-line
 * reason (logged once as a warning), and serving a new certificate when the files change.
 *
 * Two servers stand behind it. Deno's own (`Deno.serve`, over rustls) serves HTTP and HTTPS; it
 * cannot ask clients for certificates, so when client certificates are to be verified,
 * `node:https` (Deno's Node compatibility, over the same TLS stack of OpenSSL's semantics) serves
 * instead, with `requestCert` and the CA bundle to verify against. A certificate change restarts
 * Deno's server on the same port (a moment without a listener) and swaps the secure context of
 * Node's in place.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type AdmissionReview,
  type SSLPeer,
  WebhookError,
  type WebhookFn,
} from "../storage/reviews.ts";

const logger = getLogger(["kopf", "webhooks"]);

/**
 * How client certificates are verified (Kopf's `verify_mode`): not asked for, checked when
 * presented, or required (a client without one of the right CA is refused in the handshake).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const verifyMode: kopf.VerifyMode = "required";
 * const server = new kopf.WebhookServer({ verifyMode, verifyCaFile: "/etc/kubernetes/ca.crt" });
 * ```
 */
export type VerifyMode = "none" | "optional" | "required";

/** TLS of a listener. */
export interface ListenerTls {
  /** The serving certificate (PEM, with its chain). */
  readonly cert: string;
  /** Its private key (PEM, unencrypted). */
  readonly key: string;
  /** Verify client certificates against these CAs (PEM); absent: do not ask for them. */
  readonly verify?: { readonly mode: "optional" | "required"; readonly ca: string };
}

/** What {@linkcode listen} needs. */
export interface ListenOptions {
  /** The address to bind to. */
  readonly hostname: string;
  /** The port (0: a free one, kept over restarts). */
  readonly port: number;
  /** The path prefix of the webhooks (`""` or `/something`, no trailing slash). */
  readonly prefix: string;
  /** HTTPS (absent: plain HTTP). */
  readonly tls?: ListenerTls;
  /** Largest request body accepted, in bytes. */
  readonly maxBodySize: number;
  /** The operator's function answering reviews. */
  readonly fn: WebhookFn;
}

/** A listening webhook endpoint. */
export interface Listener {
  /** The bound address. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /** Serve with another certificate from now on (connections made before keep theirs). */
  update(tls: ListenerTls): Promise<void>;
  /** Stop accepting, finish the requests in flight, close. */
  close(): Promise<void>;
}

/** A request as either server sees it. */
interface RawRequest {
  readonly method: string;
  readonly pathname: string;
  readonly headers: Record<string, string>;
  readonly contentLength: number | undefined;
  readonly body: AsyncIterable<Uint8Array> | null;
  readonly sslpeer: SSLPeer;
  readonly remote: string;
  readonly signal?: AbortSignal;
}

/** An answer as either server sends it. */
interface RawResponse {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
  readonly headers?: Record<string, string>;
}

/** A refusal: the HTTP code and the one-line reason, for the client and the log. */
class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const REASONS: Readonly<Record<number, string>> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  500: "Internal Server Error",
};

async function readBody(request: RawRequest, limit: number): Promise<string> {
  if (request.contentLength !== undefined && request.contentLength > limit) {
    throw new Refusal(413, `the body of ${request.contentLength} bytes is over ${limit} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > limit) throw new Refusal(413, `the body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    throw new Refusal(400, "the body is not UTF-8 text");
  }
}

/** Answers one HTTP request: routing, limits, parsing, the operator's function, refusals. */
async function answer(request: RawRequest, options: ListenOptions): Promise<RawResponse> {
  const where = `${request.method} ${request.pathname} from ${request.remote}`;
  try {
    const { prefix } = options;
    if (!request.pathname.startsWith(`${prefix}/`)) {
      throw new Refusal(404, `no webhooks are served at ${request.pathname}`);
    }
    const encoded = request.pathname.slice(prefix.length + 1);
    let webhook: string;
    try {
      webhook = decodeURIComponent(encoded);
    } catch {
      throw new Refusal(400, `the path ${request.pathname} is not URL-encoded properly`);
    }
    if (!webhook) throw new Refusal(404, `no webhook is named in the path ${request.pathname}`);
    if (request.method !== "POST") {
      throw new Refusal(405, `webhooks take POST requests, not ${request.method}`);
    }
    const text = await readBody(request, options.maxBodySize);
    let review: AdmissionReview;
    try {
      review = JSON.parse(text);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Refusal(400, `the body is not JSON: ${reason}`);
    }
    const response = await options.fn(review, {
      webhook,
      headers: request.headers,
      sslpeer: request.sslpeer,
      signal: request.signal,
    });
    return { status: 200, body: JSON.stringify(response), contentType: "application/json" };
  } catch (error) {
    if (!(error instanceof Refusal || error instanceof WebhookError)) throw error;
    const status = error instanceof Refusal ? error.status : error.status;
    const reason = error.message.split("\n")[0];
    logger.warn("Webhook request refused with {status}: {reason} ({where}).", {
      status,
      reason,
      where,
    });
    const headers: Record<string, string> = status === 405 ? { allow: "POST" } : {};
    return {
      status,
      body: `${status}: ${REASONS[status] ?? "Error"}: ${reason}\n`,
      contentType: "text/plain; charset=utf-8",
      headers,
    };
  }
}

/** The server's own failure (a bug, not the client's): logged with its stack, answered 500. */
function failure(error: unknown, where: string): RawResponse {
  logger.error("Serving a webhook request failed ({where}): {error}", { where, error });
  return {
    status: 500,
    body: "500: Internal Server Error\n",
    contentType: "text/plain; charset=utf-8",
  };
}

/**
 * Start listening. HTTPS with client-certificate verification uses `node:https`; everything
 * else Deno's own server. Throws if the address cannot be bound.
 */
export function listen(options: ListenOptions): Promise<Listener> {
  return options.tls?.verify ? listenNode(options) : listenDeno(options);
}

// --- Deno.serve ------------------------------------------------------------------------------

async function startDeno(
  options: ListenOptions,
  port: number,
  tls: ListenerTls | undefined,
): Promise<{ server: Deno.HttpServer<Deno.NetAddr>; addr: Deno.NetAddr }> {
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const handler = async (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const url = new URL(request.url);
    const raw: RawRequest = {
      method: request.method,
      pathname: url.pathname,
      headers: Object.fromEntries(request.headers),
      contentLength: request.headers.has("content-length")
        ? Number(request.headers.get("content-length"))
        : undefined,
      body: request.body,
      sslpeer: {},
      remote: `${info.remoteAddr.hostname}:${info.remoteAddr.port}`,
      // Not request.signal: Deno aborts it after every response too (its legacy behaviour);
      // a handler is bounded by its webhook's timeout anyway.
    };
    let out: RawResponse;
    try {
      out = await answer(raw, options);
    } catch (error) {
      out = failure(error, `${raw.method} ${raw.pathname} from ${raw.remote}`);
    }
    return new Response(out.body, {
      status: out.status,
      headers: { "content-type": out.contentType, ...out.headers },
    });
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname,
      port,
      ...(tls ? { cert: tls.cert, key: tls.key } : {}),
      onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
      onError: (error) => {
        logger.error("The webhook server failed: {error}", { error });
        return new Response("500: Internal Server Error\n", { status: 500 });
      },
    }, handler);
  } catch (error) {
    // Deno's own words (e.g. "Address already in use (os error 98)"), with where.
    throw new Error(
      `the webhook server could not listen on ${options.hostname}:${port}: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
  server.finished.catch(() => {});
  const addr = await Promise.race([
    listening.promise,
    server.finished.then(() => {
      throw new Error(`the webhook server could not listen on ${options.hostname}:${port}`);
    }),
  ]);
  return { server, addr };
}

async function listenDeno(options: ListenOptions): Promise<Listener> {
  let { server, addr } = await startDeno(options, options.port, options.tls);
  return {
    hostname: addr.hostname,
    port: addr.port,
    async update(tls) {
      // Deno's server cannot change its certificate, and sharing the port (SO_REUSEPORT) with
      // TLS is unstable API: the old server stops accepting (finishing its requests), the new
      // one listens on the same port. A request arriving in between fails to connect, and the
      // API server applies the webhook's failurePolicy to it.
      await server.shutdown();
      ({ server, addr } = await startDeno(options, addr.port, tls));
    },
    async close() {
      await server.shutdown();
    },
  };
}

// --- node:https (client certificates) ---------------------------------------------------------

/** Python's `getpeercert()` names of the attributes Node abbreviates. */
const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  CN: "commonName",
  O: "organizationName",
  OU: "organizationalUnitName",
  C: "countryName",
  ST: "stateOrProvinceName",
  L: "localityName",
  DC: "domainComponent",
  emailAddress: "emailAddress",
  serialNumber: "serialNumber",
};

function distinguishedName(
  name: Record<string, string | string[]> | undefined,
): [string, string][][] {
  const rdns: [string, string][][] = [];
  for (const [key, value] of Object.entries(name ?? {})) {
    for (const one of Array.isArray(value) ? value : [value]) {
      rdns.push([[ATTRIBUTE_NAMES[key] ?? key, one]]);
    }
  }
  return rdns;
}

/** A verified peer certificate of `node:tls` in the shape of Python's `getpeercert()`. */
export function sslPeerOf(
  cert:
    | {
      subject?: Record<string, string | string[]>;
      issuer?: Record<string, string | string[]>;
      serialNumber?: string;
      valid_from?: string;
      valid_to?: string;
      subjectaltname?: string;
    }
    | null
    | undefined,
): SSLPeer {
  if (!cert || !cert.subject) return {};
  const peer: SSLPeer = {
    subject: distinguishedName(cert.subject),
    issuer: distinguishedName(cert.issuer),
    version: 3,
  };
  if (cert.serialNumber) peer.serialNumber = cert.serialNumber.toUpperCase();
  if (cert.valid_from) peer.notBefore = cert.valid_from;
  if (cert.valid_to) peer.notAfter = cert.valid_to;
  if (cert.subjectaltname) {
    peer.subjectAltName = cert.subjectaltname.split(/,\s*/).map((entry) => {
      const i = entry.indexOf(":");
      return [entry.slice(0, i), entry.slice(i + 1)] as [string, string];
    });
  }
  return peer;
}

async function listenNode(options: ListenOptions): Promise<Listener> {
  const https = await import("node:https");
  const tls = options.tls!;
  const verify = tls.verify!;
  const server = https.createServer({
    cert: tls.cert,
    key: tls.key,
    ca: verify.ca,
    requestCert: true,
    rejectUnauthorized: verify.mode === "required",
  }, async (req, res) => {
    // deno-lint-ignore no-explicit-any
    const socket = req.socket as any;
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(", ") : value;
    }
    const controller = new AbortController();
    res.on("close", () => controller.abort());
    const raw: RawRequest = {
      method: req.method ?? "GET",
      pathname: new URL(req.url ?? "/", "https://localhost").pathname,
      headers,
      contentLength: headers["content-length"] ? Number(headers["content-length"]) : undefined,
      body: req as AsyncIterable<Uint8Array>,
      sslpeer: socket.authorized ? sslPeerOf(socket.getPeerCertificate?.()) : {},
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      signal: controller.signal,
    };
    let out: RawResponse;
    try {
      out = await answer(raw, options);
    } catch (error) {
      out = failure(error, `${raw.method} ${raw.pathname} from ${raw.remote}`);
    }
    res.writeHead(out.status, { "content-type": out.contentType, ...out.headers });
    res.end(out.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: Error) =>
      reject(
        new Error(
          `the webhook server could not listen on ${options.hostname}:${options.port}: ${error.message}`,
        ),
      ));
    server.listen(options.port, options.hostname, () => resolve());
  });
  server.on(
    "error",
    (error: Error) => logger.error("The webhook server failed: {error}", { error }),
  );
  const address = server.address() as { address: string; port: number };
  return {
    hostname: address.address,
    port: address.port,
    update(next) {
      server.setSecureContext({ cert: next.cert, key: next.key, ca: next.verify?.ca ?? verify.ca });
      return Promise.resolve();
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive connections would hold the close forever.
        server.closeIdleConnections?.();
      });
    },
  };
}
