/**
 * The registry of handlers and the questions the operator asks it: which resources to watch
 * (and with which server-side label selector), which handlers match a cause, whether an object
 * needs our finalizer, which fields belong to the essence.
 *
 * @module
 */

import type { Resource } from "../kube/resource.ts";
import type { Selector } from "../kube/selector.ts";
import { type FieldPath, isObject } from "../storage/fields.ts";
import { isDeletionOngoing } from "../storage/finalizers.ts";
import type { Activity } from "./context.ts";
import { ABSENT, PRESENT } from "./filters.ts";
import {
  deduplicated,
  match,
  type MatchCause,
  matchesResource,
  memoized,
  prematch,
  servesReason,
} from "./matching.ts";
import type {
  ActivityHandler,
  ChangingHandler,
  DaemonHandler,
  HandlerRecord,
  IndexingHandler,
  ResourceHandler,
  TimerHandler,
  WatchingHandler,
  WebhookHandler,
  WebhookReason,
} from "./records.ts";
import type { Operation } from "../storage/reviews.ts";
import { createRegistrars, type OnApi, type Registrars } from "./registrars.ts";

/** A changing cause as the registry needs it (the cycle builds it). */
export interface ChangingMatchCause extends MatchCause {
  /** The detected reason. */
  readonly reason: string;
  /** Resume handlers are due. */
  readonly initial: boolean;
}

/**
 * Select the changing handlers (or sub-handlers) serving a cause: reason and resume rules,
 * then filters in Kopf's order, deduplicated by (function, id). Registration order is kept.
 */
export function selectChangingHandlers(
  handlers: Iterable<ChangingHandler>,
  cause: ChangingMatchCause,
): ChangingHandler[] {
  const shared = memoized(cause);
  const deleting = isDeletionOngoing(cause.body);
  const selected = [...handlers].filter((h) =>
    servesReason(h, cause.reason, cause.initial, deleting) && match(h, shared)
  );
  return deduplicated(selected);
}

/** An admission request as the registry needs it to select its handlers. */
export interface WebhookMatchCause extends MatchCause {
  /** Only handlers of this kind (`undefined`: both). */
  readonly reason?: WebhookReason;
  /** Only the handler with this id — the webhook's path (`undefined`: all). */
  readonly webhook?: string;
  /** The operation under admission. */
  readonly operation: Operation;
  /** The subresource (`undefined`: the main resource). */
  readonly subresource: string | undefined;
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

function isResourceHandler(h: HandlerRecord): h is ResourceHandler {
  return h.kind !== "activity" && h.kind !== "webhook";
}

/** A resource's handler lists, derived once per registry change (every cycle asks for them). */
interface ResourceLists {
  readonly all: readonly ResourceHandler[];
  readonly changing: readonly ChangingHandler[];
  readonly extraFields: readonly FieldPath[];
}

/**
 * A registry of handlers. The global one is used by `kopf.on.*`; create your own to embed
 * several operators in one process and register into it with `registry.on.*` or the
 * `registry` option. Its other methods are the operator's own queries (tagged `@internal`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const registry = new kopf.Registry();
 * registry.on.create("kopfexamples", function createFn({ name, logger }) {
 *   logger.info(`Created ${name}`);
 * });
 * kopf.on.delete("kopfexamples", { registry }, function deleteFn() {});
 * // Then run the operator with it: await kopf.run({ registry, namespaces: ["default"] });
 * ```
 */
export class Registry {
  readonly #handlers: HandlerRecord[] = [];
  readonly #registrars: Registrars;
  /** Per resource object (discovery hands out one per resource); emptied by `append()`. */
  #lists = new WeakMap<Resource, ResourceLists>();

  /** Create an empty registry. */
  constructor() {
    this.#registrars = createRegistrars(() => this);
  }

  /** `on.*` registration functions that register into this registry. */
  get on(): OnApi {
    return this.#registrars.on;
  }

  /** `daemon()` registering into this registry. */
  get daemon(): Registrars["daemon"] {
    return this.#registrars.daemon;
  }

