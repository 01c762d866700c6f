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
  /** The operator's posting settings (`enabled`). */
  readonly settings: PostingSettings;
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
 * `settings.posting.enabled` is off.
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
 * Post a `Normal` Event (Kopf's `kopf.info`).
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
  event(objs, { ...options, type: "Normal" });
}

/**
 * Post a `Warning` Event (Kopf's `kopf.warn`); posted even when `posting.enabled` is off, as in
 * Kopf.
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
  found.poster.event(objs, {
    type: "Warning",
    reason: options.reason,
    message: options.message ?? "",
  });
}

/**
 * Post an `Error` Event about an exception (Kopf's `kopf.exception`): the reason defaults to
 * the error's class name, and its message is appended.
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
  if (!found.settings.enabled) return;
  found.poster.exception(objs, options);
}
