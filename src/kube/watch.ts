/**
 * The list + watch loop: one resource in one scope, from an initial listing to an endless stream
 * of changes, surviving disconnects, expired resource versions, silent streams and API server
 * restarts.
 *
 * What it does, in the order things happen:
 *
 * 1. An initial listing: pages of 500 objects following `continue` (a stale `continue` token
 *    restarts the listing), or a streaming list (a watch with `sendInitialEvents=true` that ends
 *    its initial part with a bookmark annotated `k8s.io/initial-events-end`).
 * 2. A watch from the listing's resourceVersion with bookmarks on and a server-side timeout drawn
 *    from 300–600 s, so that many watches do not all reconnect at the same moment.
 * 3. After every disconnect, a new watch from the last resourceVersion seen (of an event or a
 *    bookmark). Resource versions are opaque strings: never parsed, never compared for order.
 * 4. A re-list only on 410 Gone (HTTP 410, or an `ERROR` event with code 410). A re-list is
 *    diffed against what was already announced: objects that vanished meanwhile become `DELETED`
 *    events, objects whose resourceVersion did not change are not announced again.
 * 5. Silence is not a failure. A connection that died silently (a half-open TCP connection, a
 *    dropped NAT entry) is found by the client's connection health check, which fails every
 *    request and watch on it within 45 s (see `client.ts`); the watch is then re-opened on a new
 *    connection from its last resourceVersion. A silent watch on a healthy connection is only a
 *    quiet resource: measured on kube-apiserver 1.36 (the test plane), a watch with bookmarks on
 *    a CRD without objects gets its first bookmark 60 s after it opened when it watches the
 *    storage version, but 120 s after when it watches another served version, then one a minute
 *    or so, and one about 1.5 s before its `timeoutSeconds`; a server without the watch cache
 *    for a resource sends none at all. A fixed 90 s timer thus re-opened healthy watches with a
 *    warning. So with a health-checked transport (`checksConnections`), the only idle
 *    timer is a guard against a stream the server failed to end: silence for 30 s past the
 *    watch's own `timeoutSeconds` re-opens it with a WARNING. Transports without a health check
 *    (e.g. `node:https` for skip-verify clusters, where HTTP/1.1 gives every watch its own
 *    socket that no probe can vouch for) keep a 90 s idle timer, above the bookmark interval;
 *    `idleTimeoutMs` sets it explicitly (Kopf's `inactivity_timeout`). A watch re-opened after
 *    silence is logged at INFO: it costs one WATCH request (resumed, no LIST) and loses nothing.
 * 6. Every failure is logged with the resource and namespace and followed by a jittered
 *    exponential backoff; the loop never gives up and ends only when its signal aborts.
 *
 * @module
 */
import { sleepUnless } from "./time.ts";
import { getLogger } from "@logtape/logtape";
import { Backoff, type BackoffPolicy, WATCH_BACKOFF } from "./backoff.ts";
import { watchLines } from "./_watch_lines.ts";
import {
  apiVersion,
  type KubeObject,
  objectKeyOf,
  type ObjectMeta,
  parseObjectKey,
  type Resource,
  resourceKey,
  resourcePath,
} from "./resource.ts";

const logger = getLogger(["kopf", "watch"]);

/** The idle timer of watches over a transport without a connection health check. */
const DEFAULT_IDLE_TIMEOUT_MS = 90_000;

/** How long past its server-side timeout a silent watch is given before it is re-opened. */
const OVERDUE_MARGIN_MS = 30_000;

/** The annotation on the bookmark that ends the initial part of a streaming list. */
const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

/** Query parameters as the transport takes them; `undefined` values are left out. */
export type WatchQuery = Record<string, string | number | boolean | undefined>;

/**
 * What the watch loop needs from an HTTP client. `KubeClient` satisfies it; tests may use a
 * plain `fetch` transport.
 *
 * Both methods throw on a non-2xx response with an error that carries the HTTP status as a
 * numeric `status` property (and optionally `reason`, and `retryAfterSeconds` for 429).
 */
export interface WatchTransport {
  /** A plain request; resolves to the parsed JSON body. */
  request<T>(
    method: string,
    path: string,
    options?: { query?: WatchQuery; signal?: AbortSignal; retries?: number },
  ): Promise<T>;
  /** A long-lived GET whose response body streams newline-delimited JSON watch events. */
  stream(path: string, options?: { query?: WatchQuery; signal?: AbortSignal }): Promise<Response>;
  /**
   * Whether the transport finds silent dead connections itself (`KubeClient` does: its health
   * check). Then a silent watch is a quiet resource and no idle timer is needed.
   */
  readonly checksConnections?: boolean;
}

