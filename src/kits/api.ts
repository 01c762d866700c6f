/**
 * The Kubernetes API for handlers: the operator's own connection (its credentials, rate limit,
 * retries and health checks — no second client, no kubeconfig to read in the sandbox), resources
 * named as in `kopf.on.*` or by an object's `apiVersion`/`kind`, and reads of the resources the
 * operator watches answered from its cache.
 *
 * Cached reads are consistent with this operator's own writes (read-your-writes): after a write
 * through this API, reads of that object go to the API server until the cache has seen the
 * written version (or the deletion), so a handler never reads back an older state than it wrote.
 * Writes by others reach the cache through the watch, as they reach the handlers.
 *
 * @module
 */

import type { Informer, Informers } from "../cache/informer.ts";
import type { KubeClient, PatchType } from "../kube/client.ts";
import type { Discovery } from "../kube/discovery.ts";
import { ApiError } from "../kube/errors.ts";
import {
  type KubeObject,
  type ObjectKey,
  objectKey,
  type Resource,
  resourceKey,
} from "../kube/resource.ts";
import { parseSelector, type SelectorSpec } from "../kube/selector.ts";
import { listAndWatch } from "../kube/watch.ts";

/**
 * Which resource a call is about: a name as in `kopf.on.*` (`"pods"`, `"deployments.apps"`,
 * `"kopfexamples.v1.kopf.dev"`, a kind or a short name), Kopf's positional form as an array
 * (`["apps", "v1", "deployments"]`), the keyword form, or an object's `apiVersion` and `kind`.
 *
 * @example
 * ```ts
 * import type * as kopf from "@kopf/kopf";
 *
 * const refs: kopf.ResourceRef[] = [
 *   "pods",
 *   "deployments.apps",
 *   ["kopf.dev", "v1", "kopfexamples"],
 *   { group: "apps", kind: "Deployment" },
 *   { apiVersion: "v1", kind: "PersistentVolumeClaim" },
 * ];
 * ```
 */
export type ResourceRef =
  | string
  | readonly string[]
  | SelectorSpec
  | { readonly apiVersion: string; readonly kind: string };

/**
 * Options of the calls that address one object by name.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async function createFn({ api, namespace }) {
 *   const options: kopf.ApiObjectOptions = { namespace: namespace! };
 *   await api.get("configmaps", "settings", options);
 * });
 * ```
 */
export interface ApiObjectOptions {
  /** The namespace (omit for cluster-scoped resources). */
  namespace?: string;
  /** Aborts the request (pass the handler's `signal`). */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Api.get}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async function createFn({ api, namespace }) {
 *   const options: kopf.ApiGetOptions = { namespace: namespace!, cached: false };
 *   await api.get("kopfexamples", "other", options); // always from the API server
 * });
 * ```
 */
export interface ApiGetOptions extends ApiObjectOptions {
  /**
   * Answer from the operator's cache when it watches the resource in that namespace (default
   * `true`); `false` always asks the API server.
   */
  cached?: boolean;
}

/**
 * Options of {@linkcode Api.list} and {@linkcode Api.watch}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async function createFn({ api, namespace }) {
 *   const options: kopf.ApiListOptions = { namespace: namespace!, labelSelector: "app=web" };
 *   const pods = await api.list("pods", options);
 *   return { pods: pods.length };
 * });
 * ```
 */
export interface ApiListOptions {
  /** One namespace; omit for all namespaces (or a cluster-scoped resource). */
  namespace?: string;
  /** A label selector, e.g. `app=web,tier!=db` (applied by the API server). */
  labelSelector?: string;
  /** A field selector, e.g. `status.phase=Running` (applied by the API server). */
  fieldSelector?: string;
  /** Aborts the requests (and ends a watch). */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Api.create}, {@linkcode Api.replace} and {@linkcode Api.apply}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async function createFn({ api, body }) {
 *   const child = { apiVersion: "v1", kind: "ConfigMap", data: { a: "1" } };
 *   kopf.adopt(child, body);
 *   const options: kopf.ApiWriteOptions = { dryRun: true };
 *   await api.create(child, options); // validated by the server, not stored
 * });
 * ```
 */
export interface ApiWriteOptions extends ApiObjectOptions {
  /** The field manager recorded for the write (default: `kopf`). */
  fieldManager?: string;
  /** Validate only (`dryRun=All`). */
  dryRun?: boolean;
}

/**
 * Options of {@linkcode Api.patch}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.update("kopfexamples", async function updateFn({ api, namespace, spec }) {
 *   const options: kopf.ApiPatchOptions = { namespace: namespace!, type: "json" };
 *   await api.patch("configmaps", "settings", [
 *     { op: "replace", path: "/data/size", value: String(spec.size) },
 *   ], options);
 * });
 * ```
 */
