/**
 * What handlers receive (one context object with Kopf's kwargs by their names) and what
 * registrations accept (Kopf's options, camel-cased).
 *
 * Contexts are generic over the object's `spec` and `status` types, so that
 * `kopf.on.create<MySpec, MyStatus>(…)` types `spec`, `status` and `body`.
 *
 * @module
 */

import type { Logger as LogTapeLogger } from "@logtape/logtape";
import type { Diff } from "../storage/diff.ts";
import type { ErrorsMode } from "./records.ts";
import type { Patch } from "../storage/patch.ts";
import type { KubeObject, ObjectMeta, Resource } from "../kube/resource.ts";
import type { SelectorSpec } from "../kube/selector.ts";
import type { Settings } from "../settings/settings.ts";
import type { FieldSpec, JsonObject } from "../storage/fields.ts";
import type { MetaFilter, ValueFilter } from "./filters.ts";

/** The handlers' logger: a LogTape logger. */
export type Logger = LogTapeLogger;

/** A value or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** The default shape of `spec` and `status` when the user gives no types. */
export type AnyFields = JsonObject;

/** An object body with typed `spec` and `status`. */
export type Body<S = AnyFields, St = AnyFields> = KubeObject & {
  /** The object's metadata. */
  metadata: ObjectMeta;
  /** The object's spec (`{}` if absent). */
  spec: S;
  /** The object's status (`{}` if absent). */
  status: St;
};

/**
 * Per-object memory kept in the operator process between handler calls (Kopf's `kopf.Memo`):
 * a plain object, shallow-copied from the operator-wide memo when an object is first seen.
 */
export type Memo = Record<string, unknown>;

/** The handler-facing reasons of changing handlers. */
export type ChangingReason = "create" | "update" | "delete" | "resume";

/** What every handler gets. */
export interface BaseContext {
  /** A logger for this object or activity (messages are prefixed with `[namespace/name]`). */
  logger: Logger;
  /** Per-object (or, for activities, operator-wide) memory. */
  memo: Memo;
  /** The `param` given at registration. */
  param: unknown;
  /** Aborted when the handler should stop (operator exit; for daemons: stop requested). */
  signal: AbortSignal;
  /** The operator's in-memory indexes by their ids (Kopf passes them as top-level kwargs). */
  indices: Readonly<Record<string, unknown>>;
}

/** What every handler of a resource object gets. */
export interface ResourceContext<S = AnyFields, St = AnyFields> extends BaseContext {
  /** The resource type being served. */
  resource: Resource;
  /** The whole object (read-only by convention; change it through `patch`). */
  body: Body<S, St>;
  /** `body.spec` (`{}` if absent). */
  spec: S;
  /** `body.metadata`. */
  meta: ObjectMeta;
  /** `body.status` (`{}` if absent). */
  status: St;
  /** `metadata.uid`. */
  uid: string;
  /** `metadata.name`. */
  name: string;
  /** `metadata.namespace` (`undefined` for cluster-scoped objects). */
  namespace: string | undefined;
  /** `metadata.labels` (`{}` if absent). */
  labels: Readonly<Record<string, string>>;
  /** `metadata.annotations` (`{}` if absent). */
  annotations: Readonly<Record<string, string>>;
  /** Changes to apply to the object after the handler(s) of this cycle. */
  patch: Patch;
}

/** Progress of a retried handler. */
export interface RetryContext {
  /** The attempt number, 0 for the first attempt. */
  retry: number;
  /** When the first attempt started. */
  started: Date;
  /** Seconds since the first attempt (Kopf passes a timedelta). */
  runtime: number;
}

/** What filters of changing handlers (`when`, label/value callbacks) get. */
export interface ChangingCauseContext<S = AnyFields, St = AnyFields, V = unknown>
  extends ResourceContext<S, St> {
  /** Why the handler is called. */
  reason: ChangingReason;
  /** What changed (for `field` handlers: within that field, with paths relative to it). */
  diff: Diff;
  /** The last handled essence (for `field` handlers: that field's old value). */
  old: V | undefined;
  /** The current essence (for `field` handlers: that field's new value). */
  new: V | undefined;
}

