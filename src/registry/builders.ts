/**
 * Handler records built from registration calls: the positional selector, the options and the
 * function split apart, checked by `validation.ts`, the id derived, the record assembled.
 *
 * @module
 */

import type { ErrorsMode } from "./records.ts";
import type { SelectorArg } from "../kube/selector.ts";
import { type FieldPath, isObject } from "../storage/fields.ts";
import type { Activity } from "./context.ts";
import type { MetaFilter, ValueFilter } from "./filters.ts";
import { type CallSite, captureCallSite } from "../code/call_site.ts";
import { generateId } from "./ids.ts";
import type {
  ActivityHandler,
  AnyHandlerFn,
  ChangingHandler,
  DaemonHandler,
  ErasedContext,
  ResourceHandler,
  TimerHandler,
  WebhookHandler,
} from "./records.ts";
import type { Operation } from "../storage/reviews.ts";
import {
  checkActivityOptions,
  checkResourceOptions,
  checkSubhandlerOptions,
  type Registration,
  type ResourceApi,
} from "./validation.ts";

/** The positional selector arguments, the options object, and the handler, split apart. */
interface SplitArgs {
  selector: SelectorArg[];
  options: Record<string, unknown>;
  fn: unknown;
}

/** Whether `value` is an options object (not a class instance, array or function). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (!isObject(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function splitArgs(api: string, args: readonly unknown[]): SplitArgs {
  const fn = args.at(-1);
  if (typeof fn !== "function") {
    throw new TypeError(`${api}(…): the handler function must be the last argument`);
  }
  let rest = args.slice(0, -1);
  let options: Record<string, unknown> = {};
  if (rest.length && isPlainObject(rest.at(-1))) {
    options = rest.at(-1) as Record<string, unknown>;
    rest = rest.slice(0, -1);
  }
  return { selector: rest as SelectorArg[], options, fn };
}

/** A registration and where it came from (for ids of anonymous functions). */
interface Origin extends Registration {
  site: CallSite | null;
}

function origin(api: string, fn: unknown, options: Record<string, unknown>): Origin {
  const name = typeof fn === "function" ? fn.name.replace(/^(bound )+/, "") : "";
  const named = name !== "" && name !== "anonymous";
  // The stack is read only when the id has to come from the call site (or for messages).
  const site = named ? null : captureCallSite();
  const where = site ? ` at ${site.file}:${site.line}` : "";
  return { fn, options, site, source: `${api}(${named ? name : `anonymous function${where}`})` };
}

function common(o: Origin, suffix: FieldPath | null, title: string, prefix?: string) {
  const id = generateId({
    fn: o.fn as AnyHandlerFn,
    id: o.options.id as string | undefined,
    suffix: suffix?.join("."),
    prefix,
    site: o.site,
  });
  return {
    id,
    fn: o.fn as AnyHandlerFn,
    param: o.options.param,
    errors: o.options.errors as ErrorsMode | undefined,
    timeout: o.options.timeout as number | undefined,
    attemptTimeout: o.options.attemptTimeout as number | undefined,
    retries: o.options.retries as number | undefined,
    backoff: o.options.backoff as number | undefined,
    title: `${title} '${id}'`,
    source: o.source,
  };
}

function filters(o: Origin, field: FieldPath | null) {
  return {
    labels: o.options.labels as MetaFilter<ErasedContext> | undefined,
    annotations: o.options.annotations as MetaFilter<ErasedContext> | undefined,
    when: o.options.when as ((context: ErasedContext) => boolean) | undefined,
    field,
    value: o.options.value as ValueFilter<ErasedContext> | undefined,
  };
}

/**
 * Validate and build the record of a resource registration: `kopf.on.resume/create/update/
 * delete/field/event/validate/mutate`, `kopf.daemon`, `kopf.timer`, `kopf.index`.
 */
