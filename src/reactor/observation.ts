/**
 * What the operator serves (Kopf's `observation`): the registered selectors resolved through
 * discovery into resources, the namespaces they are served in, and one shared informer per
 * resource × namespace × server-side label selector — kept up to date while the operator runs.
 *
 * - **Namespaces**: plain names are watched directly; globs and negations are resolved by
 *   watching namespaces (served when created, dropped when deleted). Without permission to list
 *   namespaces, only the plainly named ones are served, with a warning.
 * - **CRDs** are watched only when some selector is unresolved or not specific (`EVERYTHING`,
 *   categories, predicates), or once a served resource went missing (its CRD deleted): a CRD event
 *   then re-resolves every selector and starts or stops serving resources.
 * - **Shards**: with sharding, the informers ask the server for this replica's share only (a
 *   KEP-5866 shard selector, `rescope()`), except for resources with indexes: an index covers
 *   every object, so those are watched whole on every replica.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type Informer,
  type InformerEvent,
  type Informers,
  isChange,
  type Subscription,
} from "../cache/informer.ts";
import type { KubeClient } from "../kube/client.ts";
import { type Discovery, ResolveError } from "../kube/discovery.ts";
import { ApiError } from "../kube/errors.ts";
import { matchNamespaces, specificNamespaces } from "../kube/namespaces.ts";
import {
  type KubeObject,
  type ObjectKey,
  parseObjectKey,
  type Resource,
  resourceKey,
} from "../kube/resource.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings/settings.ts";

const logger = getLogger(["kopf", "operator"]);

/** A served resource and its informers, by namespace (`""`: cluster-wide). */
export interface Served {
  /** The resource. */
  readonly resource: Resource;
  /** The server-side label selector shared by all its handlers. */
  readonly labelSelector: string | undefined;
  /** Its informers and subscriptions. */
  readonly scopes: Map<string, { informer: Informer<KubeObject>; subscription: Subscription }>;
}

/** Where an object's latest state is: its resource, and the informer caching it. */
export interface Location {
  /** The resource. */
  readonly resource: Resource;
  /** The informer whose store holds the object. */
  readonly informer: Informer<KubeObject>;
}

/** What {@linkcode Observation} works with. */
export interface ObservationOptions {
  /** The handlers (their selectors). */
  readonly registry: Registry;
  /** The settings (`scanning`). */
  readonly settings: Settings;
  /** The client (to see whether namespaces can be listed). */
  readonly client: KubeClient;
  /** The shared informers. */
  readonly informers: Informers;
  /** Discovery. */
  readonly discovery: Discovery;
  /** Aborted when the operator stops. */
  readonly signal: AbortSignal;
  /** Namespace patterns to serve (none: the whole cluster). */
  readonly namespaces?: readonly (string | RegExp)[];
  /** Serve the whole cluster, said explicitly. */
  readonly clusterwide?: boolean;
  /** Every informer event of a served resource. */
  readonly onEvent: (served: Served, informer: Informer<KubeObject>, event: InformerEvent) => void;
  /** An object is not served any more (its namespace or resource was dropped). */
  readonly onDropped: (key: ObjectKey) => void;
}

/** A cluster-scoped built-in resource the operator watches for its own sake. */
function clusterResource(group: string, plural: string, kind: string, short: string): Resource {
  const singular = kind.toLowerCase();
  return {
    group,
    version: "v1",
    plural,
    kind,
    singular,
    shortcuts: [short],
    categories: [],
    namespaced: false,
    preferred: true,
    verbs: ["list", "watch", "get"],
    subresources: ["status"],
  };
}

const CRDS = clusterResource(
  "apiextensions.k8s.io",
  "customresourcedefinitions",
  "CustomResourceDefinition",
  "crd",
);
const NAMESPACES = clusterResource("", "namespaces", "Namespace", "ns");

