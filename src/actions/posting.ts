/**
 * `kopf.event()`, `kopf.info()`, `kopf.warn()`, `kopf.exception()`: Kubernetes Events about
 * objects, posted through the running operator's aggregated, rate-limited poster.
 *
 * Inside a handler, the events go to the operator running that handler; elsewhere (e.g. in a
 * task a handler started), to the operator started last. Without a running operator they are
 * dropped with a debug message (as Kopf's queue would never be drained).
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { getLogger } from "@logtape/logtape";
import type { EventPoster, EventSubjects } from "../kube/events.ts";
import type { PostingSettings } from "../settings/settings.ts";

const logger = getLogger(["kopf", "events"]);

/** What events need from an operator. */
export interface PostingTarget {
  /** The operator's poster. */
  readonly poster: Pick<EventPoster, "event" | "exception">;
  /** The operator's posting settings (`enabled`, `level`). */
  readonly settings: PostingSettings;
}

// Kopf compares `settings.posting.level` with Python's numeric logging levels. The names are the
// object logger's (`loggers.ts`), aliases included, so that both read a level alike.
const LEVELS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 10,
  info: 20,
  warn: 30,
  warning: 30,
  error: 40,
  fatal: 50,
};

/** Whether `posting.level` lets an event of `level` through (Kopf's `level <= logging.X`). */
function levelAllows(settings: PostingSettings, level: "info" | "warning" | "error"): boolean {
  return (LEVELS[settings.level] ?? LEVELS.info) <= LEVELS[level];
}

const scope = new AsyncLocalStorage<PostingTarget>();
const running: PostingTarget[] = [];

/** Make `target` the destination of events while it runs (the operator calls it). */
export function registerPostingTarget(target: PostingTarget): () => void {
  running.push(target);
  return () => {
    const index = running.lastIndexOf(target);
    if (index >= 0) running.splice(index, 1);
  };
}

/** Run `fn` with events going to `target` (handlers of an operator run inside it). */
export function withPostingTarget<T>(target: PostingTarget, fn: () => T): T {
  return scope.run(target, fn);
}

function target(): PostingTarget | undefined {
  return scope.getStore() ?? running.at(-1);
}

/**
 * What an event says (Kopf's keyword arguments).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const ready: kopf.EventPostOptions = { reason: "Ready", message: "All children are up." };
 * kopf.on.create("kopfexamples", function announce({ body }) {
 *   kopf.info(body, ready);
 * });
 * ```
 */
export interface EventPostOptions {
  /** A short CamelCase reason. */
  reason: string;
  /** A human-readable message. */
  message?: string;
}

/**
 * Post an Event of any type about one object or several (Kopf's `kopf.event`); a no-op when
 * `settings.posting.enabled` is off. As in Kopf, `posting.level` does not apply: the type is
 * free-form and has no level.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function announce({ body }) {
 *   kopf.event(body, { type: "SomeType", reason: "SomeReason", message: "Some message" });
 * });
 * ```
 */
export function event(objs: EventSubjects, options: EventPostOptions & { type: string }): void {
  const found = target();
  if (!found) return void logger.debug("No operator is running; the event is dropped.");
  if (!found.settings.enabled) return;
  found.poster.event(objs, {
    type: options.type,
    reason: options.reason,
    message: options.message ?? "",
  });
}

/**
 * Post a `Normal` Event (Kopf's `kopf.info`); a no-op when `settings.posting.enabled` is off or
 * `settings.posting.level` is above `"info"`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function announce({ body }) {
 *   kopf.info(body, { reason: "SomeReason", message: "Some message" });
 * });
 * ```
 */
export function info(objs: EventSubjects, options: EventPostOptions): void {
  const found = target();
  if (!found) return void logger.debug("No operator is running; the event is dropped.");
  if (!found.settings.enabled || !levelAllows(found.settings, "info")) return;
  found.poster.event(objs, {
    type: "Normal",
    reason: options.reason,
    message: options.message ?? "",
  });
}

/**
 * Post a `Warning` Event (Kopf's `kopf.warn`); a no-op when `settings.posting.level` is `"error"`.
 * As in Kopf, it is posted even when `posting.enabled` is off.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.update("kopfexamples", function check({ body, spec }) {
 *   if (!spec.size) kopf.warn(body, { reason: "NoSize", message: "spec.size is not set." });
 * });
 * ```
 */
export function warn(objs: EventSubjects, options: EventPostOptions): void {
  const found = target();
  if (!found) return void logger.debug("No operator is running; the event is dropped.");
  if (!levelAllows(found.settings, "warning")) return;
  found.poster.event(objs, {
    type: "Warning",
    reason: options.reason,
    message: options.message ?? "",
  });
}

/**
 * Post an `Error` Event about an exception (Kopf's `kopf.exception`): the reason defaults to
 * the error's class name, and its message is appended. A no-op when `settings.posting.enabled`
 * is off; `posting.level` lets it through at every level (all are at or below `"error"`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async function provision({ body }) {
 *   try {
 *     await Promise.reject(new Error("boom"));
 *   } catch (exc) {
 *     kopf.exception(body, { message: "Provisioning failed:", exc });
 *   }
 * });
 * ```
 */
export function exception(
  objs: EventSubjects,
  options: { reason?: string; message?: string; exc?: unknown } = {},
): void {
  const found = target();
  if (!found) return void logger.debug("No operator is running; the event is dropped.");
  if (!found.settings.enabled || !levelAllows(found.settings, "error")) return;
  found.poster.exception(objs, options);
}
