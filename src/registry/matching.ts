/**
 * Whether a handler matches an object: resource, then labels, annotations, field value, field
 * change and `when`, in Kopf's order, short-circuiting, with the filter context built at most
 * once per cause and only if a callback needs it.
 *
 * @module
 */

import type { Resource } from "../kube/resource.ts";
import type { BodyEssence } from "../storage/diffbase.ts";
import { deepEqual, hasField, type RawBody, resolveField } from "../storage/fields.ts";
import { ABSENT, type MetaFilter, PRESENT, type ValueFilter } from "./filters.ts";
import type { ChangingHandler, ResourceHandler, WebhookHandler } from "./records.ts";

/** Handlers with filters: resource handlers and admission handlers. */
type Filtered = ResourceHandler | WebhookHandler;

/** What matching looks at. */
export interface MatchCause {
  /** The resource of the object. */
  readonly resource: Resource;
  /** The latest body. */
  readonly body: RawBody;
  /** The filter context (the handlers' kwargs without retry info); called at most once. */
  readonly context: () => unknown;
  /**
   * For changing causes: the last handled and the current essence. Field value filters of
   * changing handlers look at them (new first, then old); others look at the body.
   */
  readonly essences?: { readonly old: BodyEssence | null; readonly new: BodyEssence | null };
}

/** A cause with its context memoised, shared by all handlers checked against it. */
export function memoized<C extends MatchCause>(cause: C): C {
  let built = false;
  let value: unknown;
  return {
    ...cause,
    context: () => {
      if (!built) {
        value = cause.context();
        built = true;
      }
      return value;
    },
  };
}

// The erased context type of stored callbacks (see records.ts).
type Ctx = never;

/** Whether the handler's selector matches the resource (sub-handlers always do). */
export function matchesResource(handler: Filtered, resource: Resource): boolean {
  return handler.selector === null || handler.selector.check(resource);
}

function matchesMeta(
  pattern: MetaFilter<Ctx> | undefined,
  content: Readonly<Record<string, string>> | undefined,
  cause: MatchCause,
): boolean {
  if (!pattern) return true;
  const values = content ?? {};
  for (const [key, expected] of Object.entries(pattern)) {
    const present = Object.hasOwn(values, key);
    if (expected === ABSENT) {
      if (present) return false;
    } else if (expected === PRESENT) {
      if (!present) return false;
    } else if (typeof expected === "function") {
      if (!expected(present ? values[key] : undefined, cause.context() as Ctx)) return false;
    } else if (!present || values[key] !== expected) {
      return false;
    }
  }
  return true;
}

const MISSING: unique symbol = Symbol("missing");

function lookup(source: unknown, field: readonly string[]): unknown {
  return hasField(source, field) ? resolveField(source, field) : MISSING;
}

function valueMatches(filter: ValueFilter<Ctx>, value: unknown, cause: MatchCause): boolean {
  if (filter === PRESENT) return value !== MISSING;
  if (filter === ABSENT) return value === MISSING;
  if (typeof filter === "function") {
    return filter(value === MISSING ? undefined : value, cause.context() as Ctx);
  }
  return value !== MISSING && deepEqual(filter, value);
}

/** Kopf's field value filter: `value` against the new or the old field value (or the body's). */
export function matchesFieldValue(handler: Filtered, cause: MatchCause): boolean {
  if (!handler.field) return true;
  const values = cause.essences
    ? [lookup(cause.essences.new, handler.field), lookup(cause.essences.old, handler.field)]
    : [lookup(cause.body, handler.field)];
  if (handler.value === undefined) return values.some((v) => v !== MISSING);
  return values.some((v) => valueMatches(handler.value!, v, cause));
}

/** Kopf's field change filter (update/field handlers): the field changed; old/new filters. */
export function matchesFieldChange(handler: Filtered, cause: MatchCause): boolean {
  if (handler.kind !== "changing" || !cause.essences || !handler.field) return true;
  const old = lookup(cause.essences.old, handler.field);
  const new_ = lookup(cause.essences.new, handler.field);
  if (handler.fieldNeedsChange && deepEqual(old, new_)) return false;
  if (handler.old !== undefined && !valueMatches(handler.old, old, cause)) return false;
  if (handler.new !== undefined && !valueMatches(handler.new, new_, cause)) return false;
  return true;
}

/** The `when` callback, checked last. */
export function matchesWhen(handler: Filtered, cause: MatchCause): boolean {
  return handler.when === undefined || handler.when(cause.context() as Ctx);
}

/** All filters but the field change (Kopf's `prematch`, used for finalizers and stealth mode). */
export function prematch(handler: Filtered, cause: MatchCause): boolean {
  return matchesResource(handler, cause.resource) &&
    matchesMeta(handler.labels, cause.body.metadata?.labels, cause) &&
    matchesMeta(handler.annotations, cause.body.metadata?.annotations, cause) &&
    matchesFieldValue(handler, cause) &&
    matchesWhen(handler, cause);
}

/** All filters (Kopf's `match`). */
export function match(handler: Filtered, cause: MatchCause): boolean {
  return matchesResource(handler, cause.resource) &&
    matchesMeta(handler.labels, cause.body.metadata?.labels, cause) &&
    matchesMeta(handler.annotations, cause.body.metadata?.annotations, cause) &&
    matchesFieldValue(handler, cause) &&
    matchesFieldChange(handler, cause) &&
    matchesWhen(handler, cause);
}

/** Remove repeated (function, id) pairs, keeping the first (Kopf's deduplication). */
export function deduplicated<H extends { readonly fn: unknown; readonly id: string }>(
  handlers: Iterable<H>,
): H[] {
  const seen = new Map<unknown, Set<string>>();
  const result: H[] = [];
  for (const handler of handlers) {
    const ids = seen.get(handler.fn) ?? new Set<string>();
    if (ids.has(handler.id)) continue;
    ids.add(handler.id);
    seen.set(handler.fn, ids);
    result.push(handler);
  }
  return result;
}

/** Whether a changing handler serves a cause's reason (with Kopf's resume rules). */
export function servesReason(
  handler: ChangingHandler,
  reason: string,
  initial: boolean,
  deletionOngoing: boolean,
): boolean {
  if (handler.reason !== null && handler.reason !== reason) return false;
  if (handler.initial && !initial) return false;
  if (handler.initial && deletionOngoing && !handler.deleted) return false;
  return true;
}
