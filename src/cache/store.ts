/**
 * The cache of one informer: the latest state of every object, by object key
 * (`plural.version.group/namespace/name`, see `objectKey`).
 *
 * Objects are kept as the plain JSON the server sent, minus `metadata.managedFields` (server-side
 * apply bookkeeping: often half of an object's metadata, and never needed by handlers). The
 * store holds one copy per object; consumers get that same copy and must not mutate it. (The
 * informer also makes cached objects share their common strings: `interning.ts`.)
 *
 * Ordering: the store is fed by one list/watch stream, so arrival order is change order within a
 * stream; re-lists are consistent reads, so a listed state is never older than one seen before;
 * and a state with the same resourceVersion as the stored one is no change. Together these mean
 * a consumer never sees an older state of an object after a newer one, without comparing
 * resourceVersions for order (they are opaque strings).
 *
 * @module
 */
import {
  type KubeObject,
  type ObjectKey,
  objectKey,
  objectKeyOf,
  type Resource,
} from "../kube/resource.ts";
import type { ObjectEvent } from "../kube/watch.ts";

/** A change the store accepted: what consumers should be told. */
export interface StoreChange<T extends KubeObject = KubeObject> {
  /** What happened to the object in the cache. */
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** The object's key. */
  key: ObjectKey;
  /** The new state; for `DELETED`, the last known state. */
  object: T;
  /** The state before, if the object was known. */
  previous?: T;
  /** From the first listing (the object existed before the watch started). */
  initial: boolean;
}

/**
 * Removes `metadata.managedFields` and returns the same object (with a new `metadata` object).
 *
 * `metadata` is replaced by a copy without the key rather than `delete`d from: deleting a
 * property turns a V8 object into a hash-table ("dictionary mode") object, which cost ~450 bytes
 * more per cached object — over a third of the cache.
 *
 * @example
 * ```ts
 * import { stripManagedFields } from "./store.ts";
 * const obj = stripManagedFields({ metadata: { name: "x", managedFields: [{}] } });
 * obj.metadata?.managedFields; // undefined
 * ```
 */
export function stripManagedFields<T extends KubeObject>(object: T): T {
  if (object.metadata && "managedFields" in object.metadata) {
    const { managedFields: _, ...metadata } = object.metadata;
    object.metadata = metadata;
  }
  return object;
}

/**
 * The latest state of every object of one informer, by key.
 *
 * @example
 * ```ts
 * import { ObjectStore } from "./store.ts";
 * const store = new ObjectStore({ group: "", version: "v1", plural: "pods" });
 * store.apply({
 *   type: "ADDED",
 *   object: { metadata: { namespace: "ns", name: "a", resourceVersion: "1" } },
 *   initial: true,
 * });
 * store.getByName("a", "ns")?.metadata?.resourceVersion; // "1"
 * ```
 */
export class ObjectStore<T extends KubeObject = KubeObject> {
  readonly #resource: Pick<Resource, "group" | "version" | "plural">;
  #objects = new Map<ObjectKey, T>();

  /** An empty store of the objects of one resource. */
  constructor(resource: Pick<Resource, "group" | "version" | "plural">) {
    this.#resource = resource;
  }

  /** How many objects are stored. */
  get size(): number {
    return this.#objects.size;
  }

  /** The object stored under `key`. */
  get(key: ObjectKey): T | undefined {
    return this.#objects.get(key);
  }

  /** The object with this name (and namespace, for namespaced resources). */
  getByName(name: string, namespace?: string): T | undefined {
    return this.#objects.get(objectKey(this.#resource, namespace, name));
  }

  /** Whether an object is stored under `key`. */
  has(key: ObjectKey): boolean {
    return this.#objects.has(key);
  }

  /** All keys, in insertion order. */
  keys(): IterableIterator<ObjectKey> {
    return this.#objects.keys();
  }

  /** All objects, in insertion order. */
  values(): IterableIterator<T> {
    return this.#objects.values();
  }

  /** All `[key, object]` pairs, in insertion order. */
  entries(): IterableIterator<[ObjectKey, T]> {
    return this.#objects.entries();
  }

  /**
   * Applies one event from the watch. Returns the change to announce, or `undefined` when
   * nothing changed: the same resourceVersion again, or the deletion of an unknown object.
   *
   * A `DELETED` with `finalStateUnknown` (made up after a re-list) announces the stored copy,
   * which is the last state anyone saw.
   */
  apply(event: ObjectEvent<T>): StoreChange<T> | undefined {
    const key = event.key ?? objectKeyOf(this.#resource, event.object);
    const previous = this.#objects.get(key);
    if (event.type === "DELETED") {
      if (previous === undefined) return undefined;
      this.#objects.delete(key);
      const object = event.finalStateUnknown ? previous : event.object;
      return { type: "DELETED", key, object, previous, initial: event.initial };
    }
    const rv = event.object.metadata?.resourceVersion;
    if (previous !== undefined && rv !== undefined && previous.metadata?.resourceVersion === rv) {
      return undefined;
    }
    this.#objects.set(key, event.object);
    return {
      type: previous === undefined ? "ADDED" : "MODIFIED",
      key,
      object: event.object,
      previous,
      initial: event.initial,
    };
  }

  /** Forgets everything. */
  clear(): void {
    this.#objects.clear();
  }
}
