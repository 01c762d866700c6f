/**
 * Typed errors of the Kubernetes client layer.
 *
 * - {@linkcode ConfigError}: the kubeconfig / in-cluster setup cannot be used (raised early).
 * - {@linkcode ApiError}: the API server answered with a non-2xx status.
 * - {@linkcode ConnectionError}: the API server could not be reached (after retries).
 * - {@linkcode RequestTimeoutError}: no complete answer within the request timeout.
 *
 * Every message names what was being done, so one log line is enough to act on it.
 *
 * @module
 */

import { describePath } from "./resource.ts";

/**
 * The cluster configuration cannot be used: a missing or unreadable kubeconfig, bad YAML,
 * an unknown context, a missing certificate file, a failing exec plugin, and so on.
 *
 * The message is one line naming the file (or `in-cluster`) and the field.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./errors.ts";
 * const error = new ConfigError("context \"prod\" not found (known: dev, test)", {
 *   source: "/home/me/.kube/config",
 *   field: "current-context",
 * });
 * error.message; // 'kubeconfig /home/me/.kube/config: current-context: context "prod" not found (known: dev, test)'
 * ```
 */
export class ConfigError extends Error {
  /** Where the configuration came from: a file path, or `in-cluster`. */
  readonly source?: string;
  /** The offending field, e.g. `users[admin].client-certificate`. */
  readonly field?: string;

  /** Creates the error; `source` and `field` are prefixed to the message. */
  constructor(message: string, options: { source?: string; field?: string; cause?: unknown } = {}) {
    const where = options.source === undefined
      ? ""
      : options.source === "in-cluster"
      ? "in-cluster config: "
      : `kubeconfig ${options.source}: `;
    const field = options.field ? `${options.field}: ` : "";
    super(`${where}${field}${message}`, { cause: options.cause });
    this.name = "ConfigError";
    this.source = options.source;
    this.field = options.field;
  }
}

/**
 * The `details` stanza of a Kubernetes `Status`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function missingName(error: kopf.ApiError): string | undefined {
 *   const details: kopf.StatusDetails | undefined = error.details;
 *   return error.status === 404 ? details?.name : undefined;
 * }
 * ```
 */
export interface StatusDetails {
  /** Name of the object concerned. */
  name?: string;
  /** API group of the object concerned. */
  group?: string;
  /** Kind (or plural) of the object concerned. */
  kind?: string;
  /** UID of the object concerned. */
  uid?: string;
  /** Field-level causes, e.g. of a 422 Invalid. */
  causes?: { reason?: string; message?: string; field?: string }[];
  /** How long the server asks the client to wait. */
  retryAfterSeconds?: number;
}

/**
 * A Kubernetes `Status` object, as returned with error responses (and by some deletions).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function isStatus(answer: unknown): answer is kopf.KubeStatus {
 *   return (answer as kopf.KubeStatus | null)?.kind === "Status";
 * }
 * ```
 */
export interface KubeStatus {
  /** `"Status"`. */
  kind?: string;
  /** `"v1"`. */
  apiVersion?: string;
  /** `"Success"` or `"Failure"`. */
  status?: string;
  /** Human-readable description. */
  message?: string;
  /** Machine-readable reason, e.g. `NotFound`, `Conflict`, `Invalid`. */
  reason?: string;
  /** Extra data about the object concerned. */
  details?: StatusDetails;
  /** HTTP status code. */
  code?: number;
}

/**
 * The API server answered with a non-2xx status.
 *
 * `status` is the HTTP status; `reason`, `details` and `code` come from the Kubernetes `Status`
 * body when there is one. The message reads like
 * `PATCH kopfexamples.kopf.dev ns/name: 422 Invalid: <the server's message>`.
 *
 * @example
 * ```ts
 * import { ApiError } from "./errors.ts";
 * const error = ApiError.from("GET", "/api/v1/namespaces/default/pods/web", 404, {
 *   kind: "Status", reason: "NotFound", message: 'pods "web" not found', code: 404,
 * });
 * error.message; // 'GET pods default/web: 404 NotFound: pods "web" not found'
 * error.status; // 404
 * ```
 */
export class ApiError extends Error {
  /** HTTP status code. */
  readonly status: number;
  /** Kubernetes reason (`NotFound`, `Conflict`, `Invalid`, …); the HTTP status text otherwise. */
  readonly reason: string;
  /** The server's own message, without the verb/resource prefix. */
  readonly serverMessage: string;
  /** `Status.details`, when the server sent them. */
  readonly details?: StatusDetails;
  /** `Status.code` (normally equals `status`). */
  readonly code: number;
  /** The request's HTTP method. */
  readonly verb: string;
  /** The request's path (without the query). */
  readonly path: string;
  /** Seconds the server asked to wait (`Retry-After` or `details.retryAfterSeconds`). */
  readonly retryAfterSeconds?: number;