/** Register sub-handlers of the running handler (Kopf's `kopf.subhandler`/`kopf.register`). */
export interface SubhandlerApi<S = AnyFields, St = AnyFields> {
  /**
   * Register a sub-handler (`parent/child` id), run after the parent returns; the parent
   * finishes only when all its sub-handlers do, and must register the same ones every time.
   */
  subhandler(fn: ChangingFn<S, St>): ChangingFn<S, St>;
  /** Register a sub-handler with options. */
  subhandler(options: SubhandlerOptions<S, St>, fn: ChangingFn<S, St>): ChangingFn<S, St>;
  /** Kopf's functional form: `register(fn, { id })`. */
  register(fn: ChangingFn<S, St>, options?: SubhandlerOptions<S, St>): ChangingFn<S, St>;
}

/** What create/update/delete/resume/field handlers (and sub-handlers) get. */
export interface ChangingContext<S = AnyFields, St = AnyFields, V = unknown>
  extends ChangingCauseContext<S, St, V>, RetryContext, SubhandlerApi<S, St> {}

/** The raw watch event type; `null` for objects from the initial listing (Kopf's convention). */
export type EventType = "ADDED" | "MODIFIED" | "DELETED" | null;

/** What `on.event` filters get. */
export interface EventCauseContext<S = AnyFields, St = AnyFields> extends ResourceContext<S, St> {
  /** The event type. */
  type: EventType;
  /** The raw event. */
  event: { type: EventType; object: Body<S, St> };
}

/** What `on.event` handlers get. */
export type EventContext<S = AnyFields, St = AnyFields> = EventCauseContext<S, St>;

/** Why a daemon or timer is being stopped. */
export type StopReason =
  | "done"
  | "filters-mismatch"
  | "resource-deleted"
  | "operator-pausing"
  | "operator-exiting"
  | "daemon-signalled"
  | "daemon-cancelled"
  | "daemon-abandoned";

/**
 * Every reason that applies to a stop, as Kopf's combined `DaemonStoppingReason` flags: e.g. an
 * object deleted while its daemon, asked to stop, is signalled again after its
 * `cancellationBackoff` has `resource-deleted` and `daemon-signalled`. Reasons come in Kopf's
 * order, whichever was recorded first.
 *
 * @example
 * ```ts ignore
 * kopf.daemon("kopfexamples", async ({ stopped, logger }) => {
 *   await stopped.wait();
 *   if (stopped.reason?.has("resource-deleted")) logger.info("The object is gone.");
 *   logger.info(`Stopped: ${stopped.reason}`); // e.g. "Stopped: resource-deleted"
 * });
 * ```
 */
export interface StopReasons extends ReadonlySet<StopReason> {
  /** The reasons joined with `|`, e.g. `"operator-exiting|daemon-signalled"` (Kopf's `A|B`). */
  toString(): string;
  /** The reasons as an array, for `JSON.stringify`. */
  toJSON(): StopReason[];
}

/** Kopf's `DaemonStopped`: whether and why a daemon or timer should stop. */
export interface DaemonStopped {
  /** Stop was requested. */
  readonly isSet: boolean;
  /** Why, once requested: all the reasons so far (a snapshot; `null` before the request). */
  readonly reason: StopReasons | null;
  /** Wait up to `seconds` (forever if omitted) for a stop request; resolves to `isSet`. */
  wait(seconds?: number): Promise<boolean>;
}

/** What daemons get. */
export interface DaemonContext<S = AnyFields, St = AnyFields>
  extends ResourceContext<S, St>, RetryContext {
  /** The stop request; `signal` aborts at the same moment. */
  stopped: DaemonStopped;
}

/** What timers get. */
export type TimerContext<S = AnyFields, St = AnyFields> = DaemonContext<S, St>;

