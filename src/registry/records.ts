/**
 * The handler records that `kopf.on.*`, `kopf.daemon`, `kopf.timer`, `kopf.index` and
 * sub-handler registrations produce: what the registry stores and the engines read.
 *
 * @module
 */

import type { Selector } from "../kube/selector.ts";
import type { FieldPath } from "../storage/fields.ts";
import type { Operation } from "../storage/reviews.ts";
import type { Activity } from "./context.ts";
import type { MetaFilter, ValueFilter } from "./filters.ts";

/**
 * How arbitrary errors (neither temporary nor permanent) of a handler are treated.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const errors: kopf.ErrorsMode = "permanent"; // the first failure is the last one
 * kopf.on.create("kopfexamples", { errors }, function createFn() {
 *   throw new Error("Not retried.");
 * });
 * ```
 */
export type ErrorsMode = "temporary" | "permanent" | "ignored";

/**
 * The context type of stored callbacks, erased (the cycle passes the right context); call them
 * with `context as ErasedContext`.
 */
export type ErasedContext = never;

/** Any handler function, with its context type erased. */
export type AnyHandlerFn = (context: ErasedContext) => unknown;

/** What every handler record has. */
export interface HandlerRecordBase {
  /** The handler id (keys its progress and its results in `status.<id>`). */
  readonly id: string;
  /** The function. */
  readonly fn: AnyHandlerFn;
  /** Passed to the function as `param`. */
  readonly param: unknown;
  /** How arbitrary errors are treated (`undefined`: the per-kind default). */
  readonly errors?: ErrorsMode;
  /** Seconds since the first attempt after which the handler fails for good. */
  readonly timeout?: number;
  /** Seconds one attempt may run before it is aborted (not in Kopf). */
  readonly attemptTimeout?: number;
  /** Attempts after which the handler fails for good. */
  readonly retries?: number;
  /** Seconds between retries after arbitrary errors. */
  readonly backoff?: number;
  /** For log messages, Kopf's wording: `Handler 'id'`, `Daemon 'id'`, … */
  readonly title: string;
  /** Where it was registered, for error messages: `kopf.on.create(create_fn)`. */
  readonly source: string;
}

/** What handlers of resource objects have. */
export interface ResourceHandlerBase extends HandlerRecordBase {
  /** Which resources (`null` for sub-handlers: the parent's resource). */
  readonly selector: Selector | null;
  /** Label filters. */
  readonly labels?: MetaFilter<ErasedContext>;
  /** Annotation filters. */
  readonly annotations?: MetaFilter<ErasedContext>;
  /** The arbitrary predicate. */
  readonly when?: (context: ErasedContext) => boolean;
  /** The field the handler is restricted to. */
  readonly field: FieldPath | null;
  /** The field value filter (`undefined`: the field must merely exist in old or new). */
  readonly value?: ValueFilter<ErasedContext>;
}

/** A create/update/delete/resume/field handler or a sub-handler. */
export interface ChangingHandler extends ResourceHandlerBase {
  /** The bucket. */
  readonly kind: "changing";
  /** The cause reason it serves (`null`: any — field handlers, resume, sub-handlers). */
  readonly reason: "create" | "update" | "delete" | null;
  /** A resume handler: called for objects seen at startup, mixed into any cause. */
  readonly initial: boolean;
  /** Resume handlers only: also for objects being deleted. */
  readonly deleted: boolean;
  /** Needs a finalizer (non-optional delete handlers). */
  readonly requiresFinalizer: boolean;
  /** Only when the field changed (update/field handlers and their sub-handlers). */
  readonly fieldNeedsChange: boolean;
  /** The field's old value filter. */
  readonly old?: ValueFilter<ErasedContext>;
  /** The field's new value filter. */
  readonly new?: ValueFilter<ErasedContext>;
  /** For sub-handlers: the parent's id. */
  readonly parent?: string;
}

/** An `on.event` handler. */
export interface WatchingHandler extends ResourceHandlerBase {
  /** The bucket. */
  readonly kind: "watching";
}

/** A `kopf.index` handler. */
export interface IndexingHandler extends ResourceHandlerBase {
  /** The bucket. */
  readonly kind: "indexing";
}

/** What daemons and timers have. */
export interface SpawningHandlerBase extends ResourceHandlerBase {
  /** Keep a finalizer while it runs. */
  readonly requiresFinalizer: boolean;
  /** Seconds before the first call, or a function of the context. */
  readonly initialDelay?: number | ((context: ErasedContext) => number);
}

/** A `kopf.daemon`. */
export interface DaemonHandler extends SpawningHandlerBase {
  /** The bucket. */
  readonly kind: "daemon";
  /** Seconds between the stop request and aborting the signal. */
  readonly cancellationBackoff?: number;
  /** Seconds to wait for exit after aborting before abandoning. */
  readonly cancellationTimeout?: number;
  /** Seconds between exit checks. */
  readonly cancellationPolling?: number;
}

/** A `kopf.timer`. */
export interface TimerHandler extends SpawningHandlerBase {
  /** The bucket. */
  readonly kind: "timer";
  /** Seconds between calls. */
  readonly interval?: number;
  /** Align to multiples of the interval. */
  readonly sharp?: boolean;
  /** Seconds without essential changes before calling. */
  readonly idle?: number;
}

/** An `on.startup`/`on.cleanup`/`on.login`/`on.probe` handler. */
export interface ActivityHandler extends HandlerRecordBase {
  /** The bucket. */
  readonly kind: "activity";
  /** Which activity. */
  readonly activity: Activity;
}

/** Which admission webhooks a handler serves. */
export type WebhookReason = "validating" | "mutating";

/** A `kopf.on.validate` or `kopf.on.mutate` handler: one webhook of its own. */
export interface WebhookHandler extends ResourceHandlerBase {
  /** The bucket. */
  readonly kind: "webhook";
  /** Validating or mutating. */
  readonly reason: WebhookReason;
  /** The selector (webhooks are never sub-handlers). */
  readonly selector: Selector;
  /** The operations it is called for (`null`: all). */
  readonly operations: readonly Operation[] | null;
  /** The subresource it is called for (`null`: the main resource only; `"*"`: any). */
  readonly subresource: string | null;
  /** Kept in the managed configurations when the operator exits. */
  readonly persistent: boolean;
  /** Has side effects outside dry runs (`sideEffects: NoneOnDryRun`, else `None`). */
  readonly sideEffects: boolean;
  /** Admit when the webhook fails or is unreachable (`failurePolicy: Ignore`, else `Fail`). */
  readonly ignoreFailures: boolean;
  /** Seconds the API server waits for the answer (`timeoutSeconds`, 1–30). */
  readonly timeout: number;
}

/** Handlers of resource objects. */
export type ResourceHandler =
  | ChangingHandler
  | WatchingHandler
  | IndexingHandler
  | DaemonHandler
  | TimerHandler;

/** Any handler record. */
export type HandlerRecord = ResourceHandler | ActivityHandler | WebhookHandler;