/** The served resources, namespaces and informers of one operator. */
export class Observation {
  readonly #options: ObservationOptions;
  readonly #served = new Map<string, Served>();
  readonly #warned = new Set<string>();
  #namespaces: Set<string> | null = null;
  #observers: Subscription[] = [];
  #rescanTimer: ReturnType<typeof setTimeout> | undefined;
  #observingCrds = false;
  #rescanning: Promise<void> = Promise.resolve();
  /** The share of objects to watch (sharding), or undefined for all. */
  #shardSelector: string | undefined;
  #saidIndexed = new Set<string>();

  /** Nothing is served until {@linkcode Observation.start}. */
  constructor(options: ObservationOptions) {
    this.#options = options;
  }

  /** Resolve what to serve and start its informers. */
  async start(): Promise<void> {
    const { namespaces, clusterwide, settings } = this.#options;
    if (namespaces?.length && clusterwide) {
      throw new TypeError("kopf.run(): give either namespaces or clusterwide, not both");
    }
    if (!namespaces?.length) {
      if (!clusterwide) {
        logger.warn(
          "No namespaces or clusterwide mode are given: serving the whole cluster. " +
            "Use namespaces: [...] or clusterwide: true to make it explicit.",
        );
      }
      this.#namespaces = null;
    } else {
      await this.#resolveNamespaces(namespaces);
    }
    const { resources, observe } = await this.#resolve();
    for (const resource of resources) this.#serveResource(resource);
    if (observe && !settings.scanning.disabled) this.#observeCrds();
    this.#announce(resources);
  }

