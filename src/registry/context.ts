/**
 * What handlers receive (one context object with Kopf's kwargs by their names) and what
 * registrations accept (Kopf's options, camel-cased).
 *
 * Contexts are generic over the object's `spec` and `status` types, so that
 * `kopf.on.create<MySpec, MyStatus>(…)` types `spec`, `status` and `body`.
 *
 * @module
 */

import type { Api } from "../kits/api.ts";
import type { Logger as LogTapeLogger } from "@logtape/logtape";
import type { Diff } from "../storage/diff.ts";
import type { ErrorsMode } from "./records.ts";
import type { Patch } from "../storage/patch.ts";
import type { KubeObject, ObjectMeta, Resource } from "../kube/resource.ts";
import type { SelectorSpec } from "../kube/selector.ts";
import type { Settings } from "../settings/settings.ts";
import type { FieldSpec, JsonObject } from "../storage/fields.ts";
import type { MetaFilter, ValueFilter } from "./filters.ts";
import type { Registry } from "./registry.ts";

/**
 * The handlers' logger: a LogTape logger.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function report(logger: kopf.Logger, name: string): void {
 *   logger.info(`Reconciled ${name}`);
 * }
 * kopf.on.create("kopfexamples", function createFn({ logger, name }) {
 *   report(logger, name);
 * });
 * ```
 */
export type Logger = LogTapeLogger;

/**
 * A value or a promise of it.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // A check that may answer at once or later: both are Awaitable<boolean>.
 * type Check = (name: string) => kopf.Awaitable<boolean>;
 * const quick: Check = (name) => name.length > 0;
 * const slow: Check = async (name) => await Promise.resolve(name.length > 0);
 * ```
 */
export type Awaitable<T> = T | Promise<T>;

/**
 * The default shape of `spec` and `status` when the user gives no types.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function createFn({ spec }) {
 *   const fields: kopf.AnyFields = spec; // no spec type given: any JSON fields
 *   return { size: typeof fields.size === "number" ? fields.size : 1 };
 * });
 * ```
 */
export type AnyFields = JsonObject;

/**
 * An object body with typed `spec` and `status`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * interface Spec {
 *   size: number;
 * }
 * function describe(body: kopf.Body<Spec>): string {
 *   return `${body.metadata.name}: size ${body.spec.size}`;
 * }
 * kopf.on.create<Spec>("kopfexamples", function createFn({ body, logger }) {
 *   logger.info(describe(body));
 * });
 * ```
 */
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
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function createFn({ memo }) {
 *   memo.createdAt = Date.now(); // kept for this object while the operator runs
 * });
 * kopf.timer("kopfexamples", { interval: 60 }, function timerFn({ memo, logger }) {
 *   if (typeof memo.createdAt === "number") logger.info(`age: ${Date.now() - memo.createdAt} ms`);
 * });
 * ```
 */
export type Memo = Record<string, unknown>;

/**
 * The handler-facing reasons of changing handlers.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.field("kopfexamples", { field: "spec.size" }, function fieldFn({ reason, logger }) {
 *   const why: kopf.ChangingReason = reason; // "create", "update", "delete" or "resume"
 *   logger.info(`spec.size handled on ${why}`);
 * });
 * ```
 */
export type ChangingReason = "create" | "update" | "delete" | "resume";

/**
 * What every handler gets.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // A helper for any handler: it needs only what every handler gets.
 * function remember({ memo, logger }: kopf.BaseContext, key: string): void {
 *   memo[key] = true;
 *   logger.debug(`remembered ${key}`);
 * }
 * kopf.on.startup(function startupFn(context) {
 *   remember(context, "started");
 * });
 * kopf.on.create("kopfexamples", function createFn(context) {
 *   remember(context, context.name);
 * });
 * ```
 */
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

