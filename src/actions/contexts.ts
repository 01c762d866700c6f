/**
 * What handlers receive: the context object with Kopf's kwargs by their names — one builder for
 * every kind of handler (changing, event, index, daemon, timer). The body is either a copy taken
 * for the call (changing and event handlers: what they see cannot change under them) or a live
 * view (daemons and timers, as Kopf's: every property reads the latest state of the object).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Api } from "../kits/api.ts";
import type { Diff } from "../storage/diff.ts";
import type { Patch } from "../storage/patch.ts";
import type { ObjectMeta, Resource } from "../kube/resource.ts";
import type {
  Body,
  ChangingCauseContext,
  ChangingContext,
  ChangingReason,
  EventContext,
  EventType,
  Memo,
  ResourceContext,
  SubhandlerApi,
} from "../registry/context.ts";
import type { RawBody } from "../storage/fields.ts";

/** What every resource handler's context is built from. */
export interface ResourceContextInput {
  /** The resource being served. */
  readonly resource: Resource;
  /**
   * The body handlers see: a copy (handlers cannot corrupt the cache through it), or a function
   * giving the latest body on every read of a body property (daemons' and timers' live view).
   */
  readonly body: RawBody | (() => RawBody);
  /** The cycle's patch. */
  readonly patch: Patch;
  /** The object's logger. */
  readonly logger: Logger;
  /** The object's memo (or give `memory`). */
  readonly memo?: Memo;
  /**
   * Where the object's memo is, read when (and if) the handler first reads `memo`: an object's
   * memo is then made only for the objects whose handlers use it.
   */
  readonly memory?: { readonly memo: Memo };
  /** Aborted when the handler should stop. */
  readonly signal: AbortSignal;
  /** The operator's indexes by id. */
  readonly indices?: Readonly<Record<string, unknown>>;
  /** The handler's `param`. */
  readonly param?: unknown;
  /** The operator's API for handlers (none outside a running operator: reading `api` throws). */
  readonly api?: Api;
}

/** Adds `memo` to a context: a value, or a getter reading the object's memory when first used. */
function withMemo<T extends object>(context: T, input: ResourceContextInput): T & { memo: Memo } {
  const memory = input.memory;
  if (memory === undefined) return Object.assign(context, { memo: input.memo ?? {} });
  return Object.defineProperty(context as T & { memo: Memo }, "memo", {
    get: () => memory.memo,
    enumerable: true,
    configurable: true,
  });
}

/**
 * The `api` of contexts built outside a running operator (tests of handlers, tools): every call
 * says why it cannot work, instead of a `TypeError` about `undefined`.
 */
const NO_API: Api = new Proxy({} as Api, {
  get: (_target, key) =>
    key === "then" ? undefined : () => {
      throw new Error("No Kubernetes API here: `api` exists in handlers of a running operator.");
    },
});

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

// Contexts are built by spreading the common part: a `memo` getter is added last, to the final
// object (spreading one would read it).
function commonContext(input: ResourceContextInput): Omit<ResourceContext, "memo"> {
  const context = {
    api: input.api ?? NO_API,
    logger: input.logger,
    param: input.param,
    signal: input.signal,
    indices: input.indices ?? {},
    resource: input.resource,
    patch: input.patch,
  };
  const source = input.body;
  if (typeof source !== "function") return Object.assign(context, bodyFields(source));
  // A live view: every body property reads the latest body.
  for (const key of BODY_FIELDS) {
    Object.defineProperty(context, key, {
      get: () => bodyFields(source())[key],
      enumerable: true,
      configurable: true,
    });
  }
  return context as Omit<ResourceContext, "memo">;
}

const BODY_FIELDS = [
  "body",
  "spec",
  "meta",
  "status",
  "uid",
  "name",
  "namespace",
  "labels",
  "annotations",
] as const;

function bodyFields(raw: RawBody): Pick<ResourceContext, (typeof BODY_FIELDS)[number]> {
  const body = raw as Body;
  const meta: ObjectMeta = body.metadata ?? {};
  return {
    body,
    spec: (body.spec ?? EMPTY) as Body["spec"],
    meta,
    status: (body.status ?? EMPTY) as Body["status"],
    uid: meta.uid as string,
    name: meta.name as string,
    namespace: meta.namespace,
    labels: meta.labels ?? EMPTY,
    annotations: meta.annotations ?? EMPTY,
  };
}

/** The kwargs every resource handler gets (Kopf's names), plus `extra` ones (retry info, …). */
export function resourceContext<E extends object = Record<never, never>>(
  input: ResourceContextInput,
  extra?: E,
): ResourceContext & E {
  const context = commonContext(input);
  // Extra properties are copied with their getters (a daemon's `stopped` may be live).
  if (extra) Object.defineProperties(context, Object.getOwnPropertyDescriptors(extra));
  return withMemo(context, input) as ResourceContext & E;
}

/** What changing handlers' contexts add: the cause. */
export interface ChangingCauseInput extends ResourceContextInput {
  /** Why handlers are called. */
  readonly reason: ChangingReason;
  /** What changed (field-scoped for field handlers). */
  readonly diff: Diff;
  /** The old essence (or field value). */
  readonly old: unknown;
  /** The new essence (or field value). */
  readonly new: unknown;
}

/** The context of filters (`when`, callbacks) of changing handlers: no retry information. */
export function changingCauseContext(input: ChangingCauseInput): ChangingCauseContext {
  return withMemo(causeContext(input), input);
}

function causeContext(input: ChangingCauseInput): Omit<ChangingCauseContext, "memo"> {
  return {
    ...commonContext(input),
    reason: input.reason,
    diff: input.diff,
    old: input.old,
    new: input.new,
  };
}

/** What a changing handler's invocation adds: its attempt and its sub-handler registration. */
export interface ChangingContextInput extends ChangingCauseInput {
  /** The attempt number (0 for the first). */
  readonly retry: number;
  /** When the first attempt started. */
  readonly started: Date;
  /** Seconds since the first attempt. */
  readonly runtime: number;
  /** Sub-handler registration bound to this invocation. */
  readonly subhandlers: SubhandlerApi;
}

/** The context of create/update/delete/resume/field handlers and sub-handlers. */
export function changingContext(input: ChangingContextInput): ChangingContext {
  return withMemo({
    ...causeContext(input),
    retry: input.retry,
    started: input.started,
    runtime: input.runtime,
    subhandler: input.subhandlers.subhandler,
    register: input.subhandlers.register,
  }, input);
}

/** What an `on.event` handler's context adds: the raw event. */
export interface EventContextInput extends ResourceContextInput {
  /** The event type (`null` for the initial listing). */
  readonly type: EventType;
  /** The object as the event brought it. */
  readonly object: RawBody;
}

/** The context of `on.event` handlers and their filters. */
export function eventContext(input: EventContextInput): EventContext {
  return withMemo({
    ...commonContext(input),
    type: input.type,
    event: { type: input.type, object: input.object as Body },
  }, input);
}
