/**
 * What `kopf.on.*`, `kopf.daemon`, `kopf.timer`, `kopf.index` and sub-handler registrations
 * record, and their validation: invalid combinations fail at registration with Kopf's rules and
 * a one-line message naming the handler and the option.
 *
 * @module
 */

import type { ErrorsMode } from "../handling/errors.ts";
import {
  type EVERYTHING,
  parseSelector,
  type ResourcePredicate,
  type Selector,
  type SelectorSpec,
} from "../kube/selector.ts";
import { type FieldPath, isObject, parseField } from "../storage/fields.ts";
import type {
  Activity,
  ActivityFn,
  ActivityOptions,
  AnyFields,
  ChangingFn,
  CreateOptions,
  DaemonFn,
  DaemonOptions,
  DeleteOptions,
  EventFn,
  EventOptions,
  FieldOptions,
  HandlerSink,
  IndexFn,
  IndexOptions,
  ResumeOptions,
  TimerFn,
  TimerOptions,
  UpdateOptions,
} from "./context.ts";
import { isToken, type MetaFilter, type ValueFilter } from "./filters.ts";
import { type CallSite, captureCallSite, generateId } from "./ids.ts";

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

/** Handlers of resource objects. */
export type ResourceHandler =
  | ChangingHandler
  | WatchingHandler
  | IndexingHandler
  | DaemonHandler
  | TimerHandler;

/** Any handler record. */
export type HandlerRecord = ResourceHandler | ActivityHandler;

const SELECTOR_KEYS = ["group", "version", "kind", "plural", "singular", "shortcut", "category"];
const ID_KEYS = ["id", "param"];
const RETRY_KEYS = ["errors", "timeout", "retries", "backoff"];
const FILTER_KEYS = ["labels", "annotations", "when", "field", "value"];
const CHANGE_KEYS = ["old", "new"];
const SPAWNING_KEYS = ["initialDelay", "requiresFinalizer"];
const ERRORS_MODES: readonly ErrorsMode[] = ["temporary", "permanent", "ignored"];

/** A registration error: the message names the registration and the option. */
function fail(source: string, message: string): never {
  throw new TypeError(`${source}: ${message}`);
}

function displayName(fn: unknown, site: CallSite | null): string {
  const name = typeof fn === "function" ? fn.name.replace(/^(bound )+/, "") : "";
  if (name && name !== "anonymous") return name;
  return site ? `anonymous function at ${site.file}:${site.line}` : "anonymous function";
}

function camelCase(key: string): string {
  return key.replace(/_([a-z])/g, (_m, ch: string) => ch.toUpperCase());
}

function checkKeys(source: string, options: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const camel = camelCase(key);
    const hint = camel !== key && allowed.includes(camel)
      ? ` (did you mean "${camel}"?)`
      : `; known options: ${allowed.join(", ")}`;
    fail(source, `unknown option "${key}"${hint}`);
  }
}

function checkSeconds(source: string, name: string, value: unknown, positive = false): void {
  if (value === undefined) return;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 0 || (positive && value === 0)
  ) {
    fail(
      source,
      `${name} must be a ${positive ? "positive" : "non-negative"} number of seconds, got ${
        show(value)
      }`,
    );
  }
}

function checkBoolean(source: string, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") {
    fail(source, `${name} must be true or false, got ${show(value)}`);
  }
}