export interface ApiPatchOptions extends ApiWriteOptions {
  /**
   * `"merge"` (JSON merge patch, the default), `"json"` (RFC 6902 operations), or `"apply"`
   * (server-side apply of a partial object).
   */
  type?: PatchType;
  /** A subresource such as `"status"` or `"scale"`. */
  subresource?: string;
  /** Server-side apply only: take over fields owned by other managers. */
  force?: boolean;
}

/**
 * Options of {@linkcode Api.delete}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.delete("kopfexamples", async function deleteFn({ api, name, namespace }) {
 *   const options: kopf.ApiDeleteOptions = {
 *     namespace: namespace!,
 *     propagationPolicy: "Foreground",
 *     missingOk: true,
 *   };
 *   await api.delete("configmaps", `${name}-settings`, options);
 * });
 * ```
 */
export interface ApiDeleteOptions extends ApiObjectOptions {
  /** How dependents are deleted (garbage collection). */
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  /** Delete only if the object still has this uid / resourceVersion. */
  preconditions?: { uid?: string; resourceVersion?: string };
  /** Grace period before the object is deleted (pods). */
  gracePeriodSeconds?: number;
  /** Resolve quietly (with `null`) if the object does not exist (default: throw a 404). */
  missingOk?: boolean;
  /** Validate only (`dryRun=All`). */
  dryRun?: boolean;
}

/**
 * One change seen by {@linkcode Api.watch}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function describe(event: kopf.ApiWatchEvent): string {
 *   return `${event.type} ${event.object.metadata?.name}`;
 * }
 * ```
 */
export interface ApiWatchEvent<T = KubeObject> {
  /** `ADDED` (also for the objects that existed when the watch began), `MODIFIED`, `DELETED`. */
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** The object (for `DELETED`: its last state). */
  object: T;
  /** True for the objects that existed when the watch began. */
  initial: boolean;
}

/** A write of ours the cache has not caught up with yet. */
interface PendingWrite {
  /** The written resourceVersion, or `null` for a deletion. */
  readonly resourceVersion: string | null;
  readonly expiresAt: number;
}

/**
 * After this long, a write the cache has not seen is forgotten (the cache is trusted again): a
 * watch that lags this much is re-opened by its own health checks long before.
 */
const PENDING_TTL_MS = 60_000;

/** What an {@linkcode Api} works with: the operator's connection, discovery and caches. */
export interface ApiConnection {
  /** The operator's client. */
  readonly client: KubeClient;
  /** The operator's discovery cache. */
  readonly discovery: Discovery;
  /** The operator's informers, whose caches answer reads (none: every read asks the server). */
  readonly informers?: Informers;
  /** The field manager of writes (default `kopf`). */
  readonly fieldManager?: string;
}

/**
 * The Kubernetes API as handlers see it (`api` in every resource handler's context): typed
 * `get`, `list`, `create`, `replace`, `patch`, `apply`, `delete` and `watch` over the operator's
 * own connection. Types of `@kubernetes/client-node` fit as type arguments through a type-only
 * import, which loads nothing at run time.
 *
 * Errors are {@linkcode ApiError}s carrying the HTTP `status` (404 for a missing object, 409 for
 * a conflict): thrown from a handler, they are retried like any error.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * interface ConfigMap {
 *   apiVersion?: string;
 *   kind?: string;
 *   metadata?: { name?: string; namespace?: string };
 *   data?: Record<string, string>;
 * }
 *
 * kopf.on.create("kopfexamples", async function createFn({ api, body, spec }) {
 *   const child: ConfigMap = { apiVersion: "v1", kind: "ConfigMap", data: { size: `${spec.size}` } };
 *   kopf.adopt(child, body); // owner reference, namespace, a name derived from the parent
 *   const created = await api.create(child);
 *   return { child: created.metadata?.name };
 * });
 * ```
 */
