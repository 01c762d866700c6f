/**
 * The `/metrics` endpoint (`--metrics http://host:port/metrics`, `metrics` in `kopf.run`): `GET`
 * (or `HEAD`) of the path answers the text exposition; another path is a 404, another method a
 * 405, worded as the health endpoint words them. When the metrics URL has the liveness URL's host
 * and port, the health endpoint's server answers this path too (one port, as the issue asks):
 * {@linkcode metricsRoute} is what either server calls.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { CONTENT_TYPE } from "./exposition.ts";

const logger = getLogger(["kopf", "metrics"]);

/** Where the endpoint listens. */
export interface MetricsAddress {
  /** The address to bind to. */
  readonly hostname: string;
  /** The port (0 picks a free one). */
  readonly port: number;
  /** The path, e.g. `/metrics`. */
  readonly path: string;
}

/**
 * Parse a metrics URL: `http://host:port/path` only; the host defaults to `localhost`, the port
 * to 80, the path to `/metrics`.
 *
 * @example
 * ```ts
 * import { parseMetricsUrl } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseMetricsUrl("http://0.0.0.0:9090/metrics"), {
 *   hostname: "0.0.0.0",
 *   port: 9090,
 *   path: "/metrics",
 * });
 * ```
 */
export function parseMetricsUrl(endpoint: string): MetricsAddress {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError(`Unsupported metrics endpoint (http://host:port/path): ${endpoint}`);
  }
  if (url.protocol !== "http:") {
    throw new TypeError(`Unsupported scheme of the metrics endpoint: ${endpoint}`);
  }
  const hostname = (url.hostname || "localhost").replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : 80;
  const path = url.pathname && url.pathname !== "/" ? url.pathname : "/metrics";
  return { hostname, port, path };
}

/**
 * The answer to a request of the metrics path: the exposition for `GET`/`HEAD`, 405 otherwise;
 * 500 (and one logged error) if the exposition cannot be made at all.
 */
export function metricsRoute(expose: () => string): (request: Request) => Response {
  return (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("405: Method Not Allowed", {
        status: 405,
        headers: { "content-type": "text/plain; charset=utf-8", allow: "GET,HEAD" },
      });
    }
    let text: string;
    try {
      text = expose();
    } catch (error) {
      logger.error("The metrics could not be exposed: {error}", { error });
      return new Response("500: Internal Server Error", { status: 500 });
    }
    return new Response(request.method === "HEAD" ? null : text, {
      status: 200,
      headers: { "content-type": CONTENT_TYPE },
    });
  };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The URL of the endpoint, with the real port. */
  readonly url: string;
  /** Stop serving (and close the port). */
  close(): Promise<void>;
}

/**
 * Serve the exposition at `endpoint` until closed.
 *
 * @example
 * ```ts
 * import { serveMetrics } from "./server.ts";
 *
 * const server = await serveMetrics("http://127.0.0.1:0/metrics", () => "up 1\n");
 * await server.close();
 * ```
 */
export async function serveMetrics(endpoint: string, expose: () => string): Promise<MetricsServer> {
  const address = parseMetricsUrl(endpoint);
  const route = metricsRoute(expose);
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const handler = (request: Request): Response => {
    if (new URL(request.url).pathname !== address.path) {
      return new Response("404: Not Found", {
        status: 404,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    return route(request);
  };
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: address.hostname,
      port: address.port,
      onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
      onError: (error) => {
        logger.error("The metrics endpoint failed: {error}", { error });
        return new Response("500: Internal Server Error", { status: 500 });
      },
    }, handler);
  } catch (error) {
    // E.g. the port is taken: say which endpoint, in one line.
    throw new Error(
      `the metrics endpoint could not listen on ${endpoint}: ${(error as Error).message}`,
    );
  }
  server.finished.catch(() => {});
  const addr = await Promise.race([
    listening.promise,
    server.finished.then(() => {
      throw new Error(`the metrics endpoint could not listen on ${endpoint}`);
    }),
  ]);
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    url: `http://${host}:${addr.port}${address.path}`,
    close: async () => {
      await server.shutdown();
    },
  };
}

/**
 * Whether two endpoint URLs listen on the same host and port (then one server answers both).
 *
 * @example
 * ```ts
 * import { sameListener } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(sameListener("http://0.0.0.0:8080/healthz", "http://0.0.0.0:8080/metrics"));
 * assert.ok(!sameListener("http://0.0.0.0:8080/healthz", "http://0.0.0.0:9090/metrics"));
 * ```
 */
export function sameListener(a: string, b: string): boolean {
  const x = parseMetricsUrl(a);
  const y = parseMetricsUrl(b);
  return x.hostname === y.hostname && x.port === y.port && x.port !== 0;
}
