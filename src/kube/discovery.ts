/**
 * API discovery: which resources the cluster serves, cached, and resolved against selectors.
 *
 * Discovery first asks for the aggregated documents (`/api` and `/apis` with
 * `Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`) — two
 * requests for the whole cluster — and falls back to the legacy walk (`/api`, `/api/v1`,
 * `/apis`, then `/apis/<group>/<version>` for every group version) when the server does not
 * offer them.
 *
 * The result is cached. A selector that finds nothing triggers a refresh, at most once per
 * `missRefreshMs` (10 s by default) so a typo cannot turn into a request storm;
 * {@linkcode Discovery.invalidate} forces the next lookup to refresh (the operator calls it when
 * CRDs change).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type SleepingClock, SYSTEM_CLOCK } from "./time.ts";
import { type Resource, resourceKey } from "./resource.ts";
import type { Selector } from "./selector.ts";

const logger = getLogger(["kopf", "discovery"]);

/** What discovery needs from a client: plain GETs (a `KubeClient` fits). */
export interface DiscoveryTransport {
  /** Sends a request and returns the parsed JSON answer. */
  request<T>(
    method: string,
    path: string,
    options?: { accept?: string; signal?: AbortSignal },
  ): Promise<T>;
}

/** Options of {@linkcode Discovery}. */
export interface DiscoveryOptions {
  /** Least time between refreshes caused by unresolved selectors, in ms (default 10 000). */
  missRefreshMs?: number;
  /** Try aggregated discovery first (default `true`). */
  aggregated?: boolean;
  /** Group versions fetched at once in the legacy walk (default 8). */
  concurrency?: number;
  /** Time source (tests). */
  clock?: SleepingClock;
}

/** Options of {@linkcode Discovery.resolve}. */
export interface ResolveOptions {
  /**
   * Keep only resources that can be listed and watched, and reject ambiguous specific
   * selectors — the rules for watched resources (default `true`). With `false`, all matches
   * are returned (core group preferred), as for webhooks and one-off requests.
   */
  watchable?: boolean;
  /** Aborts the discovery requests. */
  signal?: AbortSignal;
}

/** A selector could not be resolved: unknown, or ambiguous. */
export class ResolveError extends Error {
  /** `"unknown"`: nothing matches; `"ambiguous"`: a specific name matches several resources. */
  readonly kind: "unknown" | "ambiguous";
  /** Close names (unknown) or the competing resources (ambiguous). */
  readonly candidates: readonly string[];

  /** Creates the error. */
  constructor(kind: "unknown" | "ambiguous", message: string, candidates: readonly string[]) {
    super(message);
    this.name = "ResolveError";
    this.kind = kind;
    this.candidates = candidates;
  }
}

/** Aggregated discovery, preferring v2 over v2beta1 over legacy JSON. */
export const AGGREGATED_ACCEPT: string =
  "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList," +
  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList," +
  "application/json";

/**
 * A cached view of the resources the API server serves.
 *
 * @example
 * ```ts
 * import { KubeClient } from "./client.ts";
 * import { Discovery } from "./discovery.ts";
 * import { parseSelector } from "./selector.ts";
 * const client = await KubeClient.connect();
 * const discovery = new Discovery(client);
 * const [resource] = await discovery.resolve(parseSelector("kopfexamples"));
 * ```
 */
export class Discovery {
  #client: DiscoveryTransport;
  #missRefreshMs: number;
  #aggregated: boolean;
  #concurrency: number;
  #clock: SleepingClock;
  #resources?: Resource[];
  #fetchedAt = -Infinity;
  #pending?: Promise<Resource[]>;
  #generation = 0;
  /** Discovery requests made (for tests and metrics). */
  fetches = 0;

