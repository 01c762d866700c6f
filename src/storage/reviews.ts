/**
 * Admission reviews as the API server sends and expects them (`admission.k8s.io/v1`), and the
 * protocol between the operator and webhook servers (Kopf's `structs/reviews.py`): a server is
 * given a {@linkcode WebhookFn} to call with each review it receives, and yields the
 * {@linkcode WebhookClientConfig}s by which the API server reaches it.
 *
 * @module
 */

import type { RawBody } from "./fields.ts";

/**
 * The operation under admission.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const operations: kopf.Operation[] = ["CREATE", "UPDATE"];
 * kopf.on.validate("kopfexamples", { operations }, function checkFn({ operation, logger }) {
 *   logger.info(`Checking a ${operation}`);
 * });
 * ```
 */
export type Operation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

/**
 * Who makes the API request under admission (`request.userInfo`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const isAdmin = (user: kopf.UserInfo) => user.groups?.includes("system:masters") ?? false;
 * kopf.on.validate("kopfexamples", function onlyAdmins({ userinfo }) {
 *   if (!isAdmin(userinfo)) throw new kopf.AdmissionError("Only admins.", { code: 403 });
 * });
 * ```
 */
export interface UserInfo {
  /** The user's name. */
  username?: string;
  /** The user's uid. */
  uid?: string;
  /** The user's groups. */
  groups?: string[];
  /** Extra attributes the authenticator provides. */
  extra?: Record<string, string[]>;
}

/**
 * The HTTP headers of the webhook request (names in lower case), e.g. `user-agent`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.validate("kopfexamples", function whoCalls({ headers, warnings }) {
 *   const all: kopf.Headers = headers;
 *   warnings.push(`Accessing as user-agent: ${all["user-agent"] ?? "(unidentified)"}`);
 * });
 * ```
 */
export type Headers = Readonly<Record<string, string>>;

/**
 * The verified client certificate of the webhook request (the API server's), in the shape of
 * Python's `ssl.SSLSocket.getpeercert()` that Kopf passes: `subject` and `issuer` as lists of
 * relative distinguished names of `[name, value]` pairs (`commonName`, `organizationName`, …);
 * `{}` when no verified certificate was presented.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function commonName(peer: kopf.SSLPeer): string | undefined {
 *   return peer.subject?.flat().find(([key]) => key === "commonName")?.[1];
 * }
 * kopf.on.validate("kopfexamples", function whoCalls({ sslpeer, warnings }) {
 *   warnings.push(`SSL peer is ${commonName(sslpeer) ?? "not identified"}.`);
 * });
 * ```
 */
export interface SSLPeer {
  /** The subject: relative distinguished names, each a list of `[name, value]` pairs. */
  subject?: [string, string][][];
  /** The issuer, in the same shape. */
  issuer?: [string, string][][];
  /** The certificate's version (3 for X.509 v3). */
  version?: number;
  /** The serial number, in upper-case hex. */
  serialNumber?: string;
  /** Valid from, e.g. `Mar  7 17:12:20 2021 GMT`. */
  notBefore?: string;
  /** Valid until, in the same format. */
  notAfter?: string;
  /** Subject alternative names as `[type, value]`: `["DNS", "x"]`, `["IP Address", "1.2.3.4"]`. */
  subjectAltName?: [string, string][];
}

/**
 * A group/version/kind of the reviewed object.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const kind: kopf.ReviewKind = { group: "kopf.dev", version: "v1", kind: "KopfExample" };
 * ```
 */
export interface ReviewKind {
  /** The API group (`""` for the core group). */
  group: string;
  /** The API version. */
  version: string;
  /** The kind. */
  kind: string;
}

/**
 * A group/version/resource of the reviewed object.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const resource: kopf.ReviewResource = { group: "", version: "v1", resource: "pods" };
 * ```
 */
export interface ReviewResource {
  /** The API group (`""` for the core group). */
  group: string;
  /** The API version. */
  version: string;
  /** The plural resource name. */
  resource: string;
}

/**
 * What the API server asks about (`AdmissionReview.request`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const request: kopf.AdmissionRequest = {
 *   uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
 *   resource: { group: "kopf.dev", version: "v1", resource: "kopfexamples" },
 *   operation: "CREATE",
 *   userInfo: { username: "admin" },
 *   object: { apiVersion: "kopf.dev/v1", kind: "KopfExample", metadata: { name: "kex" } },
 * };
 * ```
 */
