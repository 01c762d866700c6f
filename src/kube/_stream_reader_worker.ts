/**
 * The watch reader's thread (a Web Worker; `_stream_reader.ts` starts it and talks to it). It
 * opens the streams it is told to on connections of its own and forwards their bodies to the
 * main thread as they arrive: the chunks of one stream read in one turn of its event loop go as
 * one message, transferred, not copied.
 *
 * Why a thread: Deno's HTTP client runs on the event loop of the thread that made the request.
 * While an operator's main thread is busy (a burst of handlers, a long garbage collection), it
 * does not read its watch streams; the API server's buffer for the watcher (as few as 10 events)
 * fills, and the server closes the watch as an unresponsive consumer. This thread does nothing
 * else, so it reads whatever the main thread is doing — client-go's reader goroutine. Memory is
 * not bounded here but on the main thread, where the events are decoded and applied in order.
 *
 * Nothing here logs: errors go back to the main thread, which says what they mean.
 *
 * The thread runs {@linkcode readerThread}'s source, from a `blob:` URL: it imports nothing, so
 * it runs the same from a source tree, a JSR package, a bundle and a compiled executable, and
 * needs no read permission.
 *
 * @module
 */

import type { ReaderReply, ReaderRequest, SerializedError } from "./_stream_reader.ts";

/**
 * The reader thread's whole program (run as `(readerThread)()` in a Worker). Self-contained: no
 * imports, no names from outside.
 */
export function readerThread(): void {
  interface Scope {
    onmessage: ((event: MessageEvent<ReaderRequest>) => void) | null;
    postMessage(message: ReaderReply, transfer?: Transferable[]): void;
  }

  const scope = globalThis as unknown as Scope;
  const clients = new Map<number, Deno.HttpClient>();
  /** Streams and probes in flight: what aborts them, and the connection they are on. */
  const inFlight = new Map<number, { abort: AbortController; conn: number }>();

  function serialize(error: unknown): SerializedError[] {
    const chain: SerializedError[] = [];
    for (let e: unknown = error, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
      const code = (e as { code?: unknown }).code;
      chain.push({
        name: e instanceof Error ? e.name : "Error",
        message: e instanceof Error ? e.message : String(e),
        code: typeof code === "string" ? code : undefined,
      });
    }
    return chain;
  }

  async function open(request: Extract<ReaderRequest, { op: "open" }>): Promise<void> {
    const { id, conn } = request;
    const client = clients.get(conn);
    const abort = new AbortController();
    const batch = chunkBatch(id);
    inFlight.set(id, { abort, conn });
    try {
      if (!client) throw new Error("the connection was closed");
      const response = await fetch(request.url, {
        headers: request.headers as [string, string][],
        client,
        signal: abort.signal,
        redirect: "manual",
      });
      scope.postMessage({
        id,
        kind: "head",
        status: response.status,
        statusText: response.statusText,
        headers: [...response.headers],
      });
      if (!response.body) {
        scope.postMessage({ id, kind: "end" });
        return;
      }
      const reader = response.body.getReader();
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          batch.add(value);
        }
      } finally {
        batch.flush(); // what arrived before the end or the failure goes first
      }
      scope.postMessage({ id, kind: "end" });
    } catch (error) {
      scope.postMessage({ id, kind: "error", chain: serialize(error) });
    } finally {
      inFlight.delete(id);
    }
  }

  /**
   * The chunks of one stream read since the last message: sent as one message at the end of the
   * event loop's turn (or at 1 MiB), so a burst that arrives faster than the loop turns costs the
   * main thread one message per turn, not one per watch event.
   */
  function chunkBatch(id: number) {
    let parts: Uint8Array[] = [];
    let size = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      clearTimeout(timer);
      timer = undefined;
      if (size === 0) return;
      let bytes: Uint8Array<ArrayBuffer>;
      const [first] = parts;
      if (
        parts.length === 1 && first.byteOffset === 0 && first.byteLength === first.buffer.byteLength
      ) {
        bytes = first as Uint8Array<ArrayBuffer>; // a buffer of its own is handed over as it is
      } else {
        bytes = new Uint8Array(size);
        let at = 0;
        for (const part of parts) {
          bytes.set(part, at);
          at += part.byteLength;
        }
      }
      parts = [];
      size = 0;
      scope.postMessage({ id, kind: "chunk", bytes }, [bytes.buffer]);
    };
    return {
      add(chunk: Uint8Array): void {
        parts.push(chunk);
        size += chunk.byteLength;
        if (size >= 1 << 20) flush();
        else timer ??= setTimeout(flush, 0);
      },
      flush,
    };
  }

  scope.onmessage = ({ data: request }) => {
    switch (request.op) {
      case "connect":
        try {
          clients.set(request.conn, Deno.createHttpClient(request.options));
        } catch {
          // The main thread made a client of the same options first: this cannot fail alone. If
          // it does, the streams on it fail with "the connection was closed".
        }
        break;
      case "disconnect":
        // Closing a client does not end the requests under way on it: they are aborted.
        for (const { abort, conn } of inFlight.values()) {
          if (conn === request.conn) abort.abort(new Error("the connection was closed"));
        }
        clients.get(request.conn)?.close();
        clients.delete(request.conn);
        break;
      case "open":
        void open(request);
        break;
      case "cancel":
        inFlight.get(request.id)?.abort.abort(new Error("cancelled by the reader"));
        break;
    }
  };
}