/**
 * What every handler of a resource object gets.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // A filter usable with every kind of resource handler.
 * const isLabelled = ({ labels }: kopf.ResourceContext) => "app" in labels;
 * kopf.index("kopfexamples", { when: isLabelled }, function indexFn({ name }) {
 *   return name;
 * });
 * kopf.daemon("kopfexamples", { when: isLabelled }, async function daemonFn({ stopped }) {
 *   await stopped.wait();
 * });
 * ```
 */
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
  /**
   * The Kubernetes API over the operator's own connection, with cached reads of the watched
   * resources (see `docs/api.md`).
   */
  api: Api;
}

/**
 * Progress of a retried handler.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function attempt({ retry, runtime }: kopf.RetryContext): string {
 *   return `attempt ${retry + 1}, ${runtime.toFixed(1)} s since the first`;
 * }
 * kopf.on.create("kopfexamples", function createFn(context) {
 *   context.logger.info(attempt(context));
 *   if (context.retry < 2) throw new kopf.TemporaryError("Not ready yet.", { delay: 5 });
 * });
 * ```
 */
export interface RetryContext {
  /** The attempt number, 0 for the first attempt. */
  retry: number;
  /** When the first attempt started. */
  started: Date;
  /** Seconds since the first attempt (Kopf passes a timedelta). */
  runtime: number;
}

/**
 * What filters of changing handlers (`when`, label/value callbacks) get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // `when` of create/update/delete/resume/field handlers gets this context.
 * const grew = ({ old, new: value }: kopf.ChangingCauseContext) => Number(value) > Number(old);
 * const options: kopf.FieldOptions = { field: "spec.size", when: grew };
 * kopf.on.field("kopfexamples", options, function fieldFn({ old, new: value }) {
 *   console.log(`spec.size grew: ${old} → ${value}`);
 * });
 * ```
 */
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

/**
 * Register sub-handlers of the running handler (Kopf's `kopf.subhandler`/`kopf.register`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // A helper that needs only the sub-handler registration of a handler's context.
 * function perItem(api: kopf.SubhandlerApi, items: string[]): void {
 *   for (const item of items) {
 *     api.subhandler({ id: `item-${item}` }, ({ logger }) => logger.info(`Handling ${item}`));
 *   }
 * }
 * kopf.on.create("kopfexamples", function createFn(context) {
 *   perItem(context, ["a", "b"]);
 * });
 * ```
 */
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

/**
 * What create/update/delete/resume/field handlers (and sub-handlers) get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * interface Spec {
 *   size: number;
 * }
 * async function createFn({ spec, name, patch, logger }: kopf.ChangingContext<Spec>) {
 *   logger.info(`Creating ${name} of size ${spec.size}`);
 *   patch.status.phase = "Creating";
 *   return { size: spec.size }; // stored in status.createFn
 * }
 * kopf.on.create<Spec>("kopfexamples", createFn);
 * ```
 */
export interface ChangingContext<S = AnyFields, St = AnyFields, V = unknown>
  extends ChangingCauseContext<S, St, V>, RetryContext, SubhandlerApi<S, St> {}

/**
 * The raw watch event type; `null` for objects from the initial listing (Kopf's convention).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.event("kopfexamples", function eventFn({ type, name, logger }) {
 *   const kind: kopf.EventType = type;
 *   logger.info(kind === null ? `${name} was there at start` : `${name}: ${kind}`);
 * });
 * ```
 */
export type EventType = "ADDED" | "MODIFIED" | "DELETED" | null;

/**
 * What `on.event` filters get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // `when` of on.event handlers gets this context.
 * const isDeletion = ({ type }: kopf.EventCauseContext) => type === "DELETED";
 * kopf.on.event("pods", { when: isDeletion }, function eventFn({ name }) {
 *   console.log(`${name} is gone`);
 * });
 * ```
 */
export interface EventCauseContext<S = AnyFields, St = AnyFields> extends ResourceContext<S, St> {
  /** The event type. */
  type: EventType;
  /** The raw event. */
  event: { type: EventType; object: Body<S, St> };
}