  /**
   * Says at INFO, once, what the operator watches and where: the first line a user sees that the
   * operator is at work, and the place to spot a wrong namespace or resource.
   */
  #announce(resources: readonly Resource[]): void {
    const { namespaces, registry } = this.#options;
    if (registry.selectors().length === 0) return;
    if (resources.length === 0) {
      logger.info("Watching nothing yet: no resource of the handlers is served (their CRDs?).");
      return;
    }
    const names = namespaces?.length ? specificNamespaces(namespaces) : null;
    const namespaced = !namespaces?.length
      ? "in all namespaces"
      : names?.length === 1
      ? `in namespace ${names[0]}`
      : names
      ? `in namespaces ${names.join(", ")}`
      : `in namespaces matching ${namespaces.map(String).join(", ")}`;
    const where = (resource: Resource) => resource.namespaced ? namespaced : "cluster-wide";
    const groups = new Map<string, string[]>();
    for (const resource of resources) {
      const scope = where(resource);
      groups.set(scope, [...(groups.get(scope) ?? []), resourceKey(resource)]);
    }
    const text = [...groups].map(([scope, keys]) => `${keys.join(", ")} ${scope}`).join("; ");
    logger.info("Watching {watched}.", { watched: text });
  }

  /** Resolves once every served informer has listed (or the operator stops). */
  async synced(): Promise<void> {
    const informers = [...this.#served.values()].flatMap((s) =>
      [...s.scopes.values()].map((scope) => scope.informer)
    );
    const { signal } = this.#options;
    await Promise.all(informers.map((i) => i.waitForSync(signal).catch(() => {})));
  }

  /**
   * Where the object of a key is cached, derived from the key rather than remembered per object:
   * with many objects, a map of locations costs ~90 bytes each for what the key already says.
   */
  locate(key: ObjectKey): Location | undefined {
    const { resource, namespace } = parseObjectKey(key);
    const served = this.#served.get(resource);
    if (!served) return undefined;
    const scope = namespace === undefined
      ? served.scopes.get("")
      : served.scopes.get(namespace) ?? served.scopes.get("");
    return scope && { resource: served.resource, informer: scope.informer };
  }

  /** Every cached object of every served resource (for a gate that opens or closes). */
  *cached(): Generator<{ key: ObjectKey; resource: Resource; object: KubeObject }> {
    for (const served of this.#served.values()) {
      for (const { informer } of served.scopes.values()) {
        for (const [key, object] of informer.store.entries()) {
          yield { key, resource: served.resource, object };
        }
      }
    }
  }

  /**
   * A served resource is gone from the API (404; e.g. its CRD was deleted): stop watching it, and
   * watch CRDs so that it is served again when it returns.
   */
  missing(served: Served): void {
    const key = resourceKey(served.resource);
    if (this.#served.get(key) !== served) return;
    logger.info(
      "Resource {resource} is gone from the API (its CRD deleted?): not served any more, " +
        "until it returns.",
      { resource: key },
    );
    this.#unserveResource(key, served);
    if (this.#options.settings.scanning.disabled) return;
    this.#observeCrds();
    // It may be back already (a 404 that passed): look now, not only on the next CRD event.
    this.#scheduleRescan(0);
  }

  /**
   * Watch only the objects of a KEP-5866 shard selector from now on (`undefined`: all), in every
   * informer that serves handlers (not those of resources with indexes), and in those to come.
   */
  rescope(shardSelector: string | undefined): void {
    if (shardSelector === this.#shardSelector) return;
    this.#shardSelector = shardSelector;
    for (const served of this.#served.values()) {
      const scoped = this.#scopedFor(served.resource);
      for (const { informer } of served.scopes.values()) informer.rescope(scoped);
    }
  }

  /** The shard selector for a resource's informers. */
  #scopedFor(resource: Resource): string | undefined {
    if (!this.#shardSelector) return undefined;
    if (!this.#options.registry.hasHandlers(resource, "indexing")) return this.#shardSelector;
    const key = resourceKey(resource);
    if (!this.#saidIndexed.has(key)) {
      this.#saidIndexed.add(key);
      logger.info(
        "Sharding: {resource} has indexes, which cover every object: watched whole on every " +
          "replica (handled by share).",
        { resource: key },
      );
    }
    return undefined;
  }

  /** Stop serving: no more events; resolves when a re-scan under way has finished. */
  async stop(): Promise<void> {
    clearTimeout(this.#rescanTimer);
    for (const observer of this.#observers) observer.unsubscribe();
    for (const served of this.#served.values()) {
      for (const scope of served.scopes.values()) scope.subscription.unsubscribe();
    }
    await this.#rescanning;
  }

  async #resolveNamespaces(patterns: readonly (string | RegExp)[]): Promise<void> {
    const { settings, client, informers, signal } = this.#options;
    const names = specificNamespaces(patterns);
    if (names || settings.scanning.disabled) {
      this.#namespaces = new Set(names ?? specificNamespaces(literalPatterns(patterns)) ?? []);
      return;
    }
    try {
      await client.list(NAMESPACES, { limit: 1, signal });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) throw error;
      const literals = specificNamespaces(literalPatterns(patterns)) ?? [];
      logger.warn(
        "Namespaces cannot be listed (403): serving only the namespaces named literally " +
          "({names}); the globs are ignored.",
        { names: literals.join(", ") || "none" },
      );
      this.#namespaces = new Set(literals);
      return;
    }
    this.#namespaces = new Set();
    const informer = informers.get(NAMESPACES);
    this.#observers.push(informer.subscribe((event) => this.#onNamespace(event, patterns)));
    await informer.waitForSync(signal).catch(() => {});
  }

  #onNamespace(event: InformerEvent, patterns: readonly (string | RegExp)[]): void {
    if (!isChange(event) || !this.#namespaces) return;
    const name = event.object.metadata?.name;
    if (!name || !matchNamespaces(name, patterns)) return;
    if (event.type === "DELETED") {
      if (!this.#namespaces.delete(name)) return;
      logger.debug("Namespace {namespace} is gone: not served any more.", { namespace: name });
      for (const served of this.#served.values()) this.#unserveScope(served, name);
    } else if (!this.#namespaces.has(name)) {
      this.#namespaces.add(name);
      logger.debug("Namespace {namespace} is served.", { namespace: name });
      for (const served of this.#served.values()) {
        if (served.resource.namespaced) this.#serveScope(served, name);
      }
    }
  }

  /** Resolve every selector; unresolved and non-specific ones ask for CRD observation. */
  async #resolve(warn = true): Promise<{ resources: Resource[]; observe: boolean }> {
    const { registry, discovery, signal } = this.#options;
    const found = new Map<string, Resource>();
    let observe = false;
    for (const selector of registry.selectors()) {
      if (!selector.isSpecific) observe = true;
      try {
        for (const resource of await discovery.resolve(selector, { signal })) {
          found.set(resourceKey(resource), resource);
        }
      } catch (error) {
        if (!(error instanceof ResolveError)) throw error;
        observe = true;
        const close = error.kind === "unknown" && error.candidates.length
          ? ` (did you mean: ${error.candidates.join(", ")}?)`
          : "";
        const text = error.kind === "unknown"
          ? `Unresolved resources cannot be served (try creating their CRDs): ${selector}${close}`
          : `Ambiguous resources will not be served (try specifying API groups): ${error.message}`;
        // Re-scans say what changed as they serve or stop serving (at INFO), not this again.
        if (warn && !this.#warned.has(text)) {
          this.#warned.add(text);
          logger.warn(text.replaceAll("{", "{{").replaceAll("}", "}}"));
        }
      }
    }
    return { resources: [...found.values()], observe };
  }

  #observeCrds(): void {
    if (this.#observingCrds) return;
    this.#observingCrds = true;
    const informer = this.#options.informers.get(CRDS);
    this.#observers.push(informer.subscribe((event) => {
      // A new CRD is served only once established: wait for the burst of its events to settle.
      if (isChange(event) && !event.initial) this.#scheduleRescan(500);
    }));
  }

  #scheduleRescan(delayMs: number): void {
    clearTimeout(this.#rescanTimer);
    this.#rescanTimer = setTimeout(() => {
      this.#rescanning = this.#rescanning.then(() => this.#rescan()).catch((error) =>
        logger.error("Re-scanning the resources failed: {error}", { error })
      );
    }, delayMs);
  }

  async #rescan(): Promise<void> {
    if (this.#options.signal.aborted) return;
    this.#options.discovery.invalidate();
    const { resources } = await this.#resolve(false);
    const wanted = new Map(resources.map((r) => [resourceKey(r), r]));
    for (const [key, served] of this.#served) {
      if (wanted.has(key)) continue;
      logger.info("Resource {resource} is not served any more.", { resource: key });
      this.#unserveResource(key, served);
    }
    for (const [key, resource] of wanted) {
      if (this.#served.has(key)) continue;
      logger.info("Resource {resource} is served.", { resource: key });
      this.#serveResource(resource);
    }
  }

  #serveResource(resource: Resource): void {
    const key = resourceKey(resource);
    if (this.#served.has(key) || this.#options.signal.aborted) return;
    const served: Served = {
      resource,
      labelSelector: this.#options.registry.labelSelector(resource) ?? undefined,
      scopes: new Map(),
    };
    this.#served.set(key, served);
    if (!resource.namespaced || this.#namespaces === null) {
      this.#serveScope(served, undefined);
    } else {
      for (const namespace of this.#namespaces) this.#serveScope(served, namespace);
    }
  }

  #unserveResource(key: string, served: Served): void {
    for (const scope of [...served.scopes.keys()]) this.#unserveScope(served, scope);
    this.#served.delete(key);
  }

  #serveScope(served: Served, namespace: string | undefined): void {
    const scopeKey = namespace ?? "";
    if (served.scopes.has(scopeKey)) return;
    const informer = this.#options.informers.get(served.resource, {
      namespace,
      labelSelector: served.labelSelector,
    });
    informer.rescope(this.#scopedFor(served.resource));
    const subscription = informer.subscribe((event) =>
      this.#options.onEvent(served, informer, event)
    );
    served.scopes.set(scopeKey, { informer, subscription });
  }

  #unserveScope(served: Served, namespace: string): void {
    const scope = served.scopes.get(namespace);
    if (!scope) return;
    for (const key of scope.informer.store.keys()) this.#options.onDropped(key);
    scope.subscription.unsubscribe();
    served.scopes.delete(namespace);
  }
}

function literalPatterns(patterns: readonly (string | RegExp)[]): string[] {
  return patterns.filter((p): p is string => typeof p === "string" && !/[!*?,]/.test(p));
}
