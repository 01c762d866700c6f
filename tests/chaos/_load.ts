/**
 * The suite's own writes: creating, updating and deleting the objects of a scenario straight on
 * the real API server (never through the operator's client or a proxy), retrying through the
 * outages the scenario causes, and counting the requests that succeeded.
 *
 * Updates are GET + PUT (retried on 409 Conflict), so that every PATCH the API server counts on
 * the resource is the operator's.
 *
 * @module
 */
import type { Obj, TestCluster } from "../support/cluster.ts";
import { sleep } from "../support/wait.ts";

/** A request that the API server answered with an error status. */
export class ApiStatusError extends Error {
  constructor(readonly status: number, readonly body: string, what: string) {
    super(`${what}: HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/** Statuses that an outage or a restart produces: worth retrying. */
const TRANSIENT = new Set([429, 500, 502, 503, 504]);

/** Writes to one collection of the plane, through outages. */
export class LoadDriver {
  /** Requests that succeeded, by kind. */
  readonly writes: { create: number; update: number; delete: number } = {
    create: 0,
    update: 0,
    delete: 0,
  };
  /** Attempts that failed and were retried (outages, conflicts). */
  retries = 0;
  readonly #c: TestCluster;
  readonly #path: string;
  readonly #client: Deno.HttpClient;
  readonly #patience: number;

  /**
   * `collectionPath` like `/apis/kopf.dev/v1/namespaces/ns/kopfexamples`; a request is retried
   * for up to `patienceSeconds`.
   */
  constructor(c: TestCluster, collectionPath: string, patienceSeconds = 180) {
    this.#c = c;
    this.#path = collectionPath;
    this.#client = Deno.createHttpClient({ caCerts: [c.caPem] });
    this.#patience = patienceSeconds;
  }

  /** Closes the HTTP client. */
  close(): void {
    this.#client.close();
  }

  /** One request with a 10-second limit; parsed JSON back, or an {@linkcode ApiStatusError}. */
  async request(method: string, path: string, body?: unknown): Promise<Obj> {
    const response = await fetch(`${this.#c.server}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.#c.token}`,
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      client: this.#client,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new ApiStatusError(response.status, text, `${method} ${path}`);
    return text ? JSON.parse(text) : {};
  }

  /** Retries `attempt` through transient failures; other statuses go to `onStatus` first. */
  async #retrying<T>(
    what: string,
    attempt: () => Promise<T>,
    onStatus: (error: ApiStatusError) => Promise<T | undefined> = () => Promise.resolve(undefined),
  ): Promise<T> {
    const deadline = Date.now() + this.#patience * 1000;
    while (true) {
      let error: unknown;
      try {
        return await attempt();
      } catch (caught) {
        error = caught;
        if (caught instanceof ApiStatusError && !TRANSIENT.has(caught.status)) {
          const settled = await onStatus(caught);
          if (settled !== undefined) return settled;
          if (caught.status !== 409) throw caught;
        }
      }
      if (Date.now() > deadline) {
        throw new Error(`${what}: gave up after ${this.#patience}s`, { cause: error });
      }
      this.retries++;
      await sleep(250);
    }
  }

  /** Lists the collection (through outages). */
  async list(): Promise<Obj[]> {
    return (await this.#retrying("list", () => this.request("GET", this.#path))).items;
  }

  /** Creates an object; an earlier attempt that did land (409 on a retry) counts as created. */
  async create(name: string, spec: Obj): Promise<Obj> {
    const body = { apiVersion: "kopf.dev/v1", kind: "KopfExample", metadata: { name }, spec };
    let tried = false;
    const created = await this.#retrying(`create ${name}`, () => {
      const first = !tried;
      tried = true;
      return this.request("POST", this.#path, body).catch(async (error) => {
        // An attempt that timed out may have been applied: a 409 then means it was.
        if (!first && error instanceof ApiStatusError && error.status === 409) {
          return await this.request("GET", `${this.#path}/${name}`);
        }
        throw error;
      });
    });
    this.writes.create++;
    return created;
  }

  /** Sets `spec.v` (GET + PUT, retried on conflicts). */
  async update(name: string, v: number): Promise<Obj> {
    const updated = await this.#retrying(`update ${name}`, async () => {
      const body = await this.request("GET", `${this.#path}/${name}`);
      body.spec = { ...body.spec, v };
      return await this.request("PUT", `${this.#path}/${name}`, body);
    });
    this.writes.update++;
    return updated;
  }

  /** Deletes an object; a 404 on a retry means an earlier attempt did. */
  async delete(name: string): Promise<void> {
    let attempts = 0;
    await this.#retrying(`delete ${name}`, () => {
      attempts++;
      return this.request("DELETE", `${this.#path}/${name}`);
    }, (error) => Promise.resolve(error.status === 404 && attempts > 1 ? {} : undefined));
    this.writes.delete++;
  }
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index], index);
    }
  });
  await Promise.all(workers);
}