  /** `timer()` registering into this registry. */
  get timer(): Registrars["timer"] {
    return this.#registrars.timer;
  }

  /** `index()` registering into this registry. */
  get index(): Registrars["index"] {
    return this.#registrars.index;
  }

  /**
   * Add a handler record (as built by the registration functions).
   *
   * @internal
   */
  append(handler: HandlerRecord): void {
    if (!isObject(handler) || typeof handler.fn !== "function" || typeof handler.id !== "string") {
      throw new TypeError("Registry.append() takes handler records built by kopf.on.*");
    }
    this.#handlers.push(handler);
    this.#lists = new WeakMap();
  }

  /**
   * All handlers, in registration order.
   *
   * @internal
   */
  get handlers(): readonly HandlerRecord[] {
    return this.#handlers;
  }

  /**
   * Activity handlers of one activity.
   *
   * @internal
   */
  activityHandlers(activity: Activity): ActivityHandler[] {
    return deduplicated(
      this.#handlers.filter((h): h is ActivityHandler =>
        h.kind === "activity" && h.activity === activity
      ),
    );
  }

  /**
   * Resource handlers (of all kinds), optionally only those whose selector matches a resource.
   *
   * @internal
   */
  resourceHandlers(resource?: Resource): readonly ResourceHandler[] {
    if (resource === undefined) return this.#handlers.filter(isResourceHandler);
    return this.#listsOf(resource).all;
  }