/** A change of one object. */
export interface ObjectEvent<T extends KubeObject = KubeObject> {
  /** What happened, relative to what this watch announced before. */
  type: "ADDED" | "MODIFIED" | "DELETED";
  /**
   * The object's key (`ObjectKey`), when the producer already computed it; caches
   * reuse the same string instead of building another per object.
   */
  key?: string;
  /** The object as the server sent it (for `DELETED`, its last state). */
  object: T;
  /** True for events made from the first listing of this watch (objects that existed before). */
  initial: boolean;
  /**
   * True on a `DELETED` made up after a re-list because the object was gone from the new listing:
   * the object carries only its identity and last known resourceVersion, its final state is
   * unknown. A cache should announce its own last copy instead.
   */
  finalStateUnknown?: boolean;
}

/** The end of a (re-)listing: the consumer has now seen the whole state once more. */
export interface SyncedEvent {
  /** The marker type. */
  type: "SYNCED";
  /** False for the first listing, true for every re-list after a 410 Gone. */
  relist: boolean;
  /** The resourceVersion the listing was taken at. */
  resourceVersion: string;
}

/** What {@linkcode listAndWatch} yields. */
/**
 * The resource is not served (404 on its list or watch: e.g. its CRD was deleted). Yielded once
 * per streak of 404s; the loop goes on retrying, so a consumer that still wants the resource
 * gets it back when it returns, and one that does not stops the loop.
 */
export interface MissingEvent {
  /** The marker type. */
  type: "MISSING";
}

/** What {@linkcode listAndWatch} yields. */
export type WatchEvent<T extends KubeObject = KubeObject> =
  | ObjectEvent<T>
  | SyncedEvent
  | MissingEvent;

/** How the initial state is fetched: pages of a LIST, or a streaming list (a WATCH). */
export type InitialSync = "list" | "stream";

/** Options of {@linkcode listAndWatch}. */
export interface ListAndWatchOptions {
  /** Watch one namespace; omitted means cluster-wide (or a cluster-scoped resource). */
  namespace?: string;
  /** A label selector, applied by the server. */
  labelSelector?: string;
  /** A field selector, applied by the server. */
  fieldSelector?: string;
  /**
   * A shard selector (KEP-5866, kube-apiserver ≥ 1.36 with the `ShardedListAndWatch` feature
   * gate), e.g. `shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')`:
   * the server sends only the objects whose 64-bit FNV-1a hash of the field falls in the ranges.
   * A server without the feature ignores it (and does not echo it in `stats.shardInfo`).
   */
  shardSelector?: string;
  /** Ends the loop: the iteration finishes and the open request is dropped. */
  signal?: AbortSignal;
  /**
   * How to fetch the initial state (default `"list"`). Measured on 10,000 ConfigMaps against a
   * local kube-apiserver 1.36 (bench/watch_bench.ts): both take 0.2–0.6 s, but the streaming list
   * peaks about 50 MB higher in the client (the events arrive faster than pages and are decoded
   * one by one), so paginated LIST is the default. Servers without streaming lists are detected
   * and served by paginated lists anyway.
   */
  initialSync?: InitialSync;
  /** Objects per LIST page (default 500). */
  pageSize?: number;
  /**
   * Re-open a watch that delivered nothing (no event, no bookmark) for this long. Default: with
   * a transport that checks its connections' health, 30 s past the watch's own server-side
   * `timeoutSeconds` (a stream the server failed to end); without, 90 s (see the module docs).
   */
  idleTimeoutMs?: number;
  /**
   * With a health-checked transport and no `idleTimeoutMs`: how long a watch may stay silent past
   * its own server-side `timeoutSeconds` before it is re-opened with a WARNING (default 30 s).
   */
  overdueMarginMs?: number;
  /** Give up on one LIST page after this long, then back off and retry (default 60 s). */
  listTimeoutMs?: number;
  /** The range the server-side `timeoutSeconds` of each watch is drawn from (default 300–600). */
  serverTimeoutSeconds?: readonly [min: number, max: number];
  /**
   * Close each watch request after this long and resume from where it stood, as when the server
   * ends it (Kopf's `watching.client_timeout`; default: only the server ends it).
   */
  clientTimeoutMs?: number;
  /** Reconnect backoff (default 0.8 s ×2, full jitter, cap 30 s, reset after 2 min healthy). */
  backoff?: Partial<BackoffPolicy>;
  /** Random source for jitter and timeouts (tests make it deterministic). */
  random?: () => number;
}

