/**
 * A scripted {@linkcode WatchTransport} for unit tests of the watch loop's pure logic: every
 * LIST and WATCH request waits until the test answers it, so the order of events is decided by
 * the test, not by timing. Behaviour against a real API server is covered by the integration
 * tests; this only drives the state machine.
 *
 * @module
 */
import type { WatchQuery, WatchTransport } from "../../src/kube/watch.ts";

/** An HTTP error as the real client throws it: numeric `status`, optional `reason`. */
export class StatusError extends Error {
  constructor(
    readonly status: number,
    readonly reason = "",
    readonly retryAfterSeconds?: number,
  ) {
    super(`HTTP ${status} ${reason}`);
  }
}

/** A LIST request waiting for the test's answer. */
export interface PendingList {
  path: string;
  query: WatchQuery;
  signal?: AbortSignal;
  respond(page: unknown): void;
  fail(error: unknown): void;
}

/** A WATCH request waiting for the test to open (or fail) it, then to feed its body. */
export interface PendingWatch {
  path: string;
  query: WatchQuery;
  signal?: AbortSignal;
  /** Answers 200 with a streaming body. */
  open(): void;
  /** Answers with an error instead. */
  fail(error: unknown): void;
  /** Sends one event line (opens the response first if needed). */
  send(event: unknown): void;
  /** Sends raw text. */
  sendRaw(text: string): void;
  /** Ends the body normally. */
  end(): void;
  /** Breaks the body with an error. */
  break(error?: unknown): void;
  /** Whether the client dropped the request (abort or cancel). */
  readonly dropped: boolean;
  /** Resolves when the client drops the request. */
  whenDropped: Promise<void>;
}

class Queue<T> {
  #items: T[] = [];
  #waiters: ((item: T) => void)[] = [];
  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }
  next(timeoutMs: number, what: string): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`no ${what} request within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (item: T) => {
        clearTimeout(timer);
        resolve(item);
      };
      this.#waiters.push(waiter);
    });
  }
  get length(): number {
    return this.#items.length;
  }
}

/** The scripted transport. */
export class ScriptedTransport implements WatchTransport {
  /** Every request made, in order. */
  readonly calls: { kind: "list" | "watch"; path: string; query: WatchQuery }[] = [];
  #lists = new Queue<PendingList>();
  #watches = new Queue<PendingWatch>();

  request<T>(
    method: string,
    path: string,
    options: { query?: WatchQuery; signal?: AbortSignal } = {},
  ): Promise<T> {
    if (method !== "GET") throw new Error(`unexpected ${method}`);
    const query = options.query ?? {};
    this.calls.push({ kind: "list", path, query });
    return new Promise<T>((resolve, reject) => {
      options.signal?.addEventListener("abort", () => reject(options.signal!.reason), {
        once: true,
      });
      this.#lists.push({
        path,
        query,
        signal: options.signal,
        respond: (page) => resolve(structuredClone(page) as T),
        fail: reject,
      });
    });
  }

  stream(
    path: string,
    options: { query?: WatchQuery; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const query = options.query ?? {};
    this.calls.push({ kind: "watch", path, query });
    const encoder = new TextEncoder();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let dropped = false;
    let markDropped!: () => void;
    const whenDropped = new Promise<void>((resolve) => markDropped = resolve);
    const drop = () => {
      if (!dropped) {
        dropped = true;
        markDropped();
      }
    };
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      cancel: drop,
    });
    let settle!: { resolve: (r: Response) => void; reject: (e: unknown) => void };
    const response = new Promise<Response>((resolve, reject) => settle = { resolve, reject });
    let opened = false;
    const open = () => {
      if (!opened) settle.resolve(new Response(body));
      opened = true;
    };
    const safe = (fn: () => void) => {
      try {
        fn();
      } catch { /* the client already dropped the stream */ }
    };
    options.signal?.addEventListener("abort", () => {
      drop();
      settle.reject(options.signal!.reason);
      safe(() => controller.error(options.signal!.reason));
    }, { once: true });
    this.#watches.push({
      path,
      query,
      signal: options.signal,
      open,
      fail: (error) => settle.reject(error),
      send: (event) => {
        open();
        safe(() => controller.enqueue(encoder.encode(JSON.stringify(event) + "\n")));
      },
      sendRaw: (text) => {
        open();
        safe(() => controller.enqueue(encoder.encode(text)));
      },
      end: () => {
        open();
        safe(() => controller.close());
      },
      break: (error = new TypeError("connection reset")) => {
        open();
        safe(() => controller.error(error));
      },
      get dropped() {
        return dropped;
      },
      whenDropped,
    });
    return response;
  }

  /** The next LIST request (waits for it). */
  nextList(timeoutMs = 5000): Promise<PendingList> {
    return this.#lists.next(timeoutMs, "LIST");
  }

  /** The next WATCH request (waits for it). */
  nextWatch(timeoutMs = 5000): Promise<PendingWatch> {
    return this.#watches.next(timeoutMs, "WATCH");
  }

  /** Requests made but not yet taken by the test. */
  get waiting(): { lists: number; watches: number } {
    return { lists: this.#lists.length, watches: this.#watches.length };
  }
}

/** A small object of a made-up namespaced resource. */
export function obj(name: string, rv: string, extra: Record<string, unknown> = {}): {
  apiVersion: string;
  kind: string;
  metadata: { namespace: string; name: string; resourceVersion: string };
  [k: string]: unknown;
} {
  return {
    apiVersion: "example.com/v1",
    kind: "Thing",
    metadata: { namespace: "ns", name, resourceVersion: rv },
    ...extra,
  };
}

/** The resource used by the unit tests. */
export const THINGS = {
  group: "example.com",
  version: "v1",
  plural: "things",
  kind: "Thing",
  singular: "thing",
  shortcuts: [],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["list", "watch"],
  subresources: [],
} as const;
