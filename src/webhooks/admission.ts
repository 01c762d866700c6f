/**
 * Answering admission reviews (Kopf's `serve_admission_request`): the operator's
 * {@linkcode WebhookFn} that webhook servers call. A review is checked, its resource found among
 * the handlers' resources, its handlers selected (the one the path names, or all that match),
 * called once each through the one execution path (`invoke()`, with `settings.execution`), and
 * their outcome turned into the response: the first error rejects (a `kopf.AdmissionError` with
 * its code, anything else with 500), warnings are returned, and mutating handlers' `patch`
 * becomes a JSON patch. A handler still running when its webhook's timeout is about to pass is
 * cut, and the answer follows its `ignoreFailures` — what the API server would do itself.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { resourceContext } from "../actions/contexts.ts";
import { reportExecution } from "../actions/execution.ts";
import type { Api } from "../kits/api.ts";
import { AdmissionError, errorMessage, HandlerTimeoutError } from "../actions/errors.ts";
import { invoke } from "../actions/invocation.ts";
import { objectLogger } from "../actions/loggers.ts";
import type { KubeObject, Resource } from "../kube/resource.ts";
import { objectKeyOf } from "../kube/resource.ts";
import type { Memories } from "../handling/memories.ts";
import type { AdmissionContext } from "../registry/admission.ts";
import type { Memo } from "../registry/context.ts";
import type { WebhookHandler } from "../registry/records.ts";
import type { Registry } from "../registry/registry.ts";
import type { ExecutionSettings } from "../settings/settings.ts";
import { diff } from "../storage/diff.ts";
import type { RawBody } from "../storage/fields.ts";
import { Patch } from "../storage/patch.ts";
import {
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReview,
  type Operation,
  WebhookError,
  type WebhookFn,
  type WebhookFnOptions,
} from "../storage/reviews.ts";
import { base64 } from "../kube/base64.ts";

const OPERATIONS: readonly string[] = ["CREATE", "UPDATE", "DELETE", "CONNECT"];

/** What {@linkcode admissionFn} serves with. */
export interface AdmissionOptions {
  /** The handlers. */
  readonly registry: Registry;
  /** The resources of the admission handlers (from discovery); re-resolved on a miss. */
  readonly resources: () => readonly Resource[] | Promise<readonly Resource[]>;
  /** Resolve the resources again (a resource not found may be a CRD created since). */
  readonly refresh?: () => Promise<readonly Resource[]>;
  /** The execution settings (the `maxWorkers` bound and the stall warning). */
  readonly execution?: Pick<ExecutionSettings, "maxWorkers" | "stallThreshold">;
  /** The objects' memories: handlers of existing objects share their memo. */
  readonly memories?: Memories;
  /** The operator-wide memo (objects being created get a fresh copy). */
  readonly memo?: Memo;
  /** The operator's indexes. */
  readonly indices?: () => Readonly<Record<string, unknown>>;
  /** The API for handlers (`api` in their contexts). */
  readonly api?: Api;
  /** Aborted when the operator stops. */
  readonly signal?: AbortSignal;
}

