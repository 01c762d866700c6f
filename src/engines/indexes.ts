/**
 * In-memory indexes (Kopf's `@kopf.index`): each index handler maps every matching object to
 * `{ key: value, … }`; the index holds, per key, the values from all objects. Handlers read
 * them by the index's id: `indices.by_label`.
 *
 * Kopf's rules:
 * - a handler returning an object contributes its entries (a `Map` may have any keys, e.g.
 *   tuples); any other non-null value is stored under the key `null`; `null`/`undefined`
 *   changes nothing;
 * - an object that stops matching, is deleted, or whose handler fails (`"temporary"` or
 *   `"permanent"` errors) has its values removed; a failed handler is not called for that
 *   object again until its delay has passed (temporary) or ever (permanent); with
 *   `"ignored"` (the default for indexes) the stale values stay;
 * - the operator is not ready, and other handlers wait, until every index has indexed the
 *   initial listing of its resource.
 *
 * Keys are compared by value: `["ns", "name"]` finds what a handler stored under an equal
 * array, like Kopf's tuple keys.
 *
 * @module
 */

import type { Api } from "../kits/api.ts";
import { getLogger } from "@logtape/logtape";
import { type InformerEvent, isChange, type Subscription } from "../cache/informer.ts";
import { Patch } from "../storage/patch.ts";
import { type SleepingClock, SYSTEM_CLOCK } from "../kube/time.ts";
import { type KubeObject, objectKeyOf, type Resource } from "../kube/resource.ts";
import type { ErasedContext, IndexingHandler } from "../registry/records.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings/settings.ts";
import { deepEqual, isObject } from "../storage/fields.ts";
import { resourceContext } from "../actions/contexts.ts";
import { objectLogger } from "../actions/loggers.ts";
import type { Progress } from "../actions/errors.ts";
import { execute, freshProgress, retryInfo } from "../actions/execution.ts";
import { invoke } from "../actions/invocation.ts";
import type { Logger, Memo } from "../registry/context.ts";

/** Something that delivers informer events (an `Informer`). */
export interface EventSource {
  /** Subscribe a listener. */
  subscribe(listener: (event: InformerEvent) => void): Subscription;
}

const logger = getLogger(["kopf", "indexing"]);

const OBJECT_KEY_PREFIX = "\u0000kopf-index-key:";

/** How an index key is compared: primitives as they are, objects and arrays by their JSON. */
function normalizeKey(key: unknown): unknown {
  if (typeof key === "object" && key !== null) return OBJECT_KEY_PREFIX + JSON.stringify(key);
  return key;
}

/**
 * The values stored under one key of an index, one per contributing object. Read-only for
 * handlers; iterate it, or use `size`, `includes()`, `toArray()`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.index("pods", function byApp({ labels, name }) {
 *   return labels.app ? { [labels.app]: name } : null;
 * });
 * kopf.timer("kopfexamples", { interval: 60 }, function report({ spec, indices, logger }) {
 *   const pods: kopf.Store<string> | undefined = (indices.byApp as kopf.Index<string, string>)
 *     .get(String(spec.app));
 *   logger.info(`${pods?.size ?? 0} pods: ${pods?.toArray().join(", ")}`);
 * });
 * ```
 */
export class Store<V = unknown> implements Iterable<V> {
  #items = new Map<string, V>();

  /** How many objects contributed a value. */
  get size(): number {
    return this.#items.size;
  }

  /** Kopf's `len(store)`. */
  get length(): number {
    return this.#items.size;
  }

  /** The values. */
  [Symbol.iterator](): Iterator<V> {
    return this.#items.values();
  }