  /** Creates an empty cache over `client`; nothing is fetched until the first lookup. */
  constructor(client: DiscoveryTransport, options: DiscoveryOptions = {}) {
    this.#client = client;
    this.#missRefreshMs = options.missRefreshMs ?? 10_000;
    this.#aggregated = options.aggregated ?? true;
    this.#concurrency = Math.max(1, options.concurrency ?? 8);
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** All served resources (every version), from the cache or fetched once. */
  async resources(options: { signal?: AbortSignal } = {}): Promise<Resource[]> {
    if (this.#resources) return this.#resources;
    return await this.refresh(options);
  }

  /** Fetches the resources again (concurrent callers share one fetch). */
  refresh(options: { signal?: AbortSignal } = {}): Promise<Resource[]> {
    if (!this.#pending) {
      const generation = this.#generation;
      this.#pending = this.#fetch(options.signal)
        .then((resources) => {
          // An invalidate() during the fetch means this answer may predate the change.
          if (generation === this.#generation) {
            this.#resources = resources;
            this.#fetchedAt = this.#clock.now();
          }
          return resources;
        })
        .finally(() => this.#pending = undefined);
    }
    return this.#pending;
  }

  /** Drops the cache: the next lookup fetches again (call it when CRDs change). */
  invalidate(): void {
    this.#generation++;
    this.#resources = undefined;
  }

  /**
   * The resources a selector means. A specific name that matches nothing triggers one refresh
   * (rate-limited), then a {@linkcode ResolveError} listing close names; an ambiguous one a
   * {@linkcode ResolveError} listing the candidates. Non-specific selectors (EVERYTHING,
   * categories, predicates) may resolve to an empty list.
   */
  async resolve(selector: Selector, options: ResolveOptions = {}): Promise<Resource[]> {
    const watchable = options.watchable ?? true;
    let resources = await this.resources(options);
    let matched = selector.match(resources);
    if (!matched.length && this.#clock.now() - this.#fetchedAt >= this.#missRefreshMs) {
      logger.debug("Nothing matches {selector}; refreshing discovery", {
        selector: selector.toString(),
      });
      resources = await this.refresh(options);
      matched = selector.match(resources);
    }
    if (selector.isSpecific) {
      if (!matched.length) {
        const candidates = suggest(selector, resources);
        throw new ResolveError(
          "unknown",
          `No resource matches ${selector}${
            candidates.length ? ` (did you mean: ${candidates.join(", ")}?)` : ""
          }`,
          candidates,
        );
      }
      if (watchable && matched.length > 1) {
        const names = matched.map(resourceKey);
        throw new ResolveError(
          "ambiguous",
          `${selector} is ambiguous: it matches ${names.join(", ")} (specify the API group)`,
          names,
        );
      }
    }
    return watchable ? selector.select(resources) : matched;
  }

  async #fetch(signal?: AbortSignal): Promise<Resource[]> {
    let core: unknown;
    if (this.#aggregated) {
      const aggregated = await this.#fetchAggregated(signal);
      if (Array.isArray(aggregated)) return aggregated;
      core = aggregated.core;
    }
    return await this.#fetchLegacy(signal, core as { versions?: string[] } | undefined);
  }

  /**
   * The resources, or — when the server does not serve aggregated discovery — its plain `/api`
   * answer, which the legacy walk reuses.
   */
  async #fetchAggregated(signal?: AbortSignal): Promise<Resource[] | { core?: unknown }> {
    const documents: unknown[] = [];
    for (const path of ["/api", "/apis"]) {
      this.fetches++;
      const doc = await this.#client.request<unknown>("GET", path, {
        accept: AGGREGATED_ACCEPT,
        signal,
      });
      if (!isAggregated(doc)) {
        logger.debug("No aggregated discovery at {path}; using the legacy walk", { path });
        return { core: path === "/api" ? doc : undefined };
      }
      documents.push(doc);
    }
    const resources: Resource[] = [];
    for (const doc of documents as AggregatedList[]) {
      for (const group of doc.items ?? []) {
        const groupName = group.metadata?.name ?? "";
        (group.versions ?? []).forEach((version, index) => {
          for (const r of version.resources ?? []) {
            resources.push(fromAggregated(groupName, version.version, index === 0, r));
          }
        });
      }
    }
    return resources;
  }

  async #fetchLegacy(signal?: AbortSignal, core?: { versions?: string[] }): Promise<Resource[]> {
    const targets: { group: string; version: string; preferred: boolean; path: string }[] = [];
    if (!core) {
      this.fetches++;
      core = await this.#client.request<{ versions?: string[] }>("GET", "/api", { signal });
    }
    (core.versions ?? []).forEach((version, index) => {
      targets.push({ group: "", version, preferred: index === 0, path: `/api/${version}` });
    });
    this.fetches++;
    const groups = await this.#client.request<LegacyGroupList>("GET", "/apis", { signal });
    for (const group of groups.groups ?? []) {
      const preferred = group.preferredVersion?.version ?? group.versions?.[0]?.version;
      for (const v of group.versions ?? []) {
        targets.push({
          group: group.name,
          version: v.version,
          preferred: v.version === preferred,
          path: `/apis/${group.name}/${v.version}`,
        });
      }
    }
    const resources: Resource[] = [];
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const target = targets[next++];
        this.fetches++;
        let list: LegacyResourceList;
        try {
          list = await this.#client.request<LegacyResourceList>("GET", target.path, { signal });
        } catch (error) {
          if (signal?.aborted) throw error;
          // One broken aggregated API (e.g. metrics.k8s.io without its server) must not hide
          // the rest of the cluster.
          logger.warn("Discovery of {path} failed, skipping it: {error}", {
            path: target.path,
            error: String(error instanceof Error ? error.message : error),
          });
          continue;
        }
        resources.push(...fromLegacy(target.group, target.version, target.preferred, list));
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.#concurrency, targets.length) }, worker),
    );
    return resources;
  }
}