  #listsOf(resource: Resource): ResourceLists {
    let lists = this.#lists.get(resource);
    if (!lists) {
      const all = this.#handlers.filter((h): h is ResourceHandler =>
        isResourceHandler(h) && matchesResource(h, resource)
      );
      const fields = new Map<string, FieldPath>();
      for (const handler of all) {
        if (handler.kind === "indexing" || !handler.field) continue;
        fields.set(handler.field.join("\u0000"), handler.field);
      }
      lists = {
        all,
        changing: deduplicated(all.filter((h): h is ChangingHandler => h.kind === "changing")),
        extraFields: [...fields.values()],
      };
      this.#lists.set(resource, lists);
    }
    return lists;
  }

  /**
   * The admission handlers (of one kind, if given), deduplicated. They are served by the
   * webhook server, not watched: their resources are not among {@linkcode Registry.selectors}.
   *
   * @internal
   */
  webhookHandlers(reason?: WebhookReason): WebhookHandler[] {
    return deduplicated(
      this.#handlers.filter((h): h is WebhookHandler =>
        h.kind === "webhook" && (reason === undefined || h.reason === reason)
      ),
    );
  }

  /**
   * The admission handlers serving a request: the webhook (if named) and the kind (if known),
   * the operation and the subresource, then the usual filters in Kopf's order. Mutating handlers
   * are not called for DELETE unless it is their only operation (as Kopf: the object is gone, a
   * patch means nothing).
   *
   * @internal
   */
  selectWebhooks(cause: WebhookMatchCause): WebhookHandler[] {
    const shared = memoized(cause);
    return this.webhookHandlers(cause.reason).filter((h) =>
      (cause.webhook === undefined || cause.webhook === h.id) &&
      (h.operations === null || h.operations.includes(cause.operation)) &&
      (h.subresource === "*" || h.subresource === (cause.subresource ?? null)) &&
      (h.reason !== "mutating" || cause.operation !== "DELETE" ||
        (h.operations?.length === 1 && h.operations[0] === "DELETE")) &&
      match(h, shared)
    );
  }

  /**
   * The distinct resource selectors: what discovery must resolve and the operator watch.
   *
   * @internal
   */
  selectors(): Selector[] {
    const seen = new Set<Selector>();
    for (const handler of this.resourceHandlers()) {
      if (handler.selector) seen.add(handler.selector);
    }
    return [...seen];
  }

  /**
   * Whether any resource handler (optionally of one kind) serves the resource.
   *
   * @internal
   */
  hasHandlers(resource: Resource, kind?: ResourceHandler["kind"]): boolean {
    return this.resourceHandlers(resource).some((h) => kind === undefined || h.kind === kind);
  }

  /**
   * Whether the resource needs `patch` permission (changing handlers, daemons, timers).
   *
   * @internal
   */
  needsPatching(resource: Resource): boolean {
    return this.resourceHandlers(resource).some((h) =>
      h.kind !== "watching" && h.kind !== "indexing"
    );
  }

  /**
   * All changing handlers of a resource (deduplicated): their progress records are ours.
   *
   * @internal
   */
  changingHandlers(resource: Resource): readonly ChangingHandler[] {
    return this.#listsOf(resource).changing;
  }

  /**
   * The changing handlers serving a cause.
   *
   * @internal
   */
  selectChanging(cause: ChangingMatchCause): ChangingHandler[] {
    return selectChangingHandlers(this.changingHandlers(cause.resource), cause);
  }

  /**
   * The `on.event` handlers matching an event's object.
   *
   * @internal
   */
  selectWatching(cause: MatchCause): WatchingHandler[] {
    return this.#select(cause, (h): h is WatchingHandler => h.kind === "watching");
  }

  /**
   * The index handlers matching an object.
   *
   * @internal
   */
  selectIndexing(cause: MatchCause): IndexingHandler[] {
    return this.#select(cause, (h): h is IndexingHandler => h.kind === "indexing");
  }

  /**
   * The daemons and timers matching an object, except those stopped for good.
   *
   * @internal
   */
  selectSpawning(
    cause: MatchCause,
    excluded: ReadonlySet<string> = new Set(),
  ): (DaemonHandler | TimerHandler)[] {
    return this.#select(
      cause,
      (h): h is DaemonHandler | TimerHandler =>
        (h.kind === "daemon" || h.kind === "timer") && !excluded.has(h.id),
    );
  }

  #select<H extends ResourceHandler>(cause: MatchCause, kind: (h: ResourceHandler) => h is H): H[] {
    const shared = memoized({ ...cause, essences: undefined });
    return deduplicated(
      this.resourceHandlers(cause.resource).filter(kind).filter((h) => match(h, shared)),
    );
  }

  /**
   * Whether any changing handler pre-matches the object (all filters but the field change).
   * Objects matching none are handled in stealth: no annotations, no logs.
   *
   * @internal
   */
  prematchesChanging(cause: MatchCause): boolean {
    const shared = memoized(cause);
    return this.changingHandlers(cause.resource).some((h) => prematch(h, shared));
  }

  /**
   * Whether the object needs our finalizer: a non-optional delete handler pre-matches it, or
   * a daemon/timer that asked for one matches it (Kopf adds one for every daemon and timer;
   * we only when they ask for cleanup time — see docs/settings.md).
   *
   * @internal
   */
  requiresFinalizer(cause: MatchCause, excludedSpawning: ReadonlySet<string> = new Set()): boolean {
    const shared = memoized(cause);
    const changing = this.changingHandlers(cause.resource).some((h) =>
      h.requiresFinalizer && prematch(h, shared)
    );
    if (changing) return true;
    const spawning = { ...shared, essences: undefined };
    return this.resourceHandlers(cause.resource).some((h) =>
      (h.kind === "daemon" || h.kind === "timer") && h.requiresFinalizer &&
      !excludedSpawning.has(h.id) && match(h, spawning)
    );
  }

  /**
   * Fields that handlers filter on, kept in the essence even if outside it (e.g. `status.phase`).
   *
   * @internal
   */
  extraFields(resource: Resource): readonly FieldPath[] {
    return this.#listsOf(resource).extraFields;
  }

  /**
   * A server-side label selector for watching the resource, or `null`: the label constraints
   * shared by every handler of the resource (exact values → `k=v` or `k in (…)`, `PRESENT` or
   * mixed → `k`, all `ABSENT` → `!k`; callbacks push nothing). Every object any handler could
   * match passes it, so filtering moves to the API server without losing events that matter.
   *
   * Objects whose labels change so that they leave the selector arrive as DELETED events; the
   * caller must not mistake that for a deletion (our finalizer may still be on the object).
   *
   * @internal
   */
  labelSelector(resource: Resource): string | null {
    const handlers = this.resourceHandlers(resource);
    if (!handlers.length) return null;
    const filters = handlers.map((h) => h.labels ?? {});
    const keys = Object.keys(filters[0]).filter((key) =>
      filters.every((f) => Object.hasOwn(f, key))
    );
    const parts: string[] = [];
    for (const key of keys.sort()) {
      if (!LABEL_KEY.test(key)) continue;
      const values = filters.map((f) => f[key]);
      if (values.some((v) => typeof v === "function")) continue;
      if (values.every((v) => v === ABSENT)) {
        parts.push(`!${key}`);
      } else if (values.some((v) => v === ABSENT)) {
        continue;
      } else if (values.every((v) => typeof v === "string")) {
        const unique = [...new Set(values as string[])].sort();
        if (!unique.every((v) => LABEL_VALUE.test(v))) continue;
        parts.push(unique.length === 1 ? `${key}=${unique[0]}` : `${key} in (${unique.join(",")})`);
      } else if (values.every((v) => v === PRESENT || typeof v === "string")) {
        parts.push(key);
      }
    }
    return parts.length ? parts.join(",") : null;
  }
}