/** Counters and health of one list/watch loop, updated live (for metrics and readiness). */
export interface WatchStats {
  /** The first listing has completed. */
  synced: boolean;
  /** The last request succeeded and nothing failed since. */
  healthy: boolean;
  /** When the server last answered anything (ms since the epoch), or undefined if never. */
  lastHealthyAt: number | undefined;
  /** The resourceVersion the next watch would start from, if any. */
  resourceVersion: string | undefined;
  /** Listings completed (the first one and every re-list; a streaming list counts too). */
  lists: number;
  /** LIST pages requested (failed attempts included). */
  listPages: number;
  /** Listings completed after the first one caused by a 410 Gone (not re-scopes). */
  relists: number;
  /** Watch requests opened. */
  watches: number;
  /** Watch requests opened after the first one. */
  reconnects: number;
  /** Object events yielded (ADDED, MODIFIED, DELETED). */
  events: number;
  /** Bookmarks received. */
  bookmarks: number;
  /** Failures (each followed by a backoff). */
  errors: number;
  /**
   * The shard selector the server says it applied to the last LIST page (KEP-5866's
   * `metadata.shardInfo.selector`), or `undefined` when it did not say (no selector asked for,
   * or a server that ignores it).
   */
  shardInfo: string | undefined;
  /**
   * Whether the server applies shard selectors to this resource (learnt at the first listing that
   * asks one), or `undefined` while not known.
   */
  shardsApplied: boolean | undefined;
}

/** A running list/watch: iterate it for events; read `stats` at any time. */
export interface ListWatch<T extends KubeObject = KubeObject> extends AsyncIterable<WatchEvent<T>> {
  /** Live counters and health. */
  readonly stats: Readonly<WatchStats>;
  /**
   * The shard selector asked of the server now: the one given (or last re-scoped to), or
   * `undefined` — also once a LIST showed that the server ignores it (then every object comes).
   */
  readonly shardSelector: string | undefined;
  /**
   * Watch another share (KEP-5866): the open request is dropped and the objects are listed again
   * under `shardSelector`. Objects new to the stream come as `ADDED` with `initial: true` (they
   * existed before it saw them), those it no longer covers as `DELETED` with `finalStateUnknown`;
   * the others only if they changed. A no-op for the same selector, and once the server has shown
   * that it ignores selectors.
   */
  rescope(shardSelector: string | undefined): void;
}

/**
 * Lists and then watches a resource, forever: yields `ADDED`/`MODIFIED`/`DELETED` for every
 * change and `SYNCED` after each (re-)listing. The iteration ends only when `signal` aborts (or the
 * consumer stops iterating); errors are logged and retried, never thrown.
 *
 * Only one iteration may run per returned object.
 *
 * @example
 * ```ts
 * import { KubeClient } from "./client.ts";
 * import { Discovery } from "./discovery.ts";
 * import { parseSelector } from "./selector.ts";
 * import { listAndWatch } from "./watch.ts";
 *
 * const client = await KubeClient.connect();
 * const [configMaps] = await new Discovery(client).resolve(parseSelector("v1", "configmaps"));
 * const controller = new AbortController();
 * const { signal } = controller;
 * const watch = listAndWatch(client, configMaps, { namespace: "default", signal });
 * for await (const event of watch) {
 *   if (event.type === "SYNCED") console.log("all objects seen");
 *   else if (event.type !== "MISSING") console.log(event.type, event.object.metadata?.name);
 * }
 * ```
 */
export function listAndWatch<T extends KubeObject = KubeObject>(
  transport: WatchTransport,
  resource: Resource,
  options: ListAndWatchOptions = {},
): ListWatch<T> {
  const loop = new WatchLoop<T>(transport, resource, options);
  return {
    stats: loop.stats,
    get shardSelector() {
      return loop.shardSelector;
    },
    rescope: (shardSelector) => loop.rescope(shardSelector),
    [Symbol.asyncIterator]: () => loop.run(),
  };
}

/** The server said 410 Gone: the resourceVersion is too old, a re-list is needed. */
class GoneError extends Error {
  override name = "GoneError";
}

/** The stream delivered nothing for the idle timeout. */
class IdleError extends Error {
  override name = "IdleError";
  /** The silence outlasted the watch's own server-side timeout: the server failed to end it. */
  constructor(message: string, readonly overdue: boolean) {
    super(message);
  }
}

