/**
 * The registration functions: `kopf.on.*`, `kopf.daemon`, `kopf.timer`, `kopf.index`, typed with
 * one overload per Kopf call form, and {@linkcode createRegistrars} binding them to a registry.
 *
 * @module
 */

import type { EVERYTHING, SelectorArg } from "../kube/selector.ts";
import { buildActivityHandler, buildResourceHandler, isPlainObject } from "./builders.ts";
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
import type { HandlerRecord } from "./records.ts";
import type { AdmissionFn, WebhookOptions } from "./admission.ts";

/**
 * Group/version/name positional arguments.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const group: kopf.SelectorName = "kopf.dev/v1";
 * const plural: kopf.SelectorName = "kopfexamples";
 * kopf.on.create(group, plural, function createFn() {});
 * kopf.on.event(kopf.EVERYTHING, function eventFn({ type, name }) {
 *   console.log(type, name);
 * });
 * ```
 */
export type SelectorName = string | typeof EVERYTHING;

/**
 * Per registration kind: its options and its handler type.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * type CreateFn = kopf.RegistrationKinds<{ size: number }, kopf.AnyFields, unknown>["create"][1];
 * const createFn: CreateFn = ({ spec }) => ({ size: spec.size }); // spec is { size: number }
 * kopf.on.create<{ size: number }>("kopfexamples", createFn);
 * ```
 */
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
  /** `on.validate`. */
  validate: [WebhookOptions<S, St>, AdmissionFn<S, St>];
  /** `on.mutate`. */
  mutate: [WebhookOptions<S, St>, AdmissionFn<S, St>];
}

/**
 * A registration kind.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Every resource registration but the activities: kopf.on.*, kopf.daemon/timer/index.
 * const changing: kopf.RegistrationKind[] = ["resume", "create", "update", "delete", "field"];
 * const background: kopf.RegistrationKind[] = ["daemon", "timer", "index"];
 * ```
 */
export type RegistrationKind = keyof RegistrationKinds<unknown, unknown, unknown>;

/**
 * The options type of a registration kind.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.RegistrationOptions<"timer", kopf.AnyFields, kopf.AnyFields, unknown> = {
 *   interval: 30,
 *   idle: 10,
 * };
 * kopf.timer("kopfexamples", options, function timerFn() {});
 * ```
 */
export type RegistrationOptions<K extends RegistrationKind, S, St, V> = RegistrationKinds<
  S,
  St,
  V
>[K][0];
/**
 * The handler type of a registration kind.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const heartbeat: kopf.RegistrationHandler<"timer", kopf.AnyFields, kopf.AnyFields, unknown> =
 *   ({ name }) => ({ alive: name });
 * kopf.timer("kopfexamples", { interval: 30 }, heartbeat);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // A registration function, passed around: the handler's type follows the kind.
 * function logged(register: kopf.Registrar<"create">, plural: string): void {
 *   register(plural, function logCreation({ name, logger }) {
 *     logger.info(`Created ${name}`);
 *   });
 * }
 * logged(kopf.on.create, "kopfexamples");
 * logged(new kopf.Registry().on.create, "configmaps");
 * ```
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

/**
 * An activity registration function: optional options, then the handler, which is returned.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const both: kopf.ActivityRegistrar[] = [kopf.on.startup, kopf.on.cleanup];
 * for (const register of both) {
 *   register(function announce({ activity, logger }) {
 *     logger.info(`${activity} done`);
 *   });
 * }
 * ```
 */
export interface ActivityRegistrar {
  /** `(handler)`. */
  (fn: ActivityFn): ActivityFn;
  /** `(options, handler)`. */
  (options: ActivityOptions, fn: ActivityFn): ActivityFn;
}

/**
 * The `kopf.on` namespace.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // The global `kopf.on` and a registry's own `on` are both an OnApi.
 * const registry = new kopf.Registry();
 * for (const on of [kopf.on, registry.on] as kopf.OnApi[]) {
 *   on.create("kopfexamples", function createFn({ name }) {
 *     console.log(`Created ${name}`);
 *   });
 * }
 * ```
 */
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
  /** Validate objects before the API server stores them (an admission webhook per handler). */
  validate: Registrar<"validate">;
  /** Change objects before the API server stores them, through `patch` (a mutating webhook). */
  mutate: Registrar<"mutate">;
}

/**
 * The registration functions, bound to a registry.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const registry = new kopf.Registry();
 * const { daemon, timer, index }: Pick<kopf.Registrars, "daemon" | "timer" | "index"> = registry;
 * timer("kopfexamples", { interval: 60 }, function tick() {});
 * ```
 */
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

/**
 * Registration functions that append to the registry given in the options, else to `sink()`.
 */
export function createRegistrars(sink: () => HandlerSink): Registrars {
  const registrar =
    (build: (args: readonly unknown[]) => HandlerRecord) => (...args: unknown[]) => {
      const handler = build(args);
      const options = args.at(-2); // the registry option was checked by the build
      ((isPlainObject(options) && options.registry as HandlerSink) || sink()).append(handler);
      return handler.fn;
    };
  const activity = (name: Activity) =>
    registrar((args) => buildActivityHandler(name, args)) as ActivityRegistrar;
  const resource = <K extends RegistrationKind>(api: K) =>
    registrar((args) => buildResourceHandler(api, args)) as Registrar<K>;
  return {
    on: {
      startup: activity("startup"),
      cleanup: activity("cleanup"),
      login: activity("login"),
      probe: activity("probe"),
      resume: resource("resume"),
      create: resource("create"),
      update: resource("update"),
      delete: resource("delete"),
      field: resource("field"),
      event: resource("event"),
      validate: resource("validate"),
      mutate: resource("mutate"),
    },
    daemon: resource("daemon"),
    timer: resource("timer"),
    index: resource("index"),
  };
}