export class Api {
  readonly #connection: ApiConnection;
  readonly #resolved = new Map<string, Promise<Resource>>();
  readonly #pending = new Map<ObjectKey, PendingWrite>();

  /** @internal The operator makes one for its handlers. */
  constructor(connection: ApiConnection) {
    this.#connection = connection;
  }

  /**
   * The one resource a reference names (discovery is cached and shared with the operator).
   * Throws a one-line error naming the reference when nothing matches (with close names).
   */
  resolve(ref: ResourceRef): Promise<Resource> {
    const cacheKey = JSON.stringify(ref);
    let resolved = this.#resolved.get(cacheKey);
    if (!resolved) {
      resolved = this.#resolve(ref);
      this.#resolved.set(cacheKey, resolved);
      // A failed lookup is not remembered: the CRD may be created later.
      resolved.catch(() => this.#resolved.delete(cacheKey));
    }
    return resolved;
  }

  async #resolve(ref: ResourceRef): Promise<Resource> {
    const selector = typeof ref === "string"
      ? parseSelector(ref)
      : Array.isArray(ref)
      ? parseSelector(...(ref as readonly string[]))
      : "apiVersion" in (ref as object)
      ? parseSelector(specOf(ref as { apiVersion: string; kind: string }))
      : parseSelector(ref as SelectorSpec);
    const [resource] = await this.#connection.discovery.resolve(selector, { watchable: false });
    if (!resource) throw new TypeError(`No resource matches ${selector}.`);
    return resource;
  }