  /** Creates the error; prefer {@linkcode ApiError.from} for a response body. */
  constructor(init: {
    verb: string;
    path: string;
    status: number;
    reason?: string;
    message?: string;
    details?: StatusDetails;
    code?: number;
    retryAfterSeconds?: number;
  }) {
    const reason = init.reason || STATUS_TEXT[init.status] || "Error";
    const serverMessage = init.message ?? "";
    super(
      `${init.verb} ${describePath(init.path)}: ${init.status} ${reason}${
        serverMessage ? `: ${serverMessage}` : ""
      }`,
    );
    this.name = "ApiError";
    this.status = init.status;
    this.reason = reason;
    this.serverMessage = serverMessage;
    this.details = init.details;
    this.code = init.code ?? init.status;
    this.verb = init.verb;
    this.path = init.path.split("?")[0];
    this.retryAfterSeconds = init.retryAfterSeconds;
  }

  /**
   * Builds the error from a response body: a Kubernetes `Status` object, other JSON, plain text,
   * or nothing.
   */
  static from(
    verb: string,
    path: string,
    status: number,
    body: unknown,
    retryAfterSeconds?: number,
  ): ApiError {
    let reason: string | undefined;
    let message: string | undefined;
    let details: StatusDetails | undefined;
    let code: number | undefined;
    if (body && typeof body === "object" && !Array.isArray(body)) {
      const s = body as KubeStatus;
      reason = typeof s.reason === "string" ? s.reason : undefined;
      message = typeof s.message === "string" ? s.message : undefined;
      details = s.details && typeof s.details === "object" ? s.details : undefined;
      code = typeof s.code === "number" ? s.code : undefined;
    } else if (typeof body === "string" && body.trim()) {
      message = oneLine(body);
    }
    return new ApiError({
      verb,
      path,
      status,
      reason,
      message,
      details,
      code,
      retryAfterSeconds: retryAfterSeconds ?? details?.retryAfterSeconds,
    });
  }
}

/**
 * The API server could not be reached: refused connection, DNS failure, TLS failure, reset
 * connection, or a connection found dead by the health check. Raised after the retries ran out
 * (or at once when retrying cannot help, like a certificate that does not verify).
 *
 * The message names the method, the host and the cause:
 * `GET https://127.0.0.1:6443/api: cannot connect to 127.0.0.1:6443 (after 5 attempts): Connection refused`,
 * or for a dead connection
 * `PATCH https://127.0.0.1:6443/apis/…: the connection to 127.0.0.1:6443 was dead: nothing received for 30 s, no answer to a probe within 15 s`.
 */
export class ConnectionError extends Error {
  /** `host:port` that was dialled. */
  readonly host: string;
  /** How many attempts were made. */
  readonly attempts: number;
  /** Whether the request may have reached the server (then non-idempotent calls are unsafe to repeat). */
  readonly maybeSent: boolean;
  /**
   * The connection was found dead by the health check (silent, and no answer to a probe) and
   * replaced; the request was in flight on it.
   */
  readonly dead: boolean;

  /** Creates the error for a request to `url` that failed with `cause`. */
  constructor(init: {
    verb: string;
    url: string;
    cause: unknown;
    attempts?: number;
    maybeSent?: boolean;
    dead?: boolean;
  }) {
    const url = new URL(init.url);
    const host = url.host;
    const attempts = init.attempts ?? 1;
    const after = attempts > 1 ? ` (after ${attempts} attempts)` : "";
    const what = init.dead ? `the connection to ${host} was dead` : `cannot connect to ${host}`;
    super(
      `${init.verb} ${url.origin}${url.pathname}: ${what}${after}: ${describeCause(init.cause)}`,
      { cause: init.cause },
    );
    this.name = "ConnectionError";
    this.host = host;
    this.attempts = attempts;
    this.maybeSent = init.maybeSent ?? true;
    this.dead = init.dead ?? false;
  }
}

/** No complete answer arrived within the request timeout. */
export class RequestTimeoutError extends Error {
  /** The timeout that ran out, in milliseconds. */
  readonly timeoutMs: number;

  /** Creates the error for a request to `path` that ran out of `timeoutMs`. */
  constructor(init: { verb: string; path: string; timeoutMs: number; attempts?: number }) {
    const attempts = init.attempts ?? 1;
    super(
      `${init.verb} ${describePath(init.path)}: no response within ${init.timeoutMs / 1000} s${
        attempts > 1 ? ` (after ${attempts} attempts)` : ""
      }`,
    );
    this.name = "RequestTimeoutError";
    this.timeoutMs = init.timeoutMs;
  }
}

/**
 * The most specific one-line text of an error chain: Deno's fetch wraps the useful part
 * ("tcp connect error: Connection refused (os error 111)") in a generic "fetch failed".
 */
export function describeCause(cause: unknown): string {
  let text = "";
  let current: unknown = cause;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && message !== "fetch failed") text = message;
    current = current instanceof Error ? current.cause : undefined;
  }
  // Deno: "error sending request for url (...): client error (Connect): tcp connect error: X"
  const tail = text.replace(/^error sending request[^)]*\)[^:]*:\s*/, "")
    .replace(/^client error \(\w+\):\s*/, "");
  return oneLine(tail || String(cause));
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}

const STATUS_TEXT: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Gone",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  502: "BadGateway",
  503: "ServiceUnavailable",
  504: "Timeout",
};
