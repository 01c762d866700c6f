/**
 * The health endpoint (`--liveness http://host:port/healthz`, `liveness` in `kopf.run`):
 *
 * - `GET <path>` (e.g. `/healthz`): liveness, Kopf-compatible — the results of the
 *   `kopf.on.probe` handlers as JSON `{ probe_id: result }`, re-run at most every 10 s (the
 *   cached results are served in between, and concurrent requests share one run); 500 if a
 *   probe fails for good.
 * - `GET <dir>/readyz`: readiness — 200 once every informer has synced its first listing and
 *   every index has indexed it, 503 before, and 503 while no watch has been healthy for
 *   `staleAfter` seconds (the API server is unreachable); the body says why.
 *
 * Bound to the address in the URL only (loopback by default); plain HTTP, as Kopf. Anything else
 * is answered as Kopf's aiohttp server answers it: another path with `404: Not Found`, another
 * method on these paths with `405: Method Not Allowed` (and `Allow: GET,HEAD`), in plain text.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const logger = getLogger(["kopf", "health"]);

/** Where the endpoint listens. */
export interface LivenessAddress {
  /** The address to bind to. */
  hostname: string;
  /** The port (0 picks a free one). */
  port: number;
  /** The liveness path, e.g. `/healthz`. */
  path: string;
  /** The readiness path: `readyz` next to the liveness path. */
  readyPath: string;
}

/**
 * Parse a liveness URL as Kopf does: `http://host:port/path` only; the host defaults to
 * `localhost` (loopback), the port to 80, the path to `/`.
 *
 * @example
 * ```ts
 * import { parseLivenessUrl } from "./server.ts";
 * parseLivenessUrl("http://0.0.0.0:8080/healthz");
 * // { hostname: "0.0.0.0", port: 8080, path: "/healthz", readyPath: "/readyz" }
 * ```
 */
export function parseLivenessUrl(endpoint: string): LivenessAddress {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError(`Unsupported liveness endpoint (http://host:port/path): ${endpoint}`);
  }
  if (url.protocol !== "http:") {
    throw new TypeError(`Unsupported scheme of the liveness endpoint: ${endpoint}`);
  }
  const hostname = (url.hostname || "localhost").replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : 80;
  const path = url.pathname || "/";
  const readyPath = path.replace(/[^/]*$/, "readyz");
  return { hostname, port, path, readyPath: readyPath === path ? `${path}/readyz` : readyPath };
}

/** A cache of probe results: re-run at most every `maxAge` seconds, one run at a time. */
export class ProbeCache {
  readonly #run: () => Promise<Record<string, unknown>>;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #results: Record<string, unknown> = {};
  #takenAt: number | undefined;
  #running: Promise<Record<string, unknown>> | undefined;