const GLOBAL_KEY = Symbol.for("kopf.registry");

/**
 * The global registry used by `kopf.on.*`. It lives on `globalThis`, so two copies of this
 * module (e.g. imported through different specifiers) still share it.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function createFn() {});
 * const ids = kopf.defaultRegistry().handlers.map((handler) => handler.id); // [..., "createFn"]
 * ```
 */
export function defaultRegistry(): Registry {
  const holder = globalThis as { [GLOBAL_KEY]?: Registry };
  return holder[GLOBAL_KEY] ??= new Registry();
}

/**
 * Replace the global registry (e.g. in tests); returns the previous one.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Register into a fresh registry, then restore the previous one.
 * const previous = kopf.setDefaultRegistry(new kopf.Registry());
 * try {
 *   kopf.on.create("kopfexamples", function createFn() {});
 * } finally {
 *   kopf.setDefaultRegistry(previous);
 * }
 * ```
 */
export function setDefaultRegistry(registry: Registry): Registry {
  const previous = defaultRegistry();
  (globalThis as { [GLOBAL_KEY]?: Registry })[GLOBAL_KEY] = registry;
  return previous;
}

const globalRegistrars: Registrars = createRegistrars(() => defaultRegistry());

/**
 * Handler registration into the global registry, Kopf-style: selector first, options
 * optional, handler last.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async function createFn({ spec, name, logger }) {
 *   logger.info(`Created ${name} with spec ${JSON.stringify(spec)}`);
 *   return { message: "hello" }; // stored in status.<handler id>
 * });
 * const bySize = { field: "spec.size" };
 * kopf.on.update("kopf.dev/v1", "kopfexamples", bySize, function updateFn({ old, new: value }) {
 *   console.log(`spec.size: ${old} → ${value}`);
 * });
 * kopf.on.delete("kopfexamples", { optional: false }, async function deleteFn({ name }) {});
 * ```
 */
export const on: OnApi = globalRegistrars.on;

/**
 * Register a daemon: a long-running function per matching object.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.daemon("kopfexamples", { cancellationBackoff: 5 }, async function monitor({ stopped }) {
 *   while (!stopped.isSet) await stopped.wait(10);
 * });
 * ```
 */
export const daemon: Registrars["daemon"] = globalRegistrars.daemon;

/**
 * Register a timer: a function called periodically per matching object.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.timer("kopfexamples", { interval: 60 }, function timerFn({ spec }) {
 *   return { seen: spec };
 * });
 * ```
 */
export const timer: Registrars["timer"] = globalRegistrars.timer;

/**
 * Register an index: an in-memory map kept up to date from every matching object.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.index("pods", function indexFn({ name, namespace, labels }) {
 *   return { [labels.app]: `${namespace}/${name}` };
 * });
 * ```
 */
export const index: Registrars["index"] = globalRegistrars.index;