/** How long before the webhook's timeout a handler is cut (the answer must still arrive). */
export function cutAfter(timeoutSeconds: number): number {
  return timeoutSeconds >= 2 ? timeoutSeconds - 1 : timeoutSeconds / 2;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The review's request, checked for what answering needs; a 400 names what is wrong. */
export function checkReview(review: unknown): AdmissionRequest {
  if (!isObject(review)) throw new WebhookError("the body is not a JSON object");
  if (review.kind !== "AdmissionReview") {
    throw new WebhookError(`not an AdmissionReview: kind is ${JSON.stringify(review.kind)}`);
  }
  const request = review.request;
  if (!isObject(request)) throw new WebhookError("the AdmissionReview has no request");
  if (typeof request.uid !== "string" || !request.uid) {
    throw new WebhookError("the AdmissionReview's request has no uid");
  }
  const resource = request.resource;
  if (
    !isObject(resource) || typeof resource.group !== "string" ||
    typeof resource.version !== "string" || typeof resource.resource !== "string"
  ) {
    throw new WebhookError(
      "the AdmissionReview's request.resource is not {group, version, resource}",
    );
  }
  if (typeof request.operation !== "string" || !OPERATIONS.includes(request.operation)) {
    throw new WebhookError(
      `the AdmissionReview's request.operation is not one of ${OPERATIONS.join(", ")}`,
    );
  }
  if (!isObject(request.userInfo)) {
    throw new WebhookError("User info is missing from the admission request.");
  }
  if (!isObject(request.object) && !isObject(request.oldObject)) {
    throw new WebhookError("Either old or new object is missing from the admission request.");
  }
  return request as unknown as AdmissionRequest;
}

async function findResource(
  request: AdmissionRequest,
  options: AdmissionOptions,
): Promise<Resource> {
  const { group, version, resource: plural } = request.resource;
  const pick = (all: readonly Resource[]) =>
    all.filter((r) => r.group === group && r.version === version && r.plural === plural);
  let found = pick(await options.resources());
  if (!found.length && options.refresh) found = pick(await options.refresh());
  const name = `${plural}.${version}${group ? `.${group}` : ""}`;
  if (!found.length) throw new WebhookError(`the resource ${name} has no admission handlers`, 404);
  if (found.length > 1) throw new WebhookError(`the resource ${name} is ambiguous`, 409);
  return found[0];
}

/** One handler's outcome: an error, or a cut that follows `ignoreFailures`. */
interface Failure {
  readonly handler: WebhookHandler;
  readonly error: unknown;
}

function rank(error: unknown): number {
  return error instanceof AdmissionError ? 0 : error instanceof HandlerTimeoutError ? 1 : 9;
}

/** The response (Kopf's `build_response`): the first error by kind rejects; else allowed. */
function buildResponse(
  request: AdmissionRequest,
  failures: readonly Failure[],
  warnings: readonly unknown[],
  jsonPatch: readonly unknown[],
): AdmissionResponse {
  const sorted = [...failures].sort((a, b) => rank(a.error) - rank(b.error));
  // A cut handler that ignores failures admits, as the API server would at its timeout.
  const rejecting = sorted.filter((f) =>
    !(f.error instanceof HandlerTimeoutError && f.handler.ignoreFailures)
  );
  const response: AdmissionResponse = { uid: request.uid, allowed: rejecting.length === 0 };
  if (warnings.length) response.warnings = warnings.map((w) => String(w));
  if (rejecting.length) {
    const error = rejecting[0].error;
    const code = error instanceof AdmissionError ? error.code || 500 : 500;
    const message = errorMessage(error).split("\n")[0];
    response.status = { code, message };
  } else if (jsonPatch.length) {
    response.patch = base64(JSON.stringify(jsonPatch));
    response.patchType = "JSONPatch";
  }
  return response;
}

async function callHandler(
  handler: WebhookHandler,
  build: (signal: AbortSignal) => AdmissionContext,
  body: KubeObject,
  logger: Logger,
  options: AdmissionOptions,
  signal: AbortSignal,
): Promise<Failure | undefined> {
  const controller = new AbortController();
  const startedAt = performance.now();
  const report = (error?: Error) =>
    reportExecution({
      handler,
      retry: 0,
      seconds: (performance.now() - startedAt) / 1000,
      outcome: {
        final: true,
        delay: null,
        error,
        subrefs: [],
        log: { level: "debug", message: "", withStack: false },
        cancelled: signal.aborted || undefined,
      },
    });
  try {
    await invoke(handler.fn, build(AbortSignal.any([signal, controller.signal])) as never, {
      title: handler.title,
      logger,
      body,
      timeout: cutAfter(handler.timeout),
      signal,
      controller,
      execution: options.execution,
    });
    report();
    return undefined;
  } catch (error) {
    report(error instanceof Error ? error : new Error(errorMessage(error)));
    if (error instanceof AdmissionError) {
      logger.info("{title} rejected the {what}: {message}", {
        title: handler.title,
        what: "request",
        message: errorMessage(error),
      });
    } else if (error instanceof HandlerTimeoutError) {
      logger.warn(
        "{title} did not answer within its webhook's timeout of {timeout} s; the request is " +
          "{verdict}.",
        {
          title: handler.title,
          timeout: handler.timeout,
          verdict: handler.ignoreFailures ? "admitted (ignoreFailures)" : "rejected",
        },
      );
    } else if (!signal.aborted) {
      logger.error("{title} failed: {message}", {
        title: handler.title,
        message: errorMessage(error).split("\n")[0],
      });
    }
    return { handler, error: signal.aborted ? new Error("The operator is stopping.") : error };
  }
}

/**
 * The operator's {@linkcode WebhookFn}: answers admission reviews with the registry's
 * `on.validate`/`on.mutate` handlers. A request that is not a proper review is rejected with a
 * {@linkcode WebhookError} (400, or 404 for an unknown resource or webhook), for the server to
 * answer with that HTTP code.
 *
 * @example
 * ```ts
 * import { Registry } from "../registry/registry.ts";
 * import { admissionFn } from "./admission.ts";
 *
 * const registry = new Registry();
 * registry.on.validate("kopfexamples", function check() {});
 * const fn = admissionFn({ registry, resources: () => [] });
 * // a server calls: await fn(review, { webhook: "check", headers, sslpeer })
 * ```
 */
export function admissionFn(options: AdmissionOptions): WebhookFn {
  return async (review: AdmissionReview, call: WebhookFnOptions = {}) => {
    const known = options.registry.webhookHandlers();
    if (call.webhook !== undefined && !known.some((h) => h.id === call.webhook)) {
      throw new WebhookError(
        `no admission handler has the id ${JSON.stringify(call.webhook)}`,
        404,
      );
    }
    const request = checkReview(review);
    const resource = await findResource(request, options);
    const operation = request.operation as Operation;
    const newBody = isObject(request.object) ? request.object as RawBody : undefined;
    const oldBody = isObject(request.oldObject) ? request.oldObject as RawBody : undefined;
    const raw = (newBody ?? oldBody)!;
    const body = raw as KubeObject;
    const subresource = request.subResource || undefined;
    const logger = objectLogger(body, { resource });
    const patch = new Patch();
    const warnings: string[] = [];
    const memo = memoFor(body, resource, operation, options);
    const signal = AbortSignal.any([options.signal ?? new AbortController().signal, call.signal]
      .filter((s): s is AbortSignal => s !== undefined));
    const shared = {
      old: oldBody,
      new: newBody,
      diff: diff(oldBody, newBody),
      operation,
      dryrun: request.dryRun === true,
      subresource,
      userinfo: request.userInfo,
      sslpeer: call.sslpeer ?? {},
      headers: call.headers ?? {},
      warnings,
    };
    const build = (handlerSignal: AbortSignal, param?: unknown) =>
      resourceContext({
        resource,
        body: raw,
        patch,
        logger,
        memo,
        signal: handlerSignal,
        indices: options.indices?.(),
        api: options.api,
        param,
      }, shared) as unknown as AdmissionContext;
    const handlers = options.registry.selectWebhooks({
      resource,
      body: raw,
      webhook: call.webhook,
      operation,
      subresource,
      context: () => build(signal),
    });
    const failures: Failure[] = [];
    for (const handler of handlers) {
      const failure = await callHandler(
        handler,
        (s) => build(s, handler.param),
        body,
        logger,
        options,
        signal,
      );
      if (failure) failures.push(failure);
    }
    const mutating = handlers.some((h) => h.reason === "mutating");
    const jsonPatch = mutating && !patch.isEmpty ? patch.asJsonPatch(raw) : [];
    return {
      apiVersion: typeof review.apiVersion === "string" ? review.apiVersion : "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: buildResponse(request, failures, warnings, jsonPatch),
    };
  };
}

/** A served object's memo is shared with its other handlers; any other object's is fresh. */
function memoFor(
  body: KubeObject,
  resource: Resource,
  operation: Operation,
  options: AdmissionOptions,
): Memo {
  const base = options.memo ?? {};
  if (operation === "CREATE" || !options.memories || !body.metadata?.name) {
    return Object.create(base) as Memo;
  }
  // Only objects the operator already serves have a memory; none is made for the others.
  return options.memories.get(objectKeyOf(resource, body))?.memo ?? Object.create(base) as Memo;
}
