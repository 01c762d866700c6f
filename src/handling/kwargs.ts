/**
 * What handlers receive: the context object with Kopf's kwargs by their names, and the
 * per-object logger.
 *
 * The logger is a LogTape logger in category `kopf.objects` carrying the object reference as the
 * structured property `object` (`namespace`, `name`, `uid`, `kind`, `apiVersion`); the line sinks
 * print it as Kopf's `[namespace/name]` prefix, JSON output as an object reference. A message given
 * as a single string is taken literally — `logger.info(\`spec: ${JSON.stringify(spec)}\`)` logs
 * the JSON as it is, as Kopf's (Python `logging`) loggers do — while a message with a
 * properties object keeps LogTape's `{placeholder}` templating.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import type { Diff } from "./diff.ts";
import type { Patch } from "./patch.ts";
import {
  type KubeObject,
  type ObjectMeta,
  objectReference,
  type Resource,
} from "../kube/resource.ts";
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

/** Log levels in the order of severity, as the posting settings name them. */
const SEVERITY: Readonly<Record<string, number>> = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  warning: 3,
  error: 4,
  fatal: 5,
};

const LEVEL_METHODS = new Set(Object.keys(SEVERITY));

/** What an object logger posts as a Kubernetes Event when `posting.loggers` is on. */
export type LogPoster = (level: "debug" | "info" | "warning" | "error", message: string) => void;

/** Options of {@linkcode objectLogger}. */
export interface ObjectLoggerOptions {
  /** Post messages at or above `level` as Events (Kopf's `posting.loggers`). */
  post?: LogPoster;
  /** The minimal level of posted messages (Kopf's `posting.level`). */
  level?: "debug" | "info" | "warning" | "error";
}

/** Escape LogTape's placeholder braces so that a text is logged literally. */
export function literal(text: string): string {
  return text.replaceAll("{", "{{").replaceAll("}", "}}");
}

function render(args: readonly unknown[]): string | null {
  const [first, second] = args;
  if (typeof first !== "string") {
    if (Array.isArray(first) && "raw" in first) {
      const strings = first as unknown as TemplateStringsArray;
      return strings.reduce(
        (text, part, i) => text + part + (i < args.length - 1 ? String(args[i + 1]) : ""),
        "",
      );
    }
    return first instanceof Error ? first.message : null;
  }
  if (second instanceof Error) return `${first} ${second.message}`;
  if (typeof second !== "object" || second === null) return first;
  const props = second as Record<string, unknown>;
  return first.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (match, key?: string) => {
    if (match === "{{") return "{";
    if (match === "}}") return "}";
    const value = props[key!.trim()];
    return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  });
}

function wrap(logger: Logger, options: ObjectLoggerOptions): Logger {
  const minimal = SEVERITY[options.level ?? "info"] ?? SEVERITY.info;
  return new Proxy(logger, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === "with" && typeof value === "function") {
        return (properties: Record<string, unknown>) =>
          wrap((value as Logger["with"]).call(target, properties), options);
      }
      if (typeof property !== "string" || !LEVEL_METHODS.has(property)) return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        // A lone string is a finished message (Kopf style): its braces are not placeholders.
        const literalOnly = typeof args[0] === "string" &&
          (args.length === 1 || args[1] instanceof Error);
        const call = literalOnly ? [literal(args[0] as string), ...args.slice(1)] : args;
        const result = method.apply(target, call);
        if (options.post && SEVERITY[property] >= minimal) {
          const text = literalOnly ? render([args[0], args[1]]) : render(args);
          const level = SEVERITY[property] >= SEVERITY.error
            ? "error"
            : SEVERITY[property] >= SEVERITY.warn
            ? "warning"
            : SEVERITY[property] >= SEVERITY.info
            ? "info"
            : "debug";
          if (text !== null) options.post(level, text);
        }
        return result;
      };
    },
  });
}

/**
 * The logger of one object: category `kopf.objects`, the object reference as properties, single
 * string messages taken literally, and optionally messages posted as Events.
 *
 * @example
 * ```ts ignore
 * const logger = objectLogger({ metadata: { namespace: "ns", name: "ex1" } });
 * logger.info(`Created with spec: ${JSON.stringify({ size: 1 })}`); // [ns/ex1] Created with spec: {"size":1}
 * ```
 */
export function objectLogger(body: KubeObject, options: ObjectLoggerOptions = {}): Logger {
  return wrap(getLogger(["kopf", "objects"]).with({ object: objectReference(body) }), options);
}

/** What every resource handler's context is built from. */
export interface ResourceContextInput {
  /** The resource being served. */
  readonly resource: Resource;
  /** The body handlers see (a copy: handlers cannot corrupt the cache through it). */
  readonly body: RawBody;
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

// Contexts are built by spreading the common part: a `memo` getter is added last, to the final
// object (spreading one would read it).
function commonContext(input: ResourceContextInput): Omit<ResourceContext, "memo"> {
  const body = input.body as Body;
  const meta: ObjectMeta = body.metadata ?? {};
  return {
    logger: input.logger,
    param: input.param,
    signal: input.signal,
    indices: input.indices ?? {},
    resource: input.resource,
    body,
    spec: (body.spec ?? {}) as Body["spec"],
    meta,
    status: (body.status ?? {}) as Body["status"],
    uid: meta.uid as string,
    name: meta.name as string,
    namespace: meta.namespace,
    labels: meta.labels ?? {},
    annotations: meta.annotations ?? {},
    patch: input.patch,
  };
}

/** The kwargs every resource handler gets (Kopf's names). */
export function resourceContext(input: ResourceContextInput): ResourceContext {
  return withMemo(commonContext(input), input);
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
