/**
 * The benchmark driver's own API client: plain `fetch`, independent of the framework under test.
 * It authenticates as the admin (token) or, to check the operator's identity, with a client
 * certificate.
 *
 * @module
 */

/** Where and how to reach the API server. */
export interface ApiEndpoint {
  /** `https://127.0.0.1:<port>`. */
  server: string;
  caPem: string;
  /** Bearer token (the admin's). */
  token?: string;
  /** Client certificate and key, PEM (instead of a token). */
  certPem?: string;
  keyPem?: string;
}

/** An HTTP error from the API server. */
export class DriverApiError extends Error {
  constructor(readonly status: number, readonly body: string, what: string) {
    super(`${what}: HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/** The driver's client. */
export class DriverApi {
  readonly #client: Deno.HttpClient;

  constructor(readonly endpoint: ApiEndpoint) {
    this.#client = Deno.createHttpClient({
      caCerts: [endpoint.caPem],
      ...(endpoint.certPem && endpoint.keyPem
        ? { cert: endpoint.certPem, key: endpoint.keyPem }
        : {}),
    });
  }

  /**
   * One request; parsed JSON back; throws {@linkcode DriverApiError} on non-2xx, and gives up
   * after two minutes so that a stuck request cannot hang the benchmark.
   */
  // deno-lint-ignore no-explicit-any
  async request(method: string, path: string, body?: unknown, contentType?: string): Promise<any> {
    const signal = AbortSignal.timeout(120_000);
    const response = await this.fetch(method, path, body, contentType, signal);
    const text = await response.text();
    if (!response.ok) throw new DriverApiError(response.status, text, `${method} ${path}`);
    return text ? JSON.parse(text) : {};
  }

  /** The raw response (for watches and `/metrics`). */
  async fetch(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = {
      Accept: path === "/metrics" ? "text/plain" : "application/json",
    };
    if (this.endpoint.token) headers.Authorization = `Bearer ${this.endpoint.token}`;
    if (body !== undefined) headers["Content-Type"] = contentType;
    return await fetch(`${this.endpoint.server}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      client: this.#client,
      signal,
    });
  }

  /** The apiserver's `/metrics` text. */
  async metrics(): Promise<string> {
    const response = await this.fetch(
      "GET",
      "/metrics",
      undefined,
      undefined,
      AbortSignal.timeout(120_000),
    );
    const text = await response.text();
    if (!response.ok) throw new DriverApiError(response.status, text, "GET /metrics");
    return text;
  }

  /** Releases the HTTP client. */
  close(): void {
    this.#client.close();
  }
}