/** What index handlers get. */
export type IndexContext<S = AnyFields, St = AnyFields> = ResourceContext<S, St> & RetryContext;

/** The operator-level activities. */
export type Activity = "startup" | "cleanup" | "login" | "probe";

/** What startup/cleanup/login/probe handlers get. */
export interface ActivityContext extends BaseContext, RetryContext {
  /** Which activity. */
  activity: Activity;
  /** The operator's settings (mutable in startup handlers). */
  settings: Settings;
}

/** A create/update/delete/resume/field handler or sub-handler; its return value goes to `status.<id>`. */
export type ChangingFn<S = AnyFields, St = AnyFields, V = unknown> = (
  context: ChangingContext<S, St, V>,
) => Awaitable<unknown>;

/** An `on.event` handler; its return value goes to `status.<id>`. */
export type EventFn<S = AnyFields, St = AnyFields> = (
  context: EventContext<S, St>,
) => Awaitable<unknown>;

/** A daemon. */
export type DaemonFn<S = AnyFields, St = AnyFields> = (
  context: DaemonContext<S, St>,
) => Awaitable<unknown>;

/** A timer; its return value goes to `status.<id>`. */
export type TimerFn<S = AnyFields, St = AnyFields> = (
  context: TimerContext<S, St>,
) => Awaitable<unknown>;

/** An index handler; its return value is the object's contribution to the index. */
export type IndexFn<S = AnyFields, St = AnyFields> = (
  context: IndexContext<S, St>,
) => Awaitable<unknown>;

/** A startup/cleanup/login/probe handler. */
export type ActivityFn = (context: ActivityContext) => Awaitable<unknown>;

/** Options shared by all handlers. */
export interface IdOptions {
  /** The handler id (default: derived from the function; see docs/handler-ids.md). */
  id?: string;
  /** Passed to the handler as `param` (lets one function be registered several times). */
  param?: unknown;
}

/** How failures are retried. */
export interface RetryOptions {
  /** How arbitrary errors are treated (default: `"temporary"`; events/indexes: `"ignored"`). */
  errors?: ErrorsMode;
  /**
   * Seconds since the first attempt after which the handler fails for good (Kopf's `timeout`):
   * checked before each attempt and when a retry is planned; a running attempt is not aborted.
   */
  timeout?: number;
  /**
   * Seconds one attempt may run before it is aborted (its `signal` aborts) and counts as failed
   * with `HandlerTimeoutError` — not in Kopf: for handlers that may hang.
   */
  attemptTimeout?: number;
  /** Attempts after which the handler fails for good. */
  retries?: number;
  /** Seconds between retries after arbitrary errors (default: `settings.execution.defaultBackoff`). */
  backoff?: number;
}

/** Where a registration goes (anything with `append`, normally a `Registry`). */
export interface HandlerSink {
  /** Add a handler record. */
  append(handler: unknown): void;
}

/** The registry option. */
export interface RegistryOption {
  /** The registry to register in (default: the global one). */
  registry?: HandlerSink;
}

/** Filters on the object (checked in Kopf's order: labels, annotations, field value, field change, when). */
export interface FilterOptions<C> {
  /** Per label: exact value, `kopf.PRESENT`, `kopf.ABSENT`, or a callback. */
  labels?: MetaFilter<C>;
  /** Per annotation: exact value, `kopf.PRESENT`, `kopf.ABSENT`, or a callback. */
  annotations?: MetaFilter<C>;
  /** An arbitrary predicate over the context, checked last. */
  when?: (context: C) => boolean;
  /** Restrict to a field (`"spec.size"`); appended to the id as `id/spec.size`. */
  field?: FieldSpec;
  /** The field's value: a literal, `kopf.PRESENT`, `kopf.ABSENT`, or a callback. Needs `field`. */
  value?: ValueFilter<C>;
}