export interface AdmissionRequest {
  /** Identifies this review; the response repeats it. */
  uid: string;
  /** The object's kind (after conversion to the webhook's version). */
  kind?: ReviewKind;
  /** The object's resource (after conversion to the webhook's version). */
  resource: ReviewResource;
  /** The subresource, e.g. `status` or `scale` (absent for the main resource). */
  subResource?: string | null;
  /** The kind as the user requested it. */
  requestKind?: ReviewKind;
  /** The resource as the user requested it. */
  requestResource?: ReviewResource;
  /** The subresource as the user requested it. */
  requestSubResource?: string | null;
  /** The object's name (may be empty on CREATE with `generateName`). */
  name?: string;
  /** The object's namespace. */
  namespace?: string | null;
  /** The operation. */
  operation: Operation;
  /** Who makes the request. */
  userInfo: UserInfo;
  /** The object after the operation (absent for DELETE). */
  object?: RawBody | null;
  /** The object before the operation (UPDATE and DELETE). */
  oldObject?: RawBody | null;
  /** A dry run: the change is not persisted, the handlers must not have side effects. */
  dryRun?: boolean;
  /** The operation's options (`CreateOptions`, …). */
  options?: Record<string, unknown> | null;
}

/**
 * The status of a rejected review.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const status: kopf.AdmissionStatus = { code: 400, message: "spec.size must be positive." };
 * ```
 */
export interface AdmissionStatus {
  /** The HTTP code the API server answers the user with. */
  code?: number;
  /** The message the user sees. */
  message?: string;
}

/**
 * The answer (`AdmissionReview.response`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const response: kopf.AdmissionResponse = {
 *   uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
 *   allowed: false,
 *   status: { code: 400, message: "spec.size must be positive." },
 * };
 * ```
 */
export interface AdmissionResponse {
  /** The request's uid. */
  uid: string;
  /** Whether the operation may go on. */
  allowed: boolean;
  /** Why not. */
  status?: AdmissionStatus;
  /** Warnings for the user (`Warning:` headers of the API response). */
  warnings?: string[];
  /** A base64-encoded JSON patch to apply to the object (mutating webhooks only). */
  patch?: string;
  /** `JSONPatch` when `patch` is given. */
  patchType?: "JSONPatch";
}

/**
 * An admission review: the request (from the API server) or the response (to it).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const answer: kopf.AdmissionReview = {
 *   apiVersion: "admission.k8s.io/v1",
 *   kind: "AdmissionReview",
 *   response: { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true },
 * };
 * ```
 */
export interface AdmissionReview {
  /** `admission.k8s.io/v1` (or `v1beta1`). */
  apiVersion: string;
  /** `AdmissionReview`. */
  kind: string;
  /** What is asked. */
  request?: AdmissionRequest;
  /** What is answered. */
  response?: AdmissionResponse;
}

/**
 * A webhook configuration's `clientConfig.service`: the API server reaches the webhooks through
 * a Service of the cluster (in-cluster operators) instead of a URL.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const service: kopf.WebhookClientConfigService = {
 *   namespace: "operators",
 *   name: "my-operator",
 *   port: 443,
 * };
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookServer({ addr: "0.0.0.0", port: 9443, service });
 *   settings.admission.managed = "auto.kopf.dev";
 * });
 * ```
 */
export interface WebhookClientConfigService {
  /** The Service's namespace. */
  namespace: string;
  /** The Service's name. */
  name: string;
  /** The path prefix (the handler's id is appended). */
  path?: string;
  /** The Service's port (default 443). */
  port?: number;
}

/**
 * How the API server reaches the webhooks (`webhooks[].clientConfig`): a URL or a Service, and
 * the CA bundle (base64 PEM) that verifies the server's certificate. The operator appends each
 * handler's id to the URL's or the Service's path.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const config: kopf.WebhookClientConfig = { url: "https://127.0.0.1:9443" };
 * // With a CA: { url, caBundle: btoa(caPem) }; in-cluster: { service: { namespace, name } }.
 * ```
 */
export interface WebhookClientConfig {
  /** An `https://` URL (without query or fragment). */
  url?: string;
  /** A Service instead of a URL. */
  service?: WebhookClientConfigService;
  /** Base64 of the PEM CA bundle (absent: the API server's default trust). */
  caBundle?: string;
}

