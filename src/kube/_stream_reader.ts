/**
 * Long-lived response bodies (watches) read on a thread of their own: the main-thread side of
 * `_stream_reader_worker.ts`, which says why. {@linkcode StreamReader.open} looks like `fetch`:
 * it resolves with a `Response` whose body streams the chunks the thread forwards. The fetch
 * transport (`_transport.ts`) opens its streams here, on connections of their own, with the same
 * health check as its other connections.
 *
 * The thread runs while streams are open and ends a few seconds after the last one (a Worker
 * keeps a process alive: an idle client must not).
 *
 * @module
 */

import { readerThread } from "./_stream_reader_worker.ts";

/** What a connection of the reader is made with: `Deno.createHttpClient`'s options. */
export type ReaderConnectionOptions =
  & Deno.CreateHttpClientOptions
  & Partial<Deno.TlsCertifiedKeyPem>;

/** A message to the reader's thread. */
export type ReaderRequest =
  | { op: "connect"; conn: number; options: ReaderConnectionOptions }
  | { op: "disconnect"; conn: number }
  | {
    op: "open";
    id: number;
    conn: number;
    url: string;
    headers: readonly (readonly [string, string])[];
  }
  | { op: "cancel"; id: number };

/** One error of a failure's `cause` chain, as it crosses threads. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
}

/** A message from the reader's thread about one stream. */
export type ReaderReply =
  | { id: number; kind: "head"; status: number; statusText: string; headers: [string, string][] }
  | { id: number; kind: "chunk"; bytes: Uint8Array<ArrayBuffer> }
  | { id: number; kind: "end" }
  | { id: number; kind: "error"; chain: SerializedError[] };

/** The error of a failure on the reader's thread, with its `code` and `cause` chain rebuilt. */
function rebuild(chain: readonly SerializedError[]): Error {
  let error: Error | undefined;
  for (const link of [...chain].reverse()) {
    const next: Error & { code?: string } = new Error(link.message, { cause: error });
    next.name = link.name;
    if (link.code !== undefined) next.code = link.code;
    error = next;
  }
  return error ?? new Error("the stream failed");
}

/** A stream in flight, as the main thread sees it. */
interface Pending {
  resolve(response: Response): void;
  reject(error: unknown): void;
  body?: ReadableStreamDefaultController<Uint8Array>;
  done: boolean;
}

/** The reader thread's program, as a `blob:` URL (made once per process). */
let readerUrl: string | undefined;

/** How long the thread outlives its last stream, ms: a watch re-opened at once reuses it. */
const LINGER_MS = 5_000;

/**
 * The reader thread of one transport, started on the first stream.
 *
 * @example
 * ```ts
 * import { StreamReader } from "./_stream_reader.ts";
 * const reader = new StreamReader();
 * const conn = reader.connect({});
 * const response = await reader.open(conn, {
 *   url: "https://127.0.0.1:6443/api/v1/pods?watch=true",
 *   headers: [["accept", "application/json"]],
 *   signal: new AbortController().signal,
 * });
 * console.log(response.status);
 * reader.close();
 * ```
 */
export class StreamReader {
  #worker?: Worker;
  #connections = new Map<number, ReaderConnectionOptions>();
  #pending = new Map<number, Pending>();
  #next = 0;
  #linger?: ReturnType<typeof setTimeout>;
  #closed = false;
  #broken = typeof Worker !== "function";

  /**
   * Whether streams can be read here: not where Workers are missing, nor after the thread
   * failed (its module could not be loaded, say): then streams are read on the main thread.
   */
  get usable(): boolean {
    return !this.#broken && !this.#closed;
  }

  /** A new connection of the reader's (made on its thread when a stream first needs it). */
  connect(options: ReaderConnectionOptions): number {
    const conn = ++this.#next;
    this.#connections.set(conn, options);
    this.#worker?.postMessage({ op: "connect", conn, options } satisfies ReaderRequest);
    return conn;
  }

