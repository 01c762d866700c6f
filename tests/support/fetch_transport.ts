/**
 * A minimal `fetch` transport for the watch tests: bearer token + CA, no retries, no rate limit.
 * It lets the watch layer be tested against the real API server (or the fault proxy) on its own,
 * so a retry in the client cannot hide a fault the watch loop itself must survive.
 *
 * @module
 */
import { ApiError } from "../../src/kube/errors.ts";
import type { WatchQuery, WatchTransport } from "../../src/kube/watch.ts";

/** Where to connect: the API server (or a proxy in front of it). */
export interface Endpoint {
  server: string;
  token: string;
  caPem: string;
}

function withQuery(path: string, query: WatchQuery = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function failure(method: string, path: string, response: Response): Promise<ApiError> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* plain text */ }
  const retryAfter = Number(response.headers.get("retry-after") ?? NaN);
  return ApiError.from(
    method,
    path,
    response.status,
    body,
    isNaN(retryAfter) ? undefined : retryAfter,
  );
}

/** The transport; {@linkcode FetchTransport.close} releases its connections. */
export class FetchTransport implements WatchTransport {
  #endpoint: Endpoint;
  #client: Deno.HttpClient;
  /** Requests made (method and path with query), for debugging failed tests. */
  readonly log: string[] = [];

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
    this.#client = Deno.createHttpClient({ caCerts: [endpoint.caPem] });
  }

  async request<T>(
    method: string,
    path: string,
    options: { query?: WatchQuery; signal?: AbortSignal; body?: unknown } = {},
  ): Promise<T> {
    const url = withQuery(path, options.query);
    this.log.push(`${method} ${url}`);
    const response = await fetch(`${this.#endpoint.server}${url}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.#endpoint.token}`,
        Accept: "application/json",
        ...(options.body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      client: this.#client,
      signal: options.signal,
    });
    if (!response.ok) throw await failure(method, path, response);
    return await response.json() as T;
  }

  async stream(
    path: string,
    options: { query?: WatchQuery; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const url = withQuery(path, options.query);
    this.log.push(`WATCH ${url}`);
    const response = await fetch(`${this.#endpoint.server}${url}`, {
      headers: { Authorization: `Bearer ${this.#endpoint.token}`, Accept: "application/json" },
      client: this.#client,
      signal: options.signal,
    });
    if (!response.ok) throw await failure("GET", path, response);
    return response;
  }

  close(): void {
    this.#client.close();
  }
}