/** Filters on a field's change (update and field handlers). */
export interface ChangeFilterOptions<C> {
  /** The field's old value must match (needs `field`; not with `value`). */
  old?: ValueFilter<C>;
  /** The field's new value must match (needs `field`; not with `value`). */
  new?: ValueFilter<C>;
}

/** Options of `on.create`. */
export interface CreateOptions<S = AnyFields, St = AnyFields>
  extends
    SelectorSpec,
    IdOptions,
    RetryOptions,
    RegistryOption,
    FilterOptions<ChangingCauseContext<S, St>> {}

/** Options of `on.resume`. */
export interface ResumeOptions<S = AnyFields, St = AnyFields> extends CreateOptions<S, St> {
  /** Also resume objects being deleted. */
  deleted?: boolean;
}

/** Options of `on.update`. */
export interface UpdateOptions<S = AnyFields, St = AnyFields>
  extends CreateOptions<S, St>, ChangeFilterOptions<ChangingCauseContext<S, St>> {}

/** Options of `on.delete`. */
export interface DeleteOptions<S = AnyFields, St = AnyFields> extends CreateOptions<S, St> {
  /** Do not add a finalizer for this handler: it runs only if deletion waits for others. */
  optional?: boolean;
}

/** Options of `on.field` (`field` is required). */
export interface FieldOptions<S = AnyFields, St = AnyFields> extends UpdateOptions<S, St> {
  /** The field to watch. */
  field: FieldSpec;
}

/** Options of `on.event` (no retries: errors are logged and ignored). */
export interface EventOptions<S = AnyFields, St = AnyFields>
  extends SelectorSpec, IdOptions, RegistryOption, FilterOptions<EventCauseContext<S, St>> {}

/** Options of `kopf.index`. */
export interface IndexOptions<S = AnyFields, St = AnyFields>
  extends
    SelectorSpec,
    IdOptions,
    RetryOptions,
    RegistryOption,
    FilterOptions<ResourceContext<S, St>> {}

/** Options shared by daemons and timers. */
export interface SpawningOptions<S = AnyFields, St = AnyFields>
  extends
    SelectorSpec,
    IdOptions,
    RetryOptions,
    RegistryOption,
    FilterOptions<ResourceContext<S, St>> {
  /** Seconds before the first call, or a function of the context returning them. */
  initialDelay?: number | ((context: ResourceContext<S, St>) => number);
  /**
   * Keep a finalizer on matching objects so that the daemon or timer is stopped before the
   * object disappears. Default: only for daemons with `cancellationBackoff` or
   * `cancellationTimeout` (they ask for cleanup time); Kopf always adds one.
   */
  requiresFinalizer?: boolean;
}

/** Options of `kopf.daemon`. */
export interface DaemonOptions<S = AnyFields, St = AnyFields> extends SpawningOptions<S, St> {
  /** Seconds between the stop request and aborting `signal`. */
  cancellationBackoff?: number;
  /** Seconds to wait for the daemon to exit after aborting, before abandoning it. */
  cancellationTimeout?: number;
  /** Seconds between checks whether a stopping daemon has exited. */
  cancellationPolling?: number;
}

/** Options of `kopf.timer`. */
export interface TimerOptions<S = AnyFields, St = AnyFields> extends SpawningOptions<S, St> {
  /** Seconds between calls (from the end of one to the start of the next). */
  interval?: number;
  /** Align calls to multiples of `interval` instead of measuring from the last call's end. */
  sharp?: boolean;
  /** Call only after the object's essence has not changed for this many seconds. */
  idle?: number;
}

/** Options of activities (`on.startup`, `on.cleanup`, `on.login`, `on.probe`). */
export interface ActivityOptions extends IdOptions, RetryOptions, RegistryOption {}

/** Options of sub-handlers (no selector, no registry). */
export interface SubhandlerOptions<S = AnyFields, St = AnyFields>
  extends
    IdOptions,
    RetryOptions,
    FilterOptions<ChangingCauseContext<S, St>>,
    ChangeFilterOptions<ChangingCauseContext<S, St>> {}