  /** Closes a connection: the streams on it fail. */
  disconnect(conn: number): void {
    if (!this.#connections.delete(conn)) return;
    this.#worker?.postMessage({ op: "disconnect", conn } satisfies ReaderRequest);
  }

  /**
   * Sends a GET on connection `conn` and resolves with the response once its headers arrived;
   * its body streams the chunks as the reader's thread reads them. `signal` aborts it, before
   * and after the headers; cancelling the body ends it too.
   */
  open(conn: number, request: {
    url: string;
    headers: readonly (readonly [string, string])[];
    signal: AbortSignal;
  }): Promise<Response> {
    const { signal } = request;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#closed) return Promise.reject(new Error("the stream reader is closed"));
    const worker = this.#start();
    const id = ++this.#next;
    return new Promise<Response>((resolve, reject) => {
      const cancel = () => {
        const pending = this.#pending.get(id);
        if (!pending) return;
        worker.postMessage({ op: "cancel", id } satisfies ReaderRequest);
        this.#finish(id, signal.reason);
      };
      signal.addEventListener("abort", cancel, { once: true });
      this.#pending.set(id, {
        resolve,
        reject: (error) => {
          signal.removeEventListener("abort", cancel);
          reject(error);
        },
        done: false,
      });
      worker.postMessage(
        {
          op: "open",
          id,
          conn,
          url: request.url,
          headers: request.headers,
        } satisfies ReaderRequest,
      );
    });
  }

  /** Ends the thread and every stream. */
  close(): void {
    this.#closed = true;
    this.#stop(new Error("the stream reader is closed"));
  }

  #start(): Worker {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    if (this.#worker) return this.#worker;
    readerUrl ??= URL.createObjectURL(
      new Blob([`(${readerThread.toString()})();`], { type: "text/javascript" }),
    );
    const worker = new Worker(readerUrl, { type: "module" });
    worker.onmessage = (event: MessageEvent<ReaderReply>) => this.#receive(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      this.#broken = true;
      this.#stop(new Error(`the stream reader's thread failed: ${event.message}`));
    };
    for (const [conn, options] of this.#connections) {
      worker.postMessage({ op: "connect", conn, options } satisfies ReaderRequest);
    }
    this.#worker = worker;
    return worker;
  }

  #stop(reason: Error): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const id of [...this.#pending.keys()]) this.#finish(id, reason);
  }

  #receive(reply: ReaderReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    switch (reply.kind) {
      case "head": {
        const body = new ReadableStream<Uint8Array>({
          start: (controller) => {
            pending.body = controller;
          },
          cancel: () => {
            if (pending.done) return;
            this.#worker?.postMessage({ op: "cancel", id: reply.id } satisfies ReaderRequest);
            this.#finish(reply.id);
          },
        });
        const noBody = reply.status === 204 || reply.status === 304;
        pending.resolve(
          new Response(noBody ? null : body, {
            status: reply.status,
            statusText: reply.statusText,
            headers: reply.headers,
          }),
        );
        if (noBody) this.#finish(reply.id);
        break;
      }
      case "chunk":
        pending.body?.enqueue(reply.bytes);
        break;
      case "end":
        pending.body?.close();
        this.#finish(reply.id);
        break;
      case "error":
        this.#finish(reply.id, rebuild(reply.chain));
        break;
    }
  }

  /** Forgets a stream, failing it with `error` if given; lets the thread go when none is left. */
  #finish(id: number, error?: unknown): void {
    const pending = this.#pending.get(id);
    if (!pending || pending.done) return;
    pending.done = true;
    this.#pending.delete(id);
    if (error !== undefined) {
      pending.reject(error);
      try {
        pending.body?.error(error);
      } catch {
        // The body was closed or cancelled already.
      }
    }
    if (this.#pending.size === 0 && this.#worker && this.#linger === undefined) {
      const linger = setTimeout(() => this.#stop(new Error("idle")), LINGER_MS);
      Deno.unrefTimer(linger);
      this.#linger = linger;
    }
  }
}