/**
 * What a webhook server passes to {@linkcode WebhookFn} besides the review.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.WebhookFnOptions = {
 *   webhook: "check_numbers", // the handler id: the last segment of the request's path
 *   headers: { "user-agent": "kube-apiserver-admission" },
 * };
 * ```
 */
export interface WebhookFnOptions {
  /** The handler id to run (from the request's path); absent: every matching handler. */
  webhook?: string;
  /** The request's HTTP headers (lower-case names). */
  headers?: Headers;
  /** The verified client certificate. */
  sslpeer?: SSLPeer;
  /** Aborted when the server gives up on the request (its client went away). */
  signal?: AbortSignal;
}

/**
 * The function the operator gives to its webhook server: call it with each review received and
 * send back what it resolves to. A request the operator cannot answer (not a review, an unknown
 * resource or webhook) rejects with a {@linkcode WebhookError} whose `status` is the HTTP code to
 * answer with.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * async function answer(fn: kopf.WebhookFn, body: string, webhook: string): Promise<Response> {
 *   try {
 *     return Response.json(await fn(JSON.parse(body), { webhook }));
 *   } catch (error) {
 *     const status = error instanceof kopf.WebhookError ? error.status : 500;
 *     return new Response(String(error), { status });
 *   }
 * }
 * ```
 */
export type WebhookFn = (
  review: AdmissionReview,
  options?: WebhookFnOptions,
) => Promise<AdmissionReview>;

/**
 * A review the operator cannot answer: not an admission review (400), an unknown resource or
 * webhook (404), an ambiguous resource (409). `status` is the HTTP code to answer with.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const error = new kopf.WebhookError("not an admission review", 400);
 * assert.equal(error.status, 400);
 * ```
 */
export class WebhookError extends Error {
  /** `WebhookError`. */
  override name = "WebhookError";
  /** The HTTP code to answer with. */
  readonly status: number;

  /** Create the error. */
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

/**
 * What a webhook server gets when it starts serving.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * async function* tunnel(
 *   fn: kopf.WebhookFn,
 *   { signal }: kopf.WebhookServeContext,
 * ): AsyncGenerator<kopf.WebhookClientConfig> {
 *   yield { url: "https://tunnel.example.com/hooks" }; // requests arrive there and go to `fn`
 *   await new Promise((resolve) => signal.addEventListener("abort", resolve));
 * }
 * ```
 */
export interface WebhookServeContext {
  /** Aborted when the operator stops: stop serving and end the iteration. */
  readonly signal: AbortSignal;
  /** The API server the operator talks to, for servers that adapt to the cluster. */
  readonly cluster?: ClusterInfo;
}

/**
 * What a webhook server may learn about the cluster (for `WebhookAutoServer`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * async function isK3s(cluster: kopf.ClusterInfo): Promise<boolean> {
 *   return String((await cluster.version()).gitVersion ?? "").includes("+k3s");
 * }
 * ```
 */
export interface ClusterInfo {
  /** The API server's URL. */
  readonly server: string;
  /** The CA bundle (PEM) that verifies the API server, if the configuration has one. */
  readonly caPem?: string;
  /** `GET /version` of the API server. */
  version(): Promise<Record<string, unknown>>;
}

/**
 * A webhook server or tunnel (`settings.admission.server`): given the operator's
 * {@linkcode WebhookFn}, it serves admission requests with it and yields the client config by
 * which the API server reaches it — again whenever that changes (a new certificate, a new
 * address) — until the context's signal aborts. A function, or an object with `serve`; an
 * object with `Symbol.asyncDispose` is disposed of when serving ends.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const myServer: kopf.WebhookServerProtocol = async function* (fn, { signal }) {
 *   const server = Deno.serve({ port: 8443 }, async (request) => {
 *     const webhook = new URL(request.url).pathname.split("/").at(-1);
 *     return Response.json(await fn(await request.json(), { webhook }));
 *   });
 *   yield { url: "https://webhooks.example.com" }; // e.g. behind a TLS-terminating proxy
 *   await new Promise((resolve) => signal.addEventListener("abort", resolve));
 *   await server.shutdown();
 * };
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = myServer;
 * });
 * ```
 */
export type WebhookServerProtocol =
  | ((fn: WebhookFn, context: WebhookServeContext) => AsyncIterable<WebhookClientConfig>)
  | {
    /** Serve until the context's signal aborts, yielding the client configs. */
    serve(fn: WebhookFn, context: WebhookServeContext): AsyncIterable<WebhookClientConfig>;
  };