  /** The values, as an array. */
  toArray(): V[] {
    return [...this.#items.values()];
  }

  /** Whether any object contributed a value equal (deeply) to `value`. */
  includes(value: V): boolean {
    for (const item of this.#items.values()) if (deepEqual(item, value)) return true;
    return false;
  }

  /** For `JSON.stringify` and probes: the values as an array. */
  toJSON(): V[] {
    return this.toArray();
  }

  /** @internal */
  _replace(objectKey: string, value: V): void {
    if (!this.#items.has(objectKey) || !deepEqual(this.#items.get(objectKey), value)) {
      this.#items.set(objectKey, value);
    }
  }

  /** @internal */
  _discard(objectKey: string): void {
    this.#items.delete(objectKey);
  }
}

/**
 * One index: key → {@linkcode Store} of values from all objects. Read-only for handlers.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.index("pods", function byPhase({ namespace, name, status }) {
 *   return { [String(status.phase)]: `${namespace}/${name}` };
 * });
 * kopf.on.probe(function runningPods({ indices }) {
 *   const byPhase = indices.byPhase as kopf.Index<string, string>;
 *   return byPhase.get("Running")?.size ?? 0;
 * });
 * ```
 */
export class Index<K = unknown, V = unknown> implements Iterable<[K, Store<V>]> {
  #items = new Map<unknown, { key: K; store: Store<V> }>();
  #reverse = new Map<string, Set<unknown>>();

  /** How many keys. */
  get size(): number {
    return this.#items.size;
  }

  /** Kopf's `len(index)`. */
  get length(): number {
    return this.#items.size;
  }

  /** The values stored under a key (compared by value), if any. */
  get(key: K): Store<V> | undefined {
    return this.#items.get(normalizeKey(key))?.store;
  }

  /** Whether the key has values. */
  has(key: K): boolean {
    return this.#items.has(normalizeKey(key));
  }

  /** The keys. */
  *keys(): IterableIterator<K> {
    for (const { key } of this.#items.values()) yield key;
  }

  /** The stores. */
  *values(): IterableIterator<Store<V>> {
    for (const { store } of this.#items.values()) yield store;
  }

  /** `[key, store]` pairs. */
  *entries(): IterableIterator<[K, Store<V>]> {
    for (const { key, store } of this.#items.values()) yield [key, store];
  }

  /** `[key, store]` pairs. */
  [Symbol.iterator](): Iterator<[K, Store<V>]> {
    return this.entries();
  }

  /**
   * For `JSON.stringify` and probes: `{ key: [values] }` (non-string keys as their JSON).
   */
  toJSON(): Record<string, V[]> {
    const result: Record<string, V[]> = {};
    for (const { key, store } of this.#items.values()) {
      result[typeof key === "string" ? key : JSON.stringify(key) ?? "null"] = store.toArray();
    }
    return result;
  }

  /** @internal Replace one object's contribution. */
  _replace(objectKey: string, entries: Iterable<[K, V]>): void {
    const reverse = this.#reverse.get(objectKey) ?? new Set<unknown>();
    this.#reverse.set(objectKey, reverse);
    const fresh = new Set<unknown>();
    for (const [key, value] of entries) {
      const normalized = normalizeKey(key);
      let item = this.#items.get(normalized);
      if (!item) {
        item = { key, store: new Store<V>() };
        this.#items.set(normalized, item);
      }
      item.store._replace(objectKey, value);
      reverse.add(normalized);
      fresh.add(normalized);
    }
    this.#discardKeys(objectKey, [...reverse].filter((k) => !fresh.has(k)));
  }

  /** @internal Remove one object's contribution. */
  _discard(objectKey: string): void {
    const reverse = this.#reverse.get(objectKey);
    if (reverse) this.#discardKeys(objectKey, [...reverse]);
  }

  #discardKeys(objectKey: string, keys: unknown[]): void {
    const reverse = this.#reverse.get(objectKey);
    for (const normalized of keys) {
      const item = this.#items.get(normalized);
      if (item) {
        item.store._discard(objectKey);
        if (item.store.size === 0) this.#items.delete(normalized);
      }
      reverse?.delete(normalized);
    }
    if (reverse && reverse.size === 0) this.#reverse.delete(objectKey);
  }
}

/** How a handler's result becomes index entries (Kopf's rules; see the module docs). */
export function indexEntries(result: unknown): [unknown, unknown][] | null {
  if (result === undefined || result === null) return null;
  if (result instanceof Map) return [...result.entries()];
  if (isObject(result) && Object.getPrototypeOf(result) === Object.prototype) {
    return Object.entries(result);
  }
  return [[null, result]];
}

/** Options of {@linkcode OperatorIndexes}. */
export interface OperatorIndexesOptions {
  /** Where the index handlers are registered. */
  registry: Registry;
  /** The operator settings. */
  settings: Settings;
  /** The object's memo (shared with its other handlers). */
  memo: (resource: Resource, body: KubeObject) => Memo;
  /** The object's logger (default: category `kopf.objects` with the object reference). */
  logger?: (resource: Resource, body: KubeObject) => Logger;
  /** Aborts handlers (the operator's hard stop). */
  signal?: AbortSignal;
  /** The time source (tests). */
  clock?: SleepingClock;
}

interface Failure {
  progress: Progress;
  until: number | null; // clock ms; null: for good
}

interface ObjectIndexing {
  body: KubeObject;
  indexedVersion: string | undefined;
  uid: string | undefined;
  running: Promise<void> | undefined;
  next: KubeObject | undefined;
  gone: boolean;
  failures: Map<string, Failure>;
}

interface Attachment {
  resource: Resource;
  synced: boolean;
  indexed: boolean;
}

/**
 * The operator's indexes, maintained from the informers of the resources with index handlers.
 *
 * @example
 * ```ts
 * import { Informers } from "../cache/informer.ts";
 * import { KubeClient } from "../kube/client.ts";
 * import { Discovery } from "../kube/discovery.ts";
 * import { parseSelector } from "../kube/selector.ts";
 * import { Registry } from "../registry/registry.ts";
 * import { Settings } from "../settings/settings.ts";
 * import { OperatorIndexes } from "./indexes.ts";
 *
 * const registry = new Registry();
 * registry.index("pods", function by_label({ labels }) {
 *   return labels;
 * });
 * const client = await KubeClient.connect();
 * const [pods] = await new Discovery(client).resolve(parseSelector("v1", "pods"));
 * const indexes = new OperatorIndexes({ registry, settings: new Settings(), memo: () => ({}) });
 * indexes.attach(pods, new Informers(client).get(pods));
 * await indexes.waitReady(AbortSignal.timeout(60_000)); // before other handlers run
 * indexes.indices.by_label; // an Index
 * client.close();
 * ```
 */
export class OperatorIndexes {
  /** The indexes by their ids, for handlers' `indices`. */
  readonly indices: Readonly<Record<string, Index>>;
  readonly #indexes = new Map<string, Index>();
  readonly #registry: Registry;
  readonly #settings: Settings;
  readonly #memo: (resource: Resource, body: KubeObject) => Memo;
  readonly #logger: (resource: Resource, body: KubeObject) => Logger;
  readonly #signal: AbortSignal;
  readonly #clock: SleepingClock;
  readonly #objects = new Map<string, ObjectIndexing>();
  /** The API for index functions (`api` in their contexts), once the operator is connected. */
  api: Api | undefined;
  readonly #attachments = new Set<Attachment>();
  #readyWaiters: (() => void)[] = [];

  /** Create an (empty) index for every index handler of the registry. */
  constructor(options: OperatorIndexesOptions) {
    this.#registry = options.registry;
    this.#settings = options.settings;
    this.#memo = options.memo;
    this.#logger = options.logger ?? ((resource, body) => objectLogger(body, { resource }));
    this.#signal = options.signal ?? new AbortController().signal;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    const indices: Record<string, Index> = {};
    for (const handler of options.registry.handlers) {
      if (handler.kind !== "indexing" || this.#indexes.has(handler.id)) continue;
      const index = new Index();
      this.#indexes.set(handler.id, index);
      indices[handler.id] = index;
    }
    this.indices = Object.freeze(indices);
  }

  /** Whether the registry has index handlers for the resource. */
  serves(resource: Resource): boolean {
    return this.#registry.hasHandlers(resource, "indexing");
  }

  /**
   * Follow an informer of a resource with index handlers: returns the subscription, or `null`
   * if the resource has none. Until the informer has synced and its initial listing is
   * indexed, {@linkcode ready} is false.
   */
  attach(resource: Resource, source: EventSource): Subscription | null {
    if (!this.serves(resource)) return null;
    const attachment: Attachment = { resource, synced: false, indexed: false };
    this.#attachments.add(attachment);
    const subscription = source.subscribe((event) => this.#observe(attachment, event));
    const unsubscribe = () => {
      subscription.unsubscribe();
      this.#attachments.delete(attachment);
      this.#checkReady();
    };
    return { unsubscribe, [Symbol.dispose]: unsubscribe };
  }

  /** All attached resources have indexed their initial listing (true if none is attached). */
  get ready(): boolean {
    for (const attachment of this.#attachments) if (!attachment.indexed) return false;
    return true;
  }

  /** Resolves when {@linkcode ready}; rejects if `signal` aborts first. */
  waitReady(signal?: AbortSignal): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#readyWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  /** Resolves when the indexing of the object's latest state known so far is done. */
  async settled(resource: Resource, body: KubeObject): Promise<void> {
    const state = this.#objects.get(objectKeyOf(resource, body));
    while (state?.running) await state.running;
  }

  /** Whether this state of the object has been indexed (and nothing newer is pending). */
  isIndexed(resource: Resource, body: KubeObject): boolean {
    const state = this.#objects.get(objectKeyOf(resource, body));
    return state !== undefined && !state.running && !state.next &&
      state.indexedVersion === body.metadata?.resourceVersion;
  }

  /** Handle one informer event of a resource (what {@linkcode attach} subscribes). */
  observe(resource: Resource, event: InformerEvent): void {
    if (!isChange(event)) return;
    this.#handle(resource, event.type, event.object);
  }

  #observe(attachment: Attachment, event: InformerEvent): void {
    if (isChange(event)) {
      this.#handle(attachment.resource, event.type, event.object);
      return;
    }
    if (attachment.synced) return;
    attachment.synced = true;
    // Everything of the initial listing is scheduled by now; ready when it is all indexed.
    const pending = [...this.#objects.values()].map((state) => this.#drained(state));
    void Promise.all(pending).then(() => {
      attachment.indexed = true;
      this.#checkReady();
    });
  }

  async #drained(state: ObjectIndexing): Promise<void> {
    while (state.running) await state.running;
  }

  #checkReady(): void {
    if (!this.ready) return;
    for (const resolve of this.#readyWaiters.splice(0)) resolve();
  }

  #handle(resource: Resource, type: "ADDED" | "MODIFIED" | "DELETED", body: KubeObject): void {
    const key = objectKeyOf(resource, body);
    let state = this.#objects.get(key);
    const uid = body.metadata?.uid;
    if (type === "DELETED") {
      // Discard at once: nothing should find a deleted object in an index.
      if (state) {
        state.gone = true;
        state.next = undefined;
        this.#objects.delete(key);
      }
      this.#discard(key);
      return;
    }
    if (state && state.uid !== undefined && uid !== undefined && state.uid !== uid) {
      state.gone = true;
      state.next = undefined;
      this.#discard(key);
      state = undefined;
    }
    if (!state) {
      state = {
        body,
        indexedVersion: undefined,
        uid,
        running: undefined,
        next: undefined,
        gone: false,
        failures: new Map(),
      };
      this.#objects.set(key, state);
    }
    state.next = body;
    if (!state.running) state.running = this.#run(resource, key, state);
  }

  async #run(resource: Resource, key: string, state: ObjectIndexing): Promise<void> {
    try {
      while (state.next && !state.gone) {
        state.body = state.next;
        state.next = undefined;
        await this.#index(resource, key, state);
        state.indexedVersion = state.body.metadata?.resourceVersion;
      }
    } catch (error) {
      logger.error("Indexing failed unexpectedly: {error}", { error });
    } finally {
      state.running = undefined;
    }
  }

  async #index(resource: Resource, key: string, state: ObjectIndexing): Promise<void> {
    const body = state.body;
    const log = this.#logger(resource, body);
    const memo = this.#memo(resource, body);
    const contextInput = {
      resource,
      body: () => body,
      logger: log,
      memo,
      param: undefined as unknown,
      signal: this.#signal,
      indices: this.indices,
      api: this.api,
      patch: new Patch(),
    };
    let filterContext: unknown;
    const handlers = this.#registry.selectIndexing({
      resource,
      body,
      context: () => filterContext ??= resourceContext(contextInput, {}),
    });
    const now = this.#clock.now();
    const selected = new Set<string>();
    const outcomes = new Map<IndexingHandler, { result?: unknown; failed: boolean }>();
    for (const handler of handlers) {
      const failure = state.failures.get(handler.id);
      // A failed handler sits out its delay (or forever); meanwhile the object is not indexed.
      if (failure && (failure.until === null || failure.until > now)) continue;
      selected.add(handler.id);
      const progress = failure?.progress ?? freshProgress();
      const outcome = await execute(() => {
        const context = resourceContext(
          { ...contextInput, param: handler.param, patch: new Patch() },
          retryInfo(progress),
        );
        return invoke(handler.fn, context as ErasedContext, {
          title: handler.title,
          logger: log,
          body,
          timeout: handler.attemptTimeout,
          execution: this.#settings.execution,
        });
      }, {
        handler,
        state: progress,
        logger: log,
        defaultErrors: "ignored",
        defaultBackoff: this.#settings.execution.defaultBackoff,
      });
      if (state.gone) return;
      if (outcome.error === undefined) {
        state.failures.delete(handler.id);
        outcomes.set(handler, { result: outcome.result, failed: false });
      } else {
        state.failures.set(handler.id, {
          progress: { retries: progress.retries + 1, started: progress.started },
          until: outcome.final ? null : this.#clock.now() + (outcome.delay ?? 0) * 1000,
        });
        outcomes.set(handler, { failed: true });
      }
    }
    for (const [handler, outcome] of outcomes) {
      const index = this.#indexes.get(handler.id);
      if (!index) continue;
      if (outcome.failed) {
        index._discard(key);
        continue;
      }
      const entries = indexEntries(outcome.result);
      if (entries) index._replace(key, entries);
    }
    // Handlers that no longer match (or sit out a failure) hold nothing of this object.
    for (const [id, index] of this.#indexes) if (!selected.has(id)) index._discard(key);
  }

  #discard(key: string): void {
    for (const index of this.#indexes.values()) index._discard(key);
  }
}