/** An `ERROR` event in a watch stream (other than 410). */
class WatchErrorEvent extends Error {
  override name = "WatchErrorEvent";
  constructor(readonly status: number | undefined, message: string) {
    super(message);
  }
}

interface ListPage {
  metadata?: { resourceVersion?: string; continue?: string; shardInfo?: { selector?: string } };
  items?: KubeObject[];
}

interface RawWatchEvent {
  type?: string;
  object?: KubeObject & { code?: number; message?: string; reason?: string };
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : undefined;
}

function retryAfterMs(error: unknown): number {
  const seconds = (error as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
  return typeof seconds === "number" && seconds > 0 ? seconds * 1000 : 0;
}

/** Milliseconds as seconds with one decimal, for log lines. */
function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/**
 * Settles like `promise`, or rejects with the abort reason as soon as `signal` aborts — even if
 * the request underneath missed the abort (see `#follow`). A result that arrives after the abort
 * is handed to `late` for cleanup.
 */
function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  late: (value: T) => void = () => {},
): Promise<T> {
  if (signal.aborted) {
    promise.then(late, () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      settled = true;
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (settled) late(value);
        else resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        if (!settled) reject(error);
      },
    );
  });
}

/** One listing under way: whether it is a re-list or a re-scope, and the keys it has seen. */
interface Listing {
  readonly relist: boolean;
  readonly rescope: boolean;
  /** The scope it lists (see `rescope()`). */
  readonly scope: number;
  readonly seen: Set<string>;
}

/** A shard selector no server that applies selectors accepts: its range starts after its end. */
const IMPOSSIBLE_SHARD =
  "shardRange(object.metadata.uid, '0x0000000000000001', '0x0000000000000000')";

/** The (resource, mode) pairs whose sharding mode was said at INFO: once per process. */
const saidSharding = new Set<string>();

class WatchLoop<T extends KubeObject> {
  readonly stats: WatchStats = {
    synced: false,
    healthy: false,
    lastHealthyAt: undefined,
    resourceVersion: undefined,
    lists: 0,
    listPages: 0,
    relists: 0,
    watches: 0,
    reconnects: 0,
    events: 0,
    bookmarks: 0,
    errors: 0,
    shardInfo: undefined,
    shardsApplied: undefined,
  };

  #transport: WatchTransport;
  #resource: Resource;
  #path: string;
  #apiVersion: string;
  #where: string;
  #namespace: string | undefined;
  #labelSelector: string | undefined;
  #fieldSelector: string | undefined;
  #shardSelector: string | undefined;
  #signal: AbortSignal;
  #initialSync: InitialSync;
  #pageSize: number;
  #idleTimeoutMs: number | undefined;
  #overdueMarginMs: number;
  #listTimeoutMs: number;
  #serverTimeout: readonly [number, number];
  #clientTimeoutMs: number | undefined;
  #random: () => number;
  #backoff: Backoff;
  /** key → resourceVersion of every object announced and not yet deleted: the re-list diff base. */
  #known = new Map<string, string>();
  #running = false;
  /** In a streak of 404s (the resource is not served): said once. */
  #missing = false;
  /** Bumped by each re-scope: a listing of an older scope is no listing of this one. */
  #scope = 0;
  /** The scope of the last completed listing. */
  #listedScope = 0;
  /** The requests under way, dropped by a re-scope. */
  readonly #requests = new Set<AbortController>();
  /** A re-scope dropped the request under way: its failure is no failure. */
  #dropped = false;

  constructor(transport: WatchTransport, resource: Resource, options: ListAndWatchOptions) {
    this.#transport = transport;
    this.#resource = resource;
    this.#namespace = options.namespace;
    this.#path = resourcePath(resource, { namespace: options.namespace });
    this.#apiVersion = apiVersion(resource);
    this.#where = options.namespace ? `namespace ${options.namespace}` : "all namespaces";
    this.#labelSelector = options.labelSelector || undefined;
    this.#fieldSelector = options.fieldSelector || undefined;
    this.#shardSelector = options.shardSelector || undefined;
    this.#signal = options.signal ?? new AbortController().signal;
    this.#initialSync = options.initialSync ?? "list";
    this.#pageSize = options.pageSize ?? 500;
    this.#idleTimeoutMs = options.idleTimeoutMs ??
      (transport.checksConnections ? undefined : DEFAULT_IDLE_TIMEOUT_MS);
    this.#overdueMarginMs = options.overdueMarginMs ?? OVERDUE_MARGIN_MS;
    this.#listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.#serverTimeout = options.serverTimeoutSeconds ?? [300, 600];
    this.#clientTimeoutMs = options.clientTimeoutMs;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ ...WATCH_BACKOFF, ...options.backoff }, this.#random);
  }