  /** A cache over `run` (Kopf: 10 s). */
  constructor(
    run: () => Promise<Record<string, unknown>>,
    options: { maxAge?: number; now?: () => number } = {},
  ) {
    this.#run = run;
    this.#maxAgeMs = (options.maxAge ?? 10) * 1000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The results, fresh enough. */
  get(): Promise<Record<string, unknown>> {
    const now = this.#now();
    if (this.#takenAt !== undefined && now - this.#takenAt < this.#maxAgeMs) {
      return Promise.resolve(this.#results);
    }
    this.#running ??= this.#run().then((results) => {
      this.#results = results;
      this.#takenAt = this.#now();
      return results;
    }).finally(() => this.#running = undefined);
    return this.#running;
  }
}

/** What readiness looks at of one informer (an `Informer`). */
export interface WatchHealth {
  /** Its first listing is complete. */
  readonly synced: boolean;
  /** The watch is connected and its last request succeeded. */
  readonly healthy: boolean;
  /** When the server last answered (ms since the epoch). */
  readonly lastHealthyAt?: number;
  /** What it watches, for the report. */
  readonly resource?: { readonly plural: string; readonly group: string };
  /** Its namespace, for the report. */
  readonly namespace?: string;
}

/** A readiness verdict. */
export interface Readiness {
  /** Ready to serve. */
  readonly ready: boolean;
  /** Why not (empty when ready). */
  readonly reasons: readonly string[];
}

/** What {@linkcode readinessOf} considers. */
export interface ReadinessInput {
  /** The informers of the served resources. */
  readonly watches: readonly WatchHealth[];
  /** Every index has indexed its initial listing. */
  readonly indexesReady: boolean;
  /** The operator has started (startup handlers done, resources resolved). */
  readonly started: boolean;
  /** Seconds without any healthy watch after which the operator is not ready (default 60). */
  readonly staleAfter?: number;
  /** Ms since the epoch. */
  readonly now?: number;
}

function describe(watch: WatchHealth): string {
  const resource = watch.resource
    ? [watch.resource.plural, watch.resource.group].filter((p) => p).join(".")
    : "a resource";
  return watch.namespace ? `${resource} in ${watch.namespace}` : resource;
}

/**
 * Readiness: started, every watch synced, every index indexed, and some watch healthy within
 * `staleAfter` seconds.
 *
 * @example
 * ```ts
 * import { readinessOf } from "./server.ts";
 * readinessOf({ watches: [{ synced: true, healthy: true }], indexesReady: true, started: true });
 * // { ready: true, reasons: [] }
 * ```
 */
export function readinessOf(input: ReadinessInput): Readiness {
  const reasons: string[] = [];
  if (!input.started) reasons.push("the operator is starting");
  for (const watch of input.watches) {
    if (!watch.synced) reasons.push(`${describe(watch)}: not listed yet`);
  }
  if (!input.indexesReady) reasons.push("indexes are not built yet");
  const now = input.now ?? Date.now();
  const staleMs = (input.staleAfter ?? 60) * 1000;
  if (input.watches.length && !input.watches.some((w) => w.healthy)) {
    const last = Math.max(...input.watches.map((w) => w.lastHealthyAt ?? -Infinity));
    if (!(now - last < staleMs)) {
      reasons.push(
        Number.isFinite(last)
          ? `no watch has been healthy for ${Math.round((now - last) / 1000)} seconds`
          : "no watch has been healthy yet",
      );
    }
  }
  return { ready: reasons.length === 0, reasons };
}

/** Options of {@linkcode serveHealth}. */
export interface HealthOptions {
  /** The liveness URL, e.g. `http://127.0.0.1:8080/healthz`. */
  endpoint: string;
  /** The probe results (cache them with {@linkcode ProbeCache}). */
  probes: () => Promise<Record<string, unknown>>;
  /** The readiness verdict. */
  readiness: () => Readiness;
  /** More paths this server answers (the metrics path, when it shares this address). */
  routes?: Readonly<Record<string, (request: Request) => Response>>;
}

/** A running health endpoint. */
export interface HealthServer {
  /** The URL of the liveness endpoint, with the real port. */
  readonly url: string;
  /** The URL of the readiness endpoint. */
  readonly readyUrl: string;
  /** Stop serving (and close the port). */
  close(): Promise<void>;
}

/** A plain-text error as aiohttp words it (`404: Not Found`), which Kopf's endpoint answers with. */
function plain(status: 404 | 405): Response {
  const text = status === 404 ? "404: Not Found" : "405: Method Not Allowed";
  const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
  if (status === 405) headers.allow = "GET,HEAD";
  return new Response(text, { status, headers });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

/**
 * Serve the health endpoint until closed.
 *
 * @example
 * ```ts
 * const server = await serveHealth({
 *   endpoint: "http://127.0.0.1:8080/healthz",
 *   probes: () => Promise.resolve({ up: true }),
 *   readiness: () => ({ ready: true, reasons: [] }),
 * });
 * await server.close();
 * ```
 */
export async function serveHealth(options: HealthOptions): Promise<HealthServer> {
  const address = parseLivenessUrl(options.endpoint);
  const handler = async (request: Request): Promise<Response> => {
    const { pathname } = new URL(request.url);
    const route = options.routes && Object.hasOwn(options.routes, pathname)
      ? options.routes[pathname]
      : undefined;
    if (route && pathname !== address.path && pathname !== address.readyPath) return route(request);
    if (pathname !== address.path && pathname !== address.readyPath) return plain(404);
    if (request.method !== "GET" && request.method !== "HEAD") return plain(405);
    if (pathname === address.path) {
      try {
        return json(200, await options.probes());
      } catch (error) {
        logger.error("Probing failed: {error}", { error });
        return json(500, { error: error instanceof Error ? error.message : String(error) });
      }
    }
    const verdict = options.readiness();
    return json(verdict.ready ? 200 : 503, verdict);
  };
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: address.hostname,
    port: address.port,
    onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
    onError: (error) => {
      logger.error("The health endpoint failed: {error}", { error });
      return json(500, { error: "internal error" });
    },
  }, handler);
  server.finished.catch(() => {});
  const addr = await Promise.race([
    listening.promise,
    server.finished.then(() => {
      throw new Error(`the health endpoint could not listen on ${options.endpoint}`);
    }),
  ]);
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${host}:${addr.port}${address.path}`;
  const readyUrl = `http://${host}:${addr.port}${address.readyPath}`;
  logger.debug("Serving health status at {url}", { url });
  return {
    url,
    readyUrl,
    close: async () => {
      await server.shutdown();
    },
  };
}