export function buildResourceHandler(
  api: ResourceApi,
  args: readonly unknown[],
): ResourceHandler | WebhookHandler {
  const name = `kopf.${["daemon", "timer", "index"].includes(api) ? "" : "on."}${api}`;
  const split = splitArgs(name, args);
  const o = origin(name, split.fn, split.options);
  const options = o.options;
  const { field, selector } = checkResourceOptions(api, o, split.selector);
  const base = (title: string, suffix = field) => ({
    ...common(o, suffix, title),
    selector,
    ...filters(o, field),
  });
  switch (api) {
    case "validate":
    case "mutate": {
      const { operation, operations } = options as {
        operation?: Operation;
        operations?: Operation[];
      };
      const ops = operation === undefined && operations === undefined
        ? null
        : [...new Set([...(operations ?? []), ...(operation === undefined ? [] : [operation])])];
      return {
        kind: "webhook",
        ...base("Webhook"),
        // Webhooks are not retried: a failure answers the request.
        errors: undefined,
        retries: undefined,
        backoff: undefined,
        attemptTimeout: undefined,
        reason: api === "validate" ? "validating" : "mutating",
        operations: ops,
        subresource: (options.subresource as string | undefined) ?? null,
        persistent: options.persistent === true,
        sideEffects: options.sideEffects === true,
        ignoreFailures: options.ignoreFailures === true,
        timeout: (options.timeout as number | undefined) ?? 30,
      };
    }
    case "event":
      return { kind: "watching", ...base("Handler") };
    case "index": // ids get no field suffix, as in Kopf
      return { kind: "indexing", ...base("Indexer", null) };
    case "daemon":
      return {
        kind: "daemon",
        ...base("Daemon"),
        requiresFinalizer: (options.requiresFinalizer as boolean | undefined) ??
          (options.cancellationBackoff !== undefined || options.cancellationTimeout !== undefined),
        initialDelay: options.initialDelay as DaemonHandler["initialDelay"],
        cancellationBackoff: options.cancellationBackoff as number | undefined,
        cancellationTimeout: options.cancellationTimeout as number | undefined,
        cancellationPolling: options.cancellationPolling as number | undefined,
      };
    case "timer":
      return {
        kind: "timer",
        ...base("Timer"),
        requiresFinalizer: (options.requiresFinalizer as boolean | undefined) ?? false,
        initialDelay: options.initialDelay as TimerHandler["initialDelay"],
        interval: options.interval as number | undefined,
        sharp: options.sharp as boolean | undefined,
        idle: options.idle as number | undefined,
      };
    default:
      return {
        kind: "changing",
        ...base("Handler"),
        reason: api === "create" || api === "update" || api === "delete" ? api : null,
        initial: api === "resume",
        deleted: options.deleted === true,
        requiresFinalizer: api === "delete" && options.optional !== true,
        fieldNeedsChange: api === "update" || api === "field",
        old: options.old as ValueFilter<ErasedContext> | undefined,
        new: options.new as ValueFilter<ErasedContext> | undefined,
      };
  }
}

/** Validate and build an activity handler. */
export function buildActivityHandler(
  activity: Activity,
  args: readonly unknown[],
): ActivityHandler {
  const api = `kopf.on.${activity}`;
  const split = splitArgs(api, args);
  const o = origin(api, split.fn, split.options);
  checkActivityOptions(o, split.selector.length > 0);
  return { kind: "activity", ...common(o, null, "Activity"), activity };
}

/**
 * Validate and build a sub-handler of `parent` (id `parent/child`; no field suffix, as in
 * Kopf; old/new filters only under update and field handlers).
 */
export function buildSubhandler(
  parent: ChangingHandler,
  fn: unknown,
  options: Record<string, unknown> = {},
  api = "subhandler",
): ChangingHandler {
  const o = origin(api, fn, options);
  const at = { ...o, source: `${parent.title}: ${o.source}` };
  const field = checkSubhandlerOptions(parent, at);
  return {
    kind: "changing",
    ...common(at, null, "Handler", parent.id),
    selector: null,
    ...filters(at, field),
    reason: null,
    initial: false,
    deleted: false,
    requiresFinalizer: false,
    fieldNeedsChange: parent.fieldNeedsChange,
    old: options.old as ValueFilter<ErasedContext> | undefined,
    new: options.new as ValueFilter<ErasedContext> | undefined,
    parent: parent.id,
  };
}