  get shardSelector(): string | undefined {
    return this.#shardSelector;
  }

  rescope(selector: string | undefined): void {
    selector ||= undefined;
    if (this.stats.shardsApplied === false || selector === this.#shardSelector) return;
    this.#shardSelector = selector;
    this.#scope++;
    this.#dropped = this.#requests.size > 0;
    for (const request of this.#requests) request.abort(new Rescoped());
  }

  #context(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      resource: resourceKey(this.#resource),
      namespace: this.#namespace ?? "*",
      labelSelector: this.#labelSelector,
      ...extra,
    };
  }

  #healthy(): void {
    this.#missing = false;
    this.stats.healthy = true;
    this.stats.lastHealthyAt = Date.now();
  }

  async *run(): AsyncGenerator<WatchEvent<T>, void, undefined> {
    if (this.#running) throw new Error("listAndWatch() may be iterated only once at a time");
    this.#running = true;
    let streaming = this.#initialSync === "stream";
    try {
      while (!this.#signal.aborted) {
        // A new share is a new set of objects: listed, not resumed from a resourceVersion.
        if (this.#listedScope !== this.#scope) this.stats.resourceVersion = undefined;
        try {
          if (this.stats.resourceVersion === undefined && !streaming) {
            yield* this.#list();
            // Re-scoped while the consumer took the last events: list the new share first.
            if (this.#listedScope !== this.#scope) continue;
          }
          yield* this.#watch(streaming && this.stats.resourceVersion === undefined);
        } catch (error) {
          if (this.#signal.aborted) break;
          if (this.#dropped || error instanceof Rescoped) {
            // Dropped on purpose by a re-scope: list the new share at once.
            this.#dropped = false;
            continue;
          }
          const status = error instanceof GoneError ? 410 : statusOf(error);
          this.stats.healthy = false;
          this.stats.errors++;
          if (status === 410) {
            // The only reason to list again: the server no longer has the history we need.
            this.stats.resourceVersion = undefined;
          }
          if (
            streaming && this.stats.resourceVersion === undefined &&
            (status === 400 || status === 422 || error instanceof StreamingUnsupported)
          ) {
            logger.warn(
              "Streaming lists of {resource} in {namespace} are not served ({error}); " +
                "falling back to paginated lists.",
              this.#context({ error: describe(error) }),
            );
            streaming = false;
            continue;
          }
          const delay = Math.floor(Math.max(this.#backoff.next(), retryAfterMs(error)));
          const context = this.#context({ error: describe(error), status, delay });
          const missing = status === 404;
          if (missing && !this.#missing) {
            // Said by the consumer, which knows whether it still wants the resource.
            this.#missing = true;
            yield { type: "MISSING" };
            logger.debug("{resource} is not served (404); retrying in {delay} ms.", context);
          } else if (missing) {
            logger.debug("{resource} is still not served (404); retrying in {delay} ms.", context);
          } else if (status === 410) {
            logger.info(
              "Watch of {resource} in {namespace} expired (410 Gone): re-listing in {delay} ms.",
              context,
            );
          } else if (error instanceof IdleError && !error.overdue) {
            // Silence is a quiet resource as often as a broken stream: no cause for alarm.
            logger.info(
              "Watch of {resource} in {namespace}: {error}; re-opening it in {delay} ms.",
              context,
            );
          } else if ((error as { dead?: unknown } | null)?.dead === true) {
            // The transport has logged the dead connection once, with everything it failed.
            logger.info(
              "Watch of {resource} in {namespace} lost its connection ({error}); " +
                "re-opening it in {delay} ms.",
              context,
            );
          } else {
            logger.warn(
              "Watch of {resource} in {namespace} failed: {error}; retrying in {delay} ms.",
              context,
            );
          }
          await sleepUnless(delay / 1000, this.#signal);
        }
      }
    } finally {
      this.#running = false;
      this.stats.healthy = false;
    }
  }

  #startListing(): Listing {
    // Until a listing completes, a new one still delivers the initial state.
    const rescope = this.#listedScope !== this.#scope;
    return { relist: this.stats.synced, rescope, scope: this.#scope, seen: new Set() };
  }

  /**
   * Whether the server applies shard selectors to this resource, learnt at the first listing
   * that asks: a server that applies one echoes it in the list's `metadata.shardInfo` — but
   * kube-apiserver 1.36 does not echo it for custom resources, which it filters all the same. So
   * without an echo, one probe with an impossible range tells: a server that applies selectors
   * refuses it ("invalid shard selector"), one that ignores them lists. If it ignores them, it
   * sent every object, and asking again would only cost listings on each re-scope: every object
   * is watched from then on.
   */
  async #learnSharding(echo: string | undefined): Promise<void> {
    let applied: boolean | undefined = echo !== undefined;
    if (!applied) {
      applied = await this.#probeSharding();
      if (applied === undefined) return; // unknown (the probe failed): asked again next time
    }
    this.stats.shardsApplied = applied;
    if (!applied) this.#shardSelector = undefined;
    const said = `${resourceKey(this.#resource)}\u0000${applied}`;
    if (saidSharding.has(said)) return;
    saidSharding.add(said);
    if (applied) {
      logger.info(
        "The API server applies shardSelector to {resource}: this replica watches only its share.",
        this.#context(),
      );
    } else {
      logger.info(
        "The API server ignores shardSelector for {resource} (feature gate ShardedListAndWatch " +
          "off?): this replica watches every object and filters its share on the client.",
        this.#context(),
      );
    }
  }

  async #probeSharding(): Promise<boolean | undefined> {
    const query: WatchQuery = { limit: 1, shardSelector: IMPOSSIBLE_SHARD };
    const signal = this.#signal;
    try {
      // Not retried: the refusal is the answer (and it is a 500 for custom resources).
      await this.#transport.request("GET", this.#path, { query, signal, retries: 0 });
      return false;
    } catch (error) {
      // 400 for built-in resources, 500 for custom ones (v1.36.3): the message is what tells.
      if (statusOf(error) !== undefined && /invalid shard selector/i.test(describe(error))) {
        return true;
      }
      return undefined;
    }
  }

  /** A listing is complete: the consumer has seen the whole state at `rv`. */
  #synced(listing: Listing, rv: string): SyncedEvent {
    this.#listedScope = listing.scope;
    this.stats.resourceVersion = rv;
    this.stats.synced = true;
    this.stats.lists++;
    if (listing.relist && !listing.rescope) this.stats.relists++;
    return { type: "SYNCED", relist: listing.relist, resourceVersion: rv };
  }

  /** Announces one listed object unless its announced resourceVersion is the same. */
  #listed(object: KubeObject, listing: Listing): ObjectEvent<T> | undefined {
    const key = objectKeyOf(this.#resource, object);
    listing.seen.add(key);
    const rv = object.metadata?.resourceVersion ?? "";
    const before = this.#known.get(key);
    if (before === rv) return undefined;
    this.#known.set(key, rv);
    this.stats.events++;
    return {
      type: before === undefined ? "ADDED" : "MODIFIED",
      key,
      object: object as T,
      // New to a re-scoped stream: it existed before, as if in a first listing.
      initial: !listing.relist || (listing.rescope && before === undefined),
    };
  }

  /** After a complete listing: whatever was announced but not listed is gone. */
  *#vanished(seen: Set<string>): Generator<ObjectEvent<T>, void, undefined> {
    const gone = [...this.#known].filter(([key]) => !seen.has(key));
    for (const [key, rv] of gone) {
      this.#known.delete(key);
      this.stats.events++;
      const { namespace, name } = parseObjectKey(key);
      const metadata: ObjectMeta = namespace === undefined
        ? { name, resourceVersion: rv }
        : { namespace, name, resourceVersion: rv };
      const object = { apiVersion: this.#apiVersion, kind: this.#resource.kind, metadata };
      yield {
        type: "DELETED",
        key,
        object: object as T,
        initial: false,
        finalStateUnknown: true,
      };
    }
  }

  async *#list(): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const listing = this.#startListing();
    let token: string | undefined;
    while (true) {
      const query: WatchQuery = {
        limit: this.#pageSize,
        continue: token,
        labelSelector: this.#labelSelector,
        fieldSelector: this.#fieldSelector,
        shardSelector: this.#shardSelector,
      };
      const timeout = new AbortController();
      const timer = setTimeout(
        () => timeout.abort(new Error(`no LIST response within ${this.#listTimeoutMs} ms`)),
        this.#listTimeoutMs,
      );
      const unlink = this.#follow(timeout);
      let page: ListPage;
      this.stats.listPages++;
      try {
        page = await untilAborted(
          this.#transport.request<ListPage>("GET", this.#path, { query, signal: timeout.signal }),
          timeout.signal,
        );
      } catch (error) {
        if (timeout.signal.aborted && !this.#signal.aborted) throw timeout.signal.reason;
        if (token !== undefined && statusOf(error) === 410) {
          // The continue token outlived the server's history: start over from a fresh snapshot.
          // Objects announced from the stale pages are re-checked against it.
          logger.info(
            "Listing of {resource} in {namespace} expired mid-way (410 Gone): restarting it.",
            this.#context(),
          );
          token = undefined;
          listing.seen.clear();
          continue;
        }
        throw error;
      } finally {
        clearTimeout(timer);
        unlink();
      }
      this.#healthy();
      this.stats.shardInfo = page.metadata?.shardInfo?.selector;
      if (this.#shardSelector && this.stats.shardsApplied === undefined) {
        await this.#learnSharding(this.stats.shardInfo);
      }
      for (const item of page.items ?? []) {
        // Items of a list carry no apiVersion/kind; consumers expect whole objects.
        item.apiVersion ??= this.#apiVersion;
        item.kind ??= this.#resource.kind;
        const event = this.#listed(item, listing);
        if (event) yield event;
      }
      // Re-scoped while the consumer took this page: the next pages would be of the old share.
      if (listing.scope !== this.#scope) throw new Rescoped();
      token = page.metadata?.continue || undefined;
      if (token === undefined) {
        const rv = page.metadata?.resourceVersion ?? "";
        yield* this.#vanished(listing.seen);
        yield this.#synced(listing, rv);
        return;
      }
    }
  }

  /**
   * One watch request, read to its end. With `streamingList`, it starts with the whole state
   * (a streaming list) and continues as a plain watch.
   */
  async *#watch(streamingList: boolean): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const [min, max] = this.#serverTimeout;
    const timeoutSeconds = Math.floor(min + this.#random() * (max - min + 1));
    const query: WatchQuery = {
      watch: true,
      allowWatchBookmarks: true,
      timeoutSeconds: Math.min(timeoutSeconds, max),
      labelSelector: this.#labelSelector,
      fieldSelector: this.#fieldSelector,
      shardSelector: this.#shardSelector,
    };
    const openedAt = Date.now();
    const listing = streamingList ? this.#startListing() : undefined;
    let initialEvents = listing !== undefined;
    if (listing) {
      query.sendInitialEvents = true;
      query.resourceVersionMatch = "NotOlderThan";
    } else {
      query.resourceVersion = this.stats.resourceVersion;
    }

    const abort = new AbortController();
    const unlink = this.#follow(abort);
    const signal = abort.signal;
    let lastActivity = Date.now();
    let idle = false;
    // Explicit or transport-less: the idle timer; health-checked: a guard past the server's end.
    const overdueMs = query.timeoutSeconds === undefined
      ? DEFAULT_IDLE_TIMEOUT_MS
      : Number(query.timeoutSeconds) * 1000 + this.#overdueMarginMs;
    const idleTimeoutMs = this.#idleTimeoutMs ?? overdueMs;
    const check = () => {
      const quiet = Date.now() - lastActivity;
      if (quiet >= idleTimeoutMs) {
        idle = true;
        const overdue = Date.now() - openedAt >= overdueMs;
        const silence = `no event or bookmark for ${seconds(quiet)}`;
        const past = Date.now() - openedAt - Number(query.timeoutSeconds) * 1000;
        abort.abort(
          new IdleError(
            overdue
              ? `${silence}, ${seconds(past)} past its server-side timeout of ` +
                `${query.timeoutSeconds} s`
              : silence,
            overdue,
          ),
        );
      } else {
        timer = setTimeout(check, idleTimeoutMs - quiet);
      }
    };
    let timer = setTimeout(check, idleTimeoutMs);
    let ended = false;
    const limit = this.#clientTimeoutMs === undefined ? undefined : setTimeout(() => {
      ended = true;
      abort.abort(new Error("the client-side timeout of the watch request"));
    }, this.#clientTimeoutMs);

    if (this.stats.watches > 0) this.stats.reconnects++;
    this.stats.watches++;
    let received = 0;
    try {
      const response = await untilAborted(
        this.#transport.stream(this.#path, { query, signal }),
        signal,
        (late) => void late.body?.cancel().catch(() => {}),
      );
      if (!response.body) throw new Error("the watch response has no body");
      this.#healthy();
      for await (const line of watchLines(response.body, signal)) {
        lastActivity = Date.now();
        this.stats.lastHealthyAt = lastActivity;
        received++;
        const event = JSON.parse(line) as RawWatchEvent;
        const object = event.object;
        switch (event.type) {
          case "ADDED":
          case "MODIFIED":
          case "DELETED": {
            if (!object) continue;
            if (listing && initialEvents) {
              // Initial events of a streaming list arrive in no resourceVersion order: only
              // the closing bookmark tells where the watch stands.
              const announced = this.#listed(object, listing);
              if (announced) yield announced;
              continue;
            }
            const changed = this.#changed(event.type, object);
            this.stats.resourceVersion = object.metadata?.resourceVersion ??
              this.stats.resourceVersion;
            if (changed) yield changed;
            break;
          }
          case "BOOKMARK": {
            this.stats.bookmarks++;
            const rv = object?.metadata?.resourceVersion;
            if (listing && initialEvents) {
              if (object?.metadata?.annotations?.[INITIAL_EVENTS_END] !== "true") {
                // A server that ignores sendInitialEvents sends plain bookmarks and no initial
                // state; waiting for the end marker would wait forever.
                throw new StreamingUnsupported("a bookmark came before the initial-events end");
              }
              initialEvents = false;
              yield* this.#vanished(listing.seen);
              yield this.#synced(listing, rv ?? "");
            } else if (rv) {
              this.stats.resourceVersion = rv;
            }
            break;
          }
          case "ERROR": {
            const code = object?.code;
            if (code === 410) throw new GoneError(object?.message ?? "410 Gone");
            throw new WatchErrorEvent(
              code,
              `ERROR event ${code ?? "?"} ${object?.reason ?? ""}: ${object?.message ?? ""}`,
            );
          }
          default:
            logger.debug(
              "Ignoring a watch event of unknown type {type} for {resource} in {namespace}.",
              this.#context({ type: event.type }),
            );
        }
      }
    } catch (error) {
      if (idle) throw abort.signal.reason;
      if (!ended || this.#signal.aborted) throw error;
      // Our own limit ended it: a normal end, resumed below like the server's.
    } finally {
      clearTimeout(timer);
      clearTimeout(limit);
      unlink();
      abort.abort();
    }
    if (this.#signal.aborted) return;
    if (initialEvents) {
      throw new Error("the streaming list ended before its initial events did");
    }
    if (received === 0 && Date.now() - openedAt < 1000) {
      // A stream that ends at once with nothing in it is a failure in disguise (client-go's
      // VeryShortWatchError); reconnecting at once would hammer the server.
      throw new Error("the watch stream ended immediately without any event");
    }
    logger.debug("Watch of {resource} in {namespace} ended; resuming from {resourceVersion}.", {
      ...this.#context(),
      resourceVersion: this.stats.resourceVersion,
    });
  }

  /**
   * Makes `controller` abort when the loop's signal does, until the returned function is called.
   * A plain listener, not `AbortSignal.any()`: Deno may garbage-collect a signal made by `any()`
   * while a request still depends on it, and then the abort is lost.
   */
  #follow(controller: AbortController): () => void {
    const outer = this.#signal;
    if (outer.aborted) {
      controller.abort(outer.reason);
      return () => {};
    }
    const forward = () => controller.abort(outer.reason);
    outer.addEventListener("abort", forward, { once: true });
    this.#requests.add(controller);
    return () => {
      outer.removeEventListener("abort", forward);
      this.#requests.delete(controller);
    };
  }

  /** Turns a watch event into what the consumer should see, given what it was told before. */
  #changed(type: string, object: KubeObject): ObjectEvent<T> | undefined {
    const key = objectKeyOf(this.#resource, object);
    const rv = object.metadata?.resourceVersion ?? "";
    const before = this.#known.get(key);
    if (type === "DELETED") {
      if (before === undefined) return undefined;
      this.#known.delete(key);
    } else {
      // The same resourceVersion again (e.g. replayed after a reconnect) is not a change.
      if (before === rv) return undefined;
      this.#known.set(key, rv);
      type = before === undefined ? "ADDED" : "MODIFIED";
    }
    this.stats.events++;
    return { type: type as ObjectEvent["type"], key, object: object as T, initial: false };
  }
}

/** The scope changed under a request: it is dropped and the new share listed. */
class Rescoped extends Error {
  override name = "Rescoped";
  override message = "re-scoped";
}

/** The server does not do streaming lists (it ignored `sendInitialEvents`). */
class StreamingUnsupported extends Error {
  override name = "StreamingUnsupported";
}