/**
 * What `on.event` handlers get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function eventFn({ event, logger }: kopf.EventContext): void {
 *   logger.info(`${event.type ?? "LISTED"} ${event.object.metadata.name}`);
 * }
 * kopf.on.event("kopfexamples", eventFn);
 * ```
 */
export type EventContext<S = AnyFields, St = AnyFields> = EventCauseContext<S, St>;

/**
 * One reason why a daemon or timer is being stopped.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.daemon("kopfexamples", async function daemonFn({ stopped, logger }) {
 *   await stopped.wait();
 *   const deleted: kopf.StopReason = "resource-deleted";
 *   if (stopped.reason?.has(deleted)) logger.info("The object is gone.");
 * });
 * ```
 */
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
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.daemon("kopfexamples", async function watchFn({ stopped, logger }) {
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

/**
 * Kopf's `DaemonStopped`: whether and why a daemon or timer should stop.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * async function poll(stopped: kopf.DaemonStopped, seconds: number): Promise<void> {
 *   while (!stopped.isSet) {
 *     // … check on something …
 *     await stopped.wait(seconds); // returns early when the daemon is asked to stop
 *   }
 * }
 * kopf.daemon("kopfexamples", function daemonFn({ stopped }) {
 *   poll(stopped, 10);
 * });
 * ```
 */
export interface DaemonStopped {
  /** Stop was requested. */
  readonly isSet: boolean;
  /** Why, once requested: all the reasons so far (a snapshot; `null` before the request). */
  readonly reason: StopReasons | null;
  /** Wait up to `seconds` (forever if omitted) for a stop request; resolves to `isSet`. */
  wait(seconds?: number): Promise<boolean>;
}

/**
 * What daemons get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * interface Spec {
 *   url: string;
 * }
 * async function monitor({ spec, stopped, logger }: kopf.DaemonContext<Spec>): Promise<void> {
 *   while (!stopped.isSet) {
 *     logger.info(`Checking ${spec.url}`);
 *     await stopped.wait(30);
 *   }
 * }
 * kopf.daemon<Spec>("kopfexamples", monitor);
 * ```
 */
export interface DaemonContext<S = AnyFields, St = AnyFields>
  extends ResourceContext<S, St>, RetryContext {
  /** The stop request; `signal` aborts at the same moment. */
  stopped: DaemonStopped;
}

/**
 * What timers get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function tick({ patch }: kopf.TimerContext): void {
 *   patch.status.lastTick = new Date().toISOString();
 * }
 * kopf.timer("kopfexamples", { interval: 60 }, tick);
 * ```
 */
export type TimerContext<S = AnyFields, St = AnyFields> = DaemonContext<S, St>;

/**
 * What index handlers get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Pods by their `app` label: { app: ["namespace/name", …] } across all pods.
 * function byApp({ labels, namespace, name }: kopf.IndexContext) {
 *   return labels.app ? { [labels.app]: `${namespace}/${name}` } : null;
 * }
 * kopf.index("pods", byApp);
 * ```
 */
export type IndexContext<S = AnyFields, St = AnyFields> = ResourceContext<S, St> & RetryContext;

/**
 * The operator-level activities.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function startupFn({ activity, logger }) {
 *   const which: kopf.Activity = activity; // "startup"
 *   logger.info(`${which} begins`);
 * });
 * ```
 */
export type Activity = "startup" | "cleanup" | "login" | "probe";

/**
 * What startup/cleanup/login/probe handlers get.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function configure({ settings, logger }: kopf.ActivityContext): void {
 *   settings.posting.level = "warning";
 *   logger.info("Only warnings and errors will be posted as Events.");
 * }
 * kopf.on.startup(configure);
 * ```
 */
export interface ActivityContext extends BaseContext, RetryContext {
  /** Which activity. */
  activity: Activity;
  /** The operator's settings (mutable in startup handlers). */
  settings: Settings;
}

/**
 * A create/update/delete/resume/field handler or sub-handler; its return value goes to `status.<id>`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const reconcile: kopf.ChangingFn = ({ name, reason, logger }) => {
 *   logger.info(`Reconciling ${name} on ${reason}`);
 * };
 * kopf.on.create("kopfexamples", reconcile);
 * kopf.on.resume("kopfexamples", reconcile);
 * ```
 */
export type ChangingFn<S = AnyFields, St = AnyFields, V = unknown> = (
  context: ChangingContext<S, St, V>,
) => Awaitable<unknown>;

/**
 * An `on.event` handler; its return value goes to `status.<id>`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const audit: kopf.EventFn = ({ type, name, logger }) => logger.info(`${type}: ${name}`);
 * kopf.on.event("kopfexamples", audit);
 * kopf.on.event("configmaps", audit);
 * ```
 */
export type EventFn<S = AnyFields, St = AnyFields> = (
  context: EventContext<S, St>,
) => Awaitable<unknown>;

/**
 * A daemon.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const idle: kopf.DaemonFn = async ({ stopped }) => {
 *   while (!stopped.isSet) await stopped.wait(60);
 * };
 * kopf.daemon("kopfexamples", idle);
 * ```
 */
export type DaemonFn<S = AnyFields, St = AnyFields> = (
  context: DaemonContext<S, St>,
) => Awaitable<unknown>;

/**
 * A timer; its return value goes to `status.<id>`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const heartbeat: kopf.TimerFn = () => ({ alive: new Date().toISOString() });
 * kopf.timer("kopfexamples", { interval: 30 }, heartbeat);
 * ```
 */
export type TimerFn<S = AnyFields, St = AnyFields> = (
  context: TimerContext<S, St>,
) => Awaitable<unknown>;

/**
 * An index handler; its return value is the object's contribution to the index.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const phases: kopf.IndexFn = ({ name, status }) => ({ [name]: status.phase ?? null });
 * kopf.index("pods", phases);
 * ```
 */
export type IndexFn<S = AnyFields, St = AnyFields> = (
  context: IndexContext<S, St>,
) => Awaitable<unknown>;

/**
 * A startup/cleanup/login/probe handler.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const hello: kopf.ActivityFn = ({ activity, logger }) => logger.info(`${activity}: hello`);
 * kopf.on.startup(hello);
 * kopf.on.cleanup(hello);
 * ```
 */
export type ActivityFn = (context: ActivityContext) => Awaitable<unknown>;

/**
 * Options shared by all handlers.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // One function registered twice: the ids keep their progress apart, `param` tells them apart.
 * const sizes: kopf.IdOptions[] = [{ id: "small", param: 1 }, { id: "large", param: 100 }];
 * for (const options of sizes) {
 *   kopf.on.update("kopfexamples", options, function updateFn({ param, logger }) {
 *     logger.info(`limit ${param}`);
 *   });
 * }
 * ```
 */
export interface IdOptions {
  /** The handler id (default: derived from the function; see docs/handler-ids.md). */
  id?: string;
  /** Passed to the handler as `param` (lets one function be registered several times). */
  param?: unknown;
}

/**
 * How failures are retried.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const patient: kopf.RetryOptions = { errors: "temporary", retries: 5, backoff: 30 };
 * kopf.on.create("kopfexamples", patient, function createFn() {});
 * kopf.on.update("kopfexamples", patient, function updateFn() {});
 * ```
 */
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

/**
 * The registry option.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const mine: kopf.RegistryOption = { registry: new kopf.Registry() };
 * kopf.on.create("kopfexamples", mine, function createFn() {});
 * kopf.timer("kopfexamples", { ...mine, interval: 10 }, function timerFn() {});
 * ```
 */
export interface RegistryOption {
  /** The registry to register in (default: the global one). */
  registry?: Registry;
}

/**
 * Filters on the object (checked in Kopf's order: labels, annotations, field value, field change, when).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const webOnly: kopf.FilterOptions<kopf.ResourceContext> = {
 *   labels: { app: "web" },
 *   annotations: { "example.com/paused": kopf.ABSENT },
 * };
 * kopf.timer("pods", { ...webOnly, interval: 30 }, function timerFn() {});
 * kopf.daemon("pods", webOnly, async function daemonFn({ stopped }) {
 *   await stopped.wait();
 * });
 * ```
 */
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

/**
 * Filters on a field's change (update and field handlers).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // From one replica to more.
 * const scaledUp: kopf.ChangeFilterOptions<kopf.ChangingCauseContext> = {
 *   old: 1,
 *   new: (value) => Number(value) > 1,
 * };
 * kopf.on.update("deployments", { field: "spec.replicas", ...scaledUp }, function updateFn() {});
 * ```
 */
export interface ChangeFilterOptions<C> {
  /** The field's old value must match (needs `field`; not with `value`). */
  old?: ValueFilter<C>;
  /** The field's new value must match (needs `field`; not with `value`). */
  new?: ValueFilter<C>;
}

/**
 * Options of `on.create`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.CreateOptions = { id: "provision", retries: 3, labels: { tier: "db" } };
 * kopf.on.create("kopfexamples", options, function createFn() {});
 * ```
 */
export interface CreateOptions<S = AnyFields, St = AnyFields>
  extends
    SelectorSpec,
    IdOptions,
    RetryOptions,
    RegistryOption,
    FilterOptions<ChangingCauseContext<S, St>> {}

/**
 * Options of `on.resume`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Also resume objects found being deleted when the operator starts.
 * const options: kopf.ResumeOptions = { deleted: true };
 * kopf.on.resume("kopfexamples", options, function resumeFn({ name, logger }) {
 *   logger.info(`Resumed ${name}`);
 * });
 * ```
 */
export interface ResumeOptions<S = AnyFields, St = AnyFields> extends CreateOptions<S, St> {
  /** Also resume objects being deleted. */
  deleted?: boolean;
}

/**
 * Options of `on.update`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.UpdateOptions = { field: "spec.size", old: kopf.PRESENT, new: kopf.ABSENT };
 * kopf.on.update("kopfexamples", options, function updateFn({ logger }) {
 *   logger.info("spec.size was removed");
 * });
 * ```
 */
export interface UpdateOptions<S = AnyFields, St = AnyFields>
  extends CreateOptions<S, St>, ChangeFilterOptions<ChangingCauseContext<S, St>> {}

/**
 * Options of `on.delete`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Runs only if something else holds the deletion: no finalizer of its own.
 * const options: kopf.DeleteOptions = { optional: true };
 * kopf.on.delete("kopfexamples", options, function deleteFn({ name, logger }) {
 *   logger.info(`Deleting ${name}`);
 * });
 * ```
 */
export interface DeleteOptions<S = AnyFields, St = AnyFields> extends CreateOptions<S, St> {
  /** Do not add a finalizer for this handler: it runs only if deletion waits for others. */
  optional?: boolean;
}

/**
 * Options of `on.field` (`field` is required).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.FieldOptions = { field: "metadata.labels" };
 * kopf.on.field("kopfexamples", options, function fieldFn({ diff }) {
 *   console.log(`${diff.length} changes`);
 * });
 * ```
 */
export interface FieldOptions<S = AnyFields, St = AnyFields> extends UpdateOptions<S, St> {
  /** The field to watch. */
  field: FieldSpec;
}

/**
 * Options of `on.event` (no retries: errors are logged and ignored).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.EventOptions = { id: "audit", annotations: { "example.com/audit": "yes" } };
 * kopf.on.event("configmaps", options, function eventFn({ type, name, logger }) {
 *   logger.info(`${type} ${name}`);
 * });
 * ```
 */
export interface EventOptions<S = AnyFields, St = AnyFields>
  extends SelectorSpec, IdOptions, RegistryOption, FilterOptions<EventCauseContext<S, St>> {}

/**
 * Options of `kopf.index`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.IndexOptions = { field: "spec.nodeName", value: kopf.PRESENT };
 * kopf.index("pods", options, function indexFn({ spec, name }) {
 *   return { [String(spec.nodeName)]: name };
 * });
 * ```
 */
export interface IndexOptions<S = AnyFields, St = AnyFields>
  extends
    SelectorSpec,
    IdOptions,
    RetryOptions,
    RegistryOption,
    FilterOptions<ResourceContext<S, St>> {}

/**
 * Options shared by daemons and timers.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Shared by a daemon and a timer: both wait a minute after an object appears.
 * const later: kopf.SpawningOptions = { initialDelay: 60, labels: { app: kopf.PRESENT } };
 * kopf.daemon("kopfexamples", later, async function daemonFn({ stopped }) {
 *   await stopped.wait();
 * });
 * kopf.timer("kopfexamples", { ...later, interval: 300 }, function timerFn() {});
 * ```
 */
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

/**
 * Options of `kopf.daemon`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // On deletion: stop requested, 10 s to exit on its own, then `signal` aborts, 5 s more.
 * const options: kopf.DaemonOptions = { cancellationBackoff: 10, cancellationTimeout: 5 };
 * kopf.daemon("kopfexamples", options, async function daemonFn({ stopped, signal }) {
 *   while (!stopped.isSet && !signal.aborted) await stopped.wait(1);
 * });
 * ```
 */
export interface DaemonOptions<S = AnyFields, St = AnyFields> extends SpawningOptions<S, St> {
  /** Seconds between the stop request and aborting `signal`. */
  cancellationBackoff?: number;
  /** Seconds to wait for the daemon to exit after aborting, before abandoning it. */
  cancellationTimeout?: number;
  /** Seconds between checks whether a stopping daemon has exited. */
  cancellationPolling?: number;
}

/**
 * Options of `kopf.timer`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Every 10 minutes on the clock, once the object has been left unchanged for a minute.
 * const options: kopf.TimerOptions = { interval: 600, sharp: true, idle: 60 };
 * kopf.timer("kopfexamples", options, function timerFn({ name, logger }) {
 *   logger.info(`Checking ${name}`);
 * });
 * ```
 */
export interface TimerOptions<S = AnyFields, St = AnyFields> extends SpawningOptions<S, St> {
  /** Seconds between calls (from the end of one to the start of the next). */
  interval?: number;
  /** Align calls to multiples of `interval` instead of measuring from the last call's end. */
  sharp?: boolean;
  /** Call only after the object's essence has not changed for this many seconds. */
  idle?: number;
}

/**
 * Options of activities (`on.startup`, `on.cleanup`, `on.login`, `on.probe`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.ActivityOptions = { id: "warm-up", retries: 3, backoff: 5 };
 * kopf.on.startup(options, function startupFn({ logger }) {
 *   logger.info("Warming up");
 * });
 * ```
 */
export interface ActivityOptions extends IdOptions, RetryOptions, RegistryOption {}

/**
 * Options of sub-handlers (no selector, no registry).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function createFn({ spec, subhandler }) {
 *   for (const region of (spec.regions ?? []) as string[]) {
 *     const options: kopf.SubhandlerOptions = { id: `region-${region}`, retries: 3 };
 *     subhandler(options, ({ logger }) => logger.info(`Provisioning in ${region}`));
 *   }
 * });
 * ```
 */
export interface SubhandlerOptions<S = AnyFields, St = AnyFields>
  extends
    IdOptions,
    RetryOptions,
    FilterOptions<ChangingCauseContext<S, St>>,
    ChangeFilterOptions<ChangingCauseContext<S, St>> {}