  /**
   * Read one object: from the operator's cache when it watches that resource and namespace (and
   * has seen this operator's last write of the object), else from the API server. Throws an
   * {@linkcode ApiError} with status 404 if the object does not exist.
   */
  async get<T = KubeObject>(
    ref: ResourceRef,
    name: string,
    options: ApiGetOptions = {},
  ): Promise<T> {
    const resource = await this.resolve(ref);
    const namespace = resource.namespaced ? options.namespace : undefined;
    if (options.cached !== false) {
      const informer = this.#coveringInformer(resource, namespace);
      if (informer) {
        const key = objectKey(resource, namespace, name);
        const cached = informer.store.get(key);
        if (this.#caughtUp(key, cached)) {
          if (cached) return structuredClone(cached) as T;
          // The whole namespace is watched and listed: a miss is an absence.
          throw notFound(resource, name);
        }
      }
    }
    return await this.#connection.client.get<T>(resource, name, {
      namespace,
      signal: options.signal,
    });
  }

  /**
   * List objects, every page (from the API server: a list is a consistent snapshot, which a cache
   * being filled by a watch is not).
   */
  async list<T = KubeObject>(ref: ResourceRef, options: ApiListOptions = {}): Promise<T[]> {
    const resource = await this.resolve(ref);
    const items: T[] = [];
    let token: string | undefined;
    do {
      const page = await this.#connection.client.list<T>(resource, {
        namespace: resource.namespaced ? options.namespace : undefined,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: 500,
        continue: token,
        signal: options.signal,
      });
      items.push(...page.items);
      token = page.metadata?.continue || undefined;
    } while (token);
    return items;
  }

  /**
   * Create an object. The resource comes from its `apiVersion` and `kind`, the namespace from
   * `metadata.namespace` (or `options.namespace`). Resolves with the object as created.
   */
  async create<T extends object>(
    body: T,
    options: ApiWriteOptions = {},
  ): Promise<T & KubeObject> {
    const { resource, object, namespace } = await this.#target(body, options, "create");
    const created = await this.#connection.client.create<T & KubeObject>(
      resource,
      object,
      this.#writeOptions(options, namespace),
    );
    if (!options.dryRun) this.#wrote(resource, created);
    return created;
  }

  /**
   * Replace an object (PUT) with `body`, addressed by its `apiVersion`, `kind` and
   * `metadata.name`; a stale `metadata.resourceVersion` makes it fail with 409.
   */
  async replace<T extends object>(
    body: T,
    options: ApiWriteOptions = {},
  ): Promise<T & KubeObject> {
    const { resource, object, namespace, name } = await this.#target(body, options, "replace");
    const replaced = await this.#connection.client.replace<T & KubeObject>(
      resource,
      name,
      object,
      this.#writeOptions(options, namespace),
    );
    if (!options.dryRun) this.#wrote(resource, replaced);
    return replaced;
  }

  /**
   * Server-side apply of `body` (a partial object with `apiVersion`, `kind` and
   * `metadata.name`): the fields it names become this operator's (`fieldManager`).
   */
  async apply<T extends object>(
    body: T,
    options: ApiWriteOptions & { force?: boolean } = {},
  ): Promise<T & KubeObject> {
    const { resource, object, namespace, name } = await this.#target(body, options, "apply");
    return await this.patch<T & KubeObject>(resource, name, object, {
      ...options,
      namespace,
      type: "apply",
    });
  }

  /** Patch one object: a JSON merge patch by default, or `type: "json"` / `"apply"`. */
  async patch<T = KubeObject>(
    ref: ResourceRef | Resource,
    name: string,
    patch: unknown,
    options: ApiPatchOptions = {},
  ): Promise<T> {
    const resource = isResource(ref) ? ref : await this.resolve(ref);
    const type = options.type ?? "merge";
    const patched = await this.#connection.client.patch<T>(resource, name, patch, {
      namespace: resource.namespaced ? options.namespace : undefined,
      subresource: options.subresource,
      type,
      force: options.force,
      fieldManager: options.fieldManager ?? (type === "apply" ? this.#fieldManager : undefined),
      dryRun: options.dryRun,
      signal: options.signal,
    });
    if (!options.dryRun) this.#wrote(resource, patched as KubeObject);
    return patched;
  }

  /**
   * Delete one object. Resolves with what the server returns: the object while finalizers hold
   * it, or a `Status`; with `missingOk`, `null` if there was nothing to delete.
   */
  async delete<T = KubeObject>(
    ref: ResourceRef,
    name: string,
    options: ApiDeleteOptions = {},
  ): Promise<T | null> {
    const resource = await this.resolve(ref);
    const namespace = resource.namespaced ? options.namespace : undefined;
    try {
      const answer = await this.#connection.client.delete<T>(resource, name, {
        namespace,
        propagationPolicy: options.propagationPolicy,
        preconditions: options.preconditions,
        gracePeriodSeconds: options.gracePeriodSeconds,
        dryRun: options.dryRun,
        signal: options.signal,
      });
      if (!options.dryRun) {
        const object = answer as KubeObject;
        if (object?.kind !== "Status" && object?.metadata?.resourceVersion) {
          this.#wrote(resource, object);
        } else {
          this.#remember(objectKey(resource, namespace, name), null);
        }
      }
      return answer;
    } catch (error) {
      if (options.missingOk && error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }

  /**
   * Watch objects: the ones that exist first (`initial: true`), then every change, resumed
   * across reconnects without relisting, until `options.signal` aborts or the loop is left.
   */
  async *watch<T = KubeObject>(
    ref: ResourceRef,
    options: ApiListOptions = {},
  ): AsyncIterableIterator<ApiWatchEvent<T>> {
    const resource = await this.resolve(ref);
    const events = listAndWatch(this.#connection.client, resource, {
      namespace: resource.namespaced ? options.namespace : undefined,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      signal: options.signal,
    });
    for await (const event of events) {
      if (event.type === "SYNCED" || event.type === "MISSING") continue;
      yield { type: event.type, object: event.object as T, initial: event.initial };
    }
  }

  get #fieldManager(): string {
    return this.#connection.fieldManager ?? "kopf";
  }

  #writeOptions(options: ApiWriteOptions, namespace: string | undefined) {
    return {
      namespace,
      fieldManager: options.fieldManager ?? this.#fieldManager,
      dryRun: options.dryRun,
      signal: options.signal,
    };
  }

  /** The resource, namespace and name a body addresses, with a clear error for what is missing. */
  async #target(
    body: object,
    options: ApiObjectOptions,
    verb: string,
  ): Promise<{ resource: Resource; object: KubeObject; namespace?: string; name: string }> {
    const object = body as KubeObject;
    if (!object || typeof object !== "object" || !object.apiVersion || !object.kind) {
      throw new TypeError(
        `api.${verb}(): the object needs apiVersion and kind (got ${
          JSON.stringify({ apiVersion: object?.apiVersion, kind: object?.kind })
        }).`,
      );
    }
    const name = object.metadata?.name ?? "";
    if (!name && verb !== "create") {
      throw new TypeError(`api.${verb}(): the ${object.kind} needs metadata.name.`);
    }
    if (!name && verb === "create" && !object.metadata?.generateName) {
      throw new TypeError(
        `api.create(): the ${object.kind} needs metadata.name or metadata.generateName.`,
      );
    }
    const resource = await this.resolve({ apiVersion: object.apiVersion, kind: object.kind });
    const namespace = resource.namespaced
      ? options.namespace ?? object.metadata?.namespace
      : undefined;
    if (resource.namespaced && !namespace) {
      throw new TypeError(
        `api.${verb}(): the ${object.kind} ${name} needs a namespace (metadata.namespace or the namespace option).`,
      );
    }
    return { resource, object, namespace, name };
  }

  /**
   * A synced informer of the operator holding every object of this resource and namespace (not
   * a label-selected or sharded one: a miss there says nothing of the others).
   */
  #coveringInformer(resource: Resource, namespace: string | undefined): Informer | undefined {
    const wanted = resourceKey(resource);
    for (const informer of this.#connection.informers?.all() ?? []) {
      if (
        informer.synced && informer.labelSelector === undefined &&
        informer.shardSelector === undefined &&
        resourceKey(informer.resource) === wanted &&
        (informer.namespace === undefined || informer.namespace === namespace)
      ) {
        return informer;
      }
    }
    return undefined;
  }

  /** Whether the cache reflects this operator's last write of the object (if any). */
  #caughtUp(key: ObjectKey, cached: KubeObject | undefined): boolean {
    const pending = this.#pending.get(key);
    if (!pending) return true;
    const seen = pending.resourceVersion === null
      ? cached === undefined
      : cached?.metadata?.resourceVersion === pending.resourceVersion;
    if (seen || performance.now() >= pending.expiresAt) {
      this.#pending.delete(key);
      return true;
    }
    // A newer version than ours is also fine, but resourceVersions are opaque: ask the server.
    return false;
  }

  #wrote(resource: Resource, object: KubeObject): void {
    const name = object?.metadata?.name;
    if (!name) return;
    const namespace = resource.namespaced ? object.metadata?.namespace : undefined;
    this.#remember(objectKey(resource, namespace, name), object.metadata?.resourceVersion ?? null);
  }

  #remember(key: ObjectKey, resourceVersion: string | null): void {
    // Only objects the operator caches need remembering; others are always read from the server.
    if (!this.#connection.informers?.size) return;
    const now = performance.now();
    if (this.#pending.size > 1000) {
      for (const [k, p] of this.#pending) if (p.expiresAt <= now) this.#pending.delete(k);
    }
    this.#pending.set(key, { resourceVersion, expiresAt: now + PENDING_TTL_MS });
  }
}

function isResource(ref: ResourceRef | Resource): ref is Resource {
  return typeof ref === "object" && ref !== null && "plural" in ref && "namespaced" in ref &&
    "verbs" in ref;
}

function specOf(ref: { apiVersion: string; kind: string }): SelectorSpec {
  const slash = ref.apiVersion.lastIndexOf("/");
  return {
    group: slash < 0 ? "" : ref.apiVersion.slice(0, slash),
    version: slash < 0 ? ref.apiVersion : ref.apiVersion.slice(slash + 1),
    kind: ref.kind,
  };
}

/** The 404 the API server would answer, for a miss in a cache that holds the whole namespace. */
function notFound(resource: Resource, name: string): ApiError {
  const what = resource.group ? `${resource.plural}.${resource.group}` : resource.plural;
  return new ApiError({
    verb: "GET",
    path: `${resource.plural}/${name}`,
    status: 404,
    reason: "NotFound",
    message: `${what} "${name}" not found`,
    details: { name, group: resource.group, kind: resource.plural },
  });
}