function show(value: unknown): string {
  if (typeof value === "function") return `<function ${value.name || "anonymous"}>`;
  if (typeof value === "symbol") return value.description ?? "symbol";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function checkRetry(source: string, options: Record<string, unknown>): void {
  const { errors, timeout, retries, backoff } = options;
  if (errors !== undefined && !ERRORS_MODES.includes(errors as ErrorsMode)) {
    fail(
      source,
      `errors must be one of ${ERRORS_MODES.map((m) => `"${m}"`).join(", ")}, got ${show(errors)}`,
    );
  }
  checkSeconds(source, "timeout", timeout);
  checkSeconds(source, "backoff", backoff);
  if (retries !== undefined && (!Number.isInteger(retries) || (retries as number) < 1)) {
    // Kopf accepts 0, which fails the handler before its first attempt; reject it loudly.
    fail(
      source,
      `retries must be a positive integer (the number of attempts), got ${show(retries)}`,
    );
  }
}

function checkMetaFilter(source: string, name: string, filter: unknown): void {
  if (filter === undefined) return;
  if (!isObject(filter)) {
    fail(source, `${name} must be an object of key → value, got ${show(filter)}`);
  }
  for (const [key, value] of Object.entries(filter)) {
    if (value === null || value === undefined) {
      fail(source, `${name}["${key}"] is ${value}; use kopf.PRESENT or kopf.ABSENT`);
    }
    if (typeof value !== "string" && typeof value !== "function" && !isToken(value)) {
      fail(
        source,
        `${name}["${key}"] must be a string, kopf.PRESENT, kopf.ABSENT or a function, got ${
          show(value)
        }`,
      );
    }
  }
}

function checkField(source: string, field: unknown): FieldPath | null {
  if (field === undefined) return null;
  const valid = (typeof field === "string" && field !== "") ||
    (Array.isArray(field) && field.length > 0 && field.every((k) => typeof k === "string" && k));
  if (!valid) {
    fail(source, `field must be a dotted path or a non-empty array of keys, got ${show(field)}`);
  }
  const path = parseField(field as string | string[]);
  if (path.some((k) => k === "")) fail(source, `field ${show(field)} has an empty part`);
  return path;
}

function checkValueFilters(
  source: string,
  options: Record<string, unknown>,
  field: FieldPath | null,
): void {
  const given = ["value", "old", "new"].filter((k) => options[k] !== undefined);
  if (given.length && field === null) {
    fail(source, `${given.join("/")} filters need a field (give field: "spec.something")`);
  }
  if (options.value !== undefined && (options.old !== undefined || options.new !== undefined)) {
    fail(source, "either value or old/new can be given, not both");
  }
}

function checkCommon(source: string, fn: unknown, options: Record<string, unknown>): void {
  if (typeof fn !== "function") fail(source, `the handler must be a function, got ${show(fn)}`);
  if (options.id !== undefined && (typeof options.id !== "string" || options.id === "")) {
    fail(source, `id must be a non-empty string, got ${show(options.id)}`);
  }
  if (options.registry !== undefined) {
    const registry = options.registry as { append?: unknown } | null;
    if (typeof registry?.append !== "function") fail(source, "registry must be a kopf.Registry");
  }
}

function checkFilters(source: string, options: Record<string, unknown>): FieldPath | null {
  checkMetaFilter(source, "labels", options.labels);
  checkMetaFilter(source, "annotations", options.annotations);
  if (options.when !== undefined && typeof options.when !== "function") {
    fail(source, `when must be a function, got ${show(options.when)}`);
  }
  const field = checkField(source, options.field);
  checkValueFilters(source, options, field);
  return field;
}

/** The positional selector arguments, the options object, and the handler, split apart. */
interface SplitArgs {
  selector: (string | typeof EVERYTHING | ResourcePredicate)[];
  options: Record<string, unknown>;
  fn: unknown;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
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
  return { selector: rest as SplitArgs["selector"], options, fn };
}

function buildSelector(source: string, args: SplitArgs): Selector {
  const keywords: SelectorSpec = {};
  for (const key of SELECTOR_KEYS) {
    const value = args.options[key];
    if (value !== undefined) (keywords as Record<string, unknown>)[key] = value;
  }
  try {
    return Object.keys(keywords).length
      ? parseSelector(...args.selector, keywords)
      : parseSelector(...args.selector);
  } catch (error) {
    return fail(source, error instanceof Error ? error.message : String(error));
  }
}

/** Everything a registration needs to know about where it came from. */
interface Origin {
  api: string;
  fn: unknown;
  options: Record<string, unknown>;
  site: CallSite | null;
  source: string;
}

function origin(api: string, fn: unknown, options: Record<string, unknown>): Origin {
  const named = typeof fn === "function" && fn.name.replace(/^(bound )+/, "") !== "" &&
    fn.name !== "anonymous";
  // The stack is read only when the id has to come from the call site (or for messages).
  const site = named ? null : captureCallSite();
  return { api, fn, options, site, source: `${api}(${displayName(fn, site)})` };
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

type ChangingApi = "resume" | "create" | "update" | "delete" | "field";

/** Validate and build a changing handler (`on.resume/create/update/delete/field`). */
export function buildChangingHandler(api: ChangingApi, args: readonly unknown[]): ChangingHandler {
  const split = splitArgs(`kopf.on.${api}`, args);
  const o = origin(`kopf.on.${api}`, split.fn, split.options);
  const extra = api === "resume"
    ? ["deleted"]
    : api === "delete"
    ? ["optional"]
    : api === "update" || api === "field"
    ? CHANGE_KEYS
    : [];
  checkKeys(o.source, o.options, [
    ...SELECTOR_KEYS,
    ...ID_KEYS,
    ...RETRY_KEYS,
    ...FILTER_KEYS,
    ...extra,
    "registry",
  ]);
  checkCommon(o.source, o.fn, o.options);
  checkRetry(o.source, o.options);
  const field = checkFilters(o.source, o.options);
  checkBoolean(o.source, "deleted", o.options.deleted);
  checkBoolean(o.source, "optional", o.options.optional);
  if (api === "field" && field === null) fail(o.source, "field is required for on.field handlers");
  const selector = buildSelector(o.source, split);
  return {
    kind: "changing",
    ...common(o, field, "Handler"),
    selector,
    ...filters(o, field),
    reason: api === "create" || api === "update" || api === "delete" ? api : null,
    initial: api === "resume",
    deleted: o.options.deleted === true,
    requiresFinalizer: api === "delete" && o.options.optional !== true,
    fieldNeedsChange: api === "update" || api === "field",
    old: o.options.old as ValueFilter<ErasedContext> | undefined,
    new: o.options.new as ValueFilter<ErasedContext> | undefined,
  };
}

/** Validate and build an `on.event` handler. */
export function buildWatchingHandler(args: readonly unknown[]): WatchingHandler {
  const split = splitArgs("kopf.on.event", args);
  const o = origin("kopf.on.event", split.fn, split.options);
  checkKeys(o.source, o.options, [...SELECTOR_KEYS, ...ID_KEYS, ...FILTER_KEYS, "registry"]);
  checkCommon(o.source, o.fn, o.options);
  const field = checkFilters(o.source, o.options);
  const selector = buildSelector(o.source, split);
  return {
    kind: "watching",
    ...common(o, field, "Handler"),
    selector,
    ...filters(o, field),
  };
}

/** Validate and build a `kopf.index` handler (ids get no field suffix, as in Kopf). */
export function buildIndexingHandler(args: readonly unknown[]): IndexingHandler {
  const split = splitArgs("kopf.index", args);
  const o = origin("kopf.index", split.fn, split.options);
  checkKeys(o.source, o.options, [
    ...SELECTOR_KEYS,
    ...ID_KEYS,
    ...RETRY_KEYS,
    ...FILTER_KEYS,
    "registry",
  ]);
  checkCommon(o.source, o.fn, o.options);
  checkRetry(o.source, o.options);
  const field = checkFilters(o.source, o.options);
  const selector = buildSelector(o.source, split);
  return {
    kind: "indexing",
    ...common(o, null, "Indexer"),
    selector,
    ...filters(o, field),
  };
}

function checkSpawning(o: Origin): void {
  const { initialDelay } = o.options;
  if (typeof initialDelay !== "function") checkSeconds(o.source, "initialDelay", initialDelay);
  checkBoolean(o.source, "requiresFinalizer", o.options.requiresFinalizer);
}

/** Validate and build a `kopf.daemon`. */
export function buildDaemonHandler(args: readonly unknown[]): DaemonHandler {
  const split = splitArgs("kopf.daemon", args);
  const o = origin("kopf.daemon", split.fn, split.options);
  const own = ["cancellationBackoff", "cancellationTimeout", "cancellationPolling"];
  checkKeys(o.source, o.options, [
    ...SELECTOR_KEYS,
    ...ID_KEYS,
    ...RETRY_KEYS,
    ...FILTER_KEYS,
    ...SPAWNING_KEYS,
    ...own,
    "registry",
  ]);
  checkCommon(o.source, o.fn, o.options);
  checkRetry(o.source, o.options);
  const field = checkFilters(o.source, o.options);
  checkSpawning(o);
  for (const key of own) checkSeconds(o.source, key, o.options[key], key === "cancellationPolling");
  const selector = buildSelector(o.source, split);
  const asksForCleanupTime = o.options.cancellationBackoff !== undefined ||
    o.options.cancellationTimeout !== undefined;
  return {
    kind: "daemon",
    ...common(o, field, "Daemon"),
    selector,
    ...filters(o, field),
    requiresFinalizer: (o.options.requiresFinalizer as boolean | undefined) ?? asksForCleanupTime,
    initialDelay: o.options.initialDelay as DaemonHandler["initialDelay"],
    cancellationBackoff: o.options.cancellationBackoff as number | undefined,
    cancellationTimeout: o.options.cancellationTimeout as number | undefined,
    cancellationPolling: o.options.cancellationPolling as number | undefined,
  };
}

/** Validate and build a `kopf.timer`. */
export function buildTimerHandler(args: readonly unknown[]): TimerHandler {
  const split = splitArgs("kopf.timer", args);
  const o = origin("kopf.timer", split.fn, split.options);
  checkKeys(o.source, o.options, [
    ...SELECTOR_KEYS,
    ...ID_KEYS,
    ...RETRY_KEYS,
    ...FILTER_KEYS,
    ...SPAWNING_KEYS,
    "interval",
    "sharp",
    "idle",
    "registry",
  ]);
  checkCommon(o.source, o.fn, o.options);
  checkRetry(o.source, o.options);
  const field = checkFilters(o.source, o.options);
  checkSpawning(o);
  checkSeconds(o.source, "interval", o.options.interval, true);
  checkSeconds(o.source, "idle", o.options.idle);
  checkBoolean(o.source, "sharp", o.options.sharp);
  if (o.options.sharp && o.options.interval === undefined) {
    fail(o.source, "sharp needs an interval to align to");
  }
  const selector = buildSelector(o.source, split);
  return {
    kind: "timer",
    ...common(o, field, "Timer"),
    selector,
    ...filters(o, field),
    requiresFinalizer: (o.options.requiresFinalizer as boolean | undefined) ?? false,
    initialDelay: o.options.initialDelay as TimerHandler["initialDelay"],
    interval: o.options.interval as number | undefined,
    sharp: o.options.sharp as boolean | undefined,
    idle: o.options.idle as number | undefined,
  };
}

/** Validate and build an activity handler. */
export function buildActivityHandler(
  activity: Activity,
  args: readonly unknown[],
): ActivityHandler {
  const api = `kopf.on.${activity}`;
  const split = splitArgs(api, args);
  const o = origin(api, split.fn, split.options);
  if (split.selector.length) fail(o.source, "activities take no resource selector");
  checkKeys(o.source, o.options, [...ID_KEYS, ...RETRY_KEYS, "registry"]);
  checkCommon(o.source, o.fn, o.options);
  checkRetry(o.source, o.options);
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
  const source = `${parent.title}: ${o.source}`;
  const at = { ...o, source };
  checkKeys(source, options, [...ID_KEYS, ...RETRY_KEYS, ...FILTER_KEYS, ...CHANGE_KEYS]);
  checkCommon(source, fn, options);
  checkRetry(source, options);
  const field = checkFilters(source, options);
  const isUpdateLike = parent.reason === "update" || (parent.reason === null && !parent.initial);
  if ((options.old !== undefined || options.new !== undefined) && !isUpdateLike) {
    fail(source, "old/new filters can only be used in sub-handlers of update and field handlers");
  }
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

/** Positional selector arguments: a name, `EVERYTHING`, or (first only) a predicate. */
export type SelectorArg = string | typeof EVERYTHING | ResourcePredicate;

/** Group/version/name positional arguments. */
export type SelectorName = string | typeof EVERYTHING;

/** Per registration kind: its options and its handler type. */
export interface RegistrationKinds<S, St, V> {
  /** `on.resume`. */
  resume: [ResumeOptions<S, St>, ChangingFn<S, St, V>];
  /** `on.create`. */
  create: [CreateOptions<S, St>, ChangingFn<S, St, V>];
  /** `on.update`. */
  update: [UpdateOptions<S, St>, ChangingFn<S, St, V>];
  /** `on.delete`. */
  delete: [DeleteOptions<S, St>, ChangingFn<S, St, V>];
  /** `on.field`. */
  field: [FieldOptions<S, St>, ChangingFn<S, St, V>];
  /** `on.event`. */
  event: [EventOptions<S, St>, EventFn<S, St>];
  /** `kopf.daemon`. */
  daemon: [DaemonOptions<S, St>, DaemonFn<S, St>];
  /** `kopf.timer`. */
  timer: [TimerOptions<S, St>, TimerFn<S, St>];
  /** `kopf.index`. */
  index: [IndexOptions<S, St>, IndexFn<S, St>];
}

/** A registration kind. */
export type RegistrationKind = keyof RegistrationKinds<unknown, unknown, unknown>;

/** The options type of a registration kind. */
export type RegistrationOptions<K extends RegistrationKind, S, St, V> = RegistrationKinds<
  S,
  St,
  V
>[K][0];
/** The handler type of a registration kind. */
export type RegistrationHandler<K extends RegistrationKind, S, St, V> = RegistrationKinds<
  S,
  St,
  V
>[K][1];

/**
 * A resource registration function: up to three selector arguments, then optional options
 * (which may also carry the selector as `{ group, version, kind, plural, … }`), then the
 * handler, which is returned. `S`/`St` type the object's spec and status; `V` the field's old
 * and new values of field handlers.
 */
export interface Registrar<K extends RegistrationKind> {
  /** `(selector, handler)`. */
  <S = AnyFields, St = AnyFields, V = unknown>(
    selector: SelectorArg,
    fn: RegistrationHandler<K, S, St, V>,
  ): RegistrationHandler<K, S, St, V>;
  /** `(selector, options, handler)`. */
  <S = AnyFields, St = AnyFields, V = unknown>(
    selector: SelectorArg,
    options: RegistrationOptions<K, S, St, V>,
    fn: RegistrationHandler<K, S, St, V>,
  ): RegistrationHandler<K, S, St, V>;
  /** `(options with kind/plural/…, handler)`. */
  <S = AnyFields, St = AnyFields, V = unknown>(
    options: RegistrationOptions<K, S, St, V>,
    fn: RegistrationHandler<K, S, St, V>,
  ): RegistrationHandler<K, S, St, V>;
  /** `(group or group/version, name, handler)`. */
  <S = AnyFields, St = AnyFields, V = unknown>(
    group: SelectorName,
    name: SelectorName,
    fn: RegistrationHandler<K, S, St, V>,
  ): RegistrationHandler<K, S, St, V>;
  /** `(group or group/version, name, options, handler)`. */
  <S = AnyFields, St = AnyFields, V = unknown>(
    group: SelectorName,
    name: SelectorName,
    options: RegistrationOptions<K, S, St, V>,
    fn: RegistrationHandler<K, S, St, V>,
  ): RegistrationHandler<K, S, St, V>;
  /** `(group, version, name, handler)`. */
  <S = AnyFields, St = AnyFields, V = unknown>(
    group: SelectorName,
    version: SelectorName,
    name: SelectorName,
    fn: RegistrationHandler<K, S, St, V>,
  ): RegistrationHandler<K, S, St, V>;
  /** `(group, version, name, options, handler)`. */
  <S = AnyFields, St = AnyFields, V = unknown>(
    group: SelectorName,
    version: SelectorName,
    name: SelectorName,
    options: RegistrationOptions<K, S, St, V>,
    fn: RegistrationHandler<K, S, St, V>,
  ): RegistrationHandler<K, S, St, V>;
}

/** An activity registration function: optional options, then the handler, which is returned. */
export interface ActivityRegistrar {
  /** `(handler)`. */
  (fn: ActivityFn): ActivityFn;
  /** `(options, handler)`. */
  (options: ActivityOptions, fn: ActivityFn): ActivityFn;
}

/** The `kopf.on` namespace. */
export interface OnApi {
  /** Register a startup activity (runs before watching starts; retried until it succeeds). */
  startup: ActivityRegistrar;
  /** Register a cleanup activity (runs on graceful exit). */
  cleanup: ActivityRegistrar;
  /** Register a login activity (returns credentials). */
  login: ActivityRegistrar;
  /** Register a liveness probe (its result is reported under its id). */
  probe: ActivityRegistrar;
  /** Handle objects found at operator start (once per object per process). */
  resume: Registrar<"resume">;
  /** Handle object creation. */
  create: Registrar<"create">;
  /** Handle essential changes (with `field`: of that field only). */
  update: Registrar<"update">;
  /** Handle deletion (a finalizer is kept unless `optional`). */
  delete: Registrar<"delete">;
  /** Handle changes of one field, whatever the cause. */
  field: Registrar<"field">;
  /** Observe every raw watch event (no retries, no state). */
  event: Registrar<"event">;
}

/** The registration functions, bound to a registry. */
export interface Registrars {
  /** `kopf.on.*`. */
  on: OnApi;
  /** `kopf.daemon`. */
  daemon: Registrar<"daemon">;
  /** `kopf.timer`. */
  timer: Registrar<"timer">;
  /** `kopf.index`. */
  index: Registrar<"index">;
}

function sinkOf(args: readonly unknown[], fallback: () => HandlerSink): HandlerSink {
  const options = args.length >= 2 ? args.at(-2) : undefined;
  const explicit = isPlainObject(options) ? options.registry as HandlerSink | undefined : undefined;
  return explicit ?? fallback();
}

/**
 * Registration functions that append to the registry given in the options, else to `sink()`.
 */
export function createRegistrars(sink: () => HandlerSink): Registrars {
  const register = (
    args: readonly unknown[],
    build: (args: readonly unknown[]) => HandlerRecord,
  ) => {
    const handler = build(args);
    sinkOf(args, sink).append(handler);
    return handler.fn;
  };
  const activity = (name: Activity) =>
    ((...args: unknown[]) =>
      register(args, (a) => buildActivityHandler(name, a))) as ActivityRegistrar;
  const changing = <K extends ChangingApi>(api: K) =>
    ((...args: unknown[]) => register(args, (a) => buildChangingHandler(api, a))) as Registrar<K>;
  const resource = <K extends RegistrationKind>(
    build: (args: readonly unknown[]) => HandlerRecord,
  ) => ((...args: unknown[]) => register(args, build)) as Registrar<K>;
  return {
    on: {
      startup: activity("startup"),
      cleanup: activity("cleanup"),
      login: activity("login"),
      probe: activity("probe"),
      resume: changing("resume"),
      create: changing("create"),
      update: changing("update"),
      delete: changing("delete"),
      field: changing("field"),
      event: resource<"event">(buildWatchingHandler),
    },
    daemon: resource<"daemon">(buildDaemonHandler),
    timer: resource<"timer">(buildTimerHandler),
    index: resource<"index">(buildIndexingHandler),
  };
}