// ---------------------------------------------------------------------------------------------

interface AggregatedResource {
  resource: string;
  responseKind?: { group?: string; version?: string; kind?: string };
  scope?: string;
  singularResource?: string;
  verbs?: string[];
  shortNames?: string[];
  categories?: string[];
  subresources?: { subresource: string }[];
}

interface AggregatedList {
  kind?: string;
  items?: {
    metadata?: { name?: string };
    versions?: { version: string; resources?: AggregatedResource[] }[];
  }[];
}

interface LegacyGroupList {
  groups?: {
    name: string;
    versions?: { groupVersion: string; version: string }[];
    preferredVersion?: { groupVersion: string; version: string };
  }[];
}

interface LegacyResourceList {
  resources?: {
    name: string;
    singularName?: string;
    namespaced?: boolean;
    kind: string;
    verbs?: string[];
    shortNames?: string[];
    categories?: string[];
  }[];
}

function isAggregated(doc: unknown): doc is AggregatedList {
  return !!doc && typeof doc === "object" &&
    (doc as AggregatedList).kind === "APIGroupDiscoveryList";
}

function fromAggregated(
  group: string,
  version: string,
  preferred: boolean,
  r: AggregatedResource,
): Resource {
  const kind = r.responseKind?.kind ?? "";
  return {
    group,
    version,
    plural: r.resource,
    kind,
    // Some distributions (k3s) report no singular names; Kopf falls back to the kind.
    singular: r.singularResource || kind.toLowerCase(),
    shortcuts: r.shortNames ?? [],
    categories: r.categories ?? [],
    namespaced: r.scope === "Namespaced",
    preferred,
    verbs: r.verbs ?? [],
    subresources: (r.subresources ?? []).map((s) => s.subresource),
  };
}

function fromLegacy(
  group: string,
  version: string,
  preferred: boolean,
  list: LegacyResourceList,
): Resource[] {
  const subresources = new Map<string, string[]>();
  for (const r of list.resources ?? []) {
    const slash = r.name.indexOf("/");
    if (slash > 0) {
      const main = r.name.slice(0, slash);
      subresources.set(main, [...(subresources.get(main) ?? []), r.name.slice(slash + 1)]);
    }
  }
  return (list.resources ?? [])
    .filter((r) => !r.name.includes("/"))
    .map((r) => ({
      group,
      version,
      plural: r.name,
      kind: r.kind,
      singular: r.singularName || r.kind.toLowerCase(),
      shortcuts: r.shortNames ?? [],
      categories: r.categories ?? [],
      namespaced: !!r.namespaced,
      preferred,
      verbs: r.verbs ?? [],
      subresources: subresources.get(r.name) ?? [],
    }));
}

/** Names close to the selector's, spelled so they can be pasted back as a selector. */
function suggest(selector: Selector, resources: Resource[]): string[] {
  const wanted = (typeof selector.anyName === "string" ? selector.anyName : undefined) ??
    selector.plural ?? selector.kind ?? selector.singular ?? selector.shortcut;
  if (!wanted) return [];
  const lower = wanted.toLowerCase();
  const scored = new Map<string, number>();
  for (const r of resources) {
    if (selector.group !== undefined && selector.group !== r.group) {
      // Same name, other group: the group is the likely mistake.
      if (![r.plural, r.kind, r.singular, ...r.shortcuts].includes(wanted)) continue;
    }
    const names = [r.plural, r.kind, r.singular, ...r.shortcuts].filter((n) => n);
    let best = Infinity;
    for (const name of names) {
      const n = name.toLowerCase();
      let d = editDistance(lower, n);
      if (n.includes(lower) || lower.includes(n)) d = Math.min(d, 1);
      best = Math.min(best, d);
    }
    const limit = Math.max(2, Math.floor(wanted.length / 3));
    if (best <= limit) {
      const key = r.group ? `${r.plural}.${r.group}` : r.plural;
      scored.set(key, Math.min(scored.get(key) ?? Infinity, best));
    }
  }
  return [...scored.entries()]
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
    .slice(0, 5)
    .map(([name]) => name);
}

/** Levenshtein distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}
