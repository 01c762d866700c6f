/**
 * Splits a watch response body into lines, one JSON watch event per line.
 *
 * The API server writes one event per line, but the transport cuts the byte stream wherever it
 * likes: an event may span many chunks (a large object) and one chunk may carry many events (a
 * burst). Pieces of an unfinished line are kept in an array and joined once, so a large object
 * arriving in many small chunks costs linear time, not quadratic.
 *
 * @module
 */

/**
 * Yields the non-empty lines of a UTF-8 byte stream, without their line endings.
 *
 * A trailing line without a final newline is yielded when the stream ends: a server that closes
 * the stream right after an event has still delivered that event.
 *
 * When `signal` aborts, the body is cancelled and the generator throws the abort reason. This
 * does not rely on the `fetch` having been given the same signal: Deno may garbage-collect a
 * signal made by `AbortSignal.any()` while its response body is still streaming, after which
 * aborting the source no longer reaches the `fetch` and a silent stream would hang until the
 * server closes it. Cancelling the body from a listener on a strongly held signal always works.
 *
 * @example
 * ```ts
 * import { watchLines } from "./_watch_lines.ts";
 * const body = new Response('{"type":"ADDED"}\n{"type":"DELETED"}\n').body!;
 * for await (const line of watchLines(body)) JSON.parse(line);
 * ```
 */
export async function* watchLines(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
  signal?.throwIfAborted();
  signal?.addEventListener("abort", onAbort, { once: true });
  let pieces: string[] = [];
  try {
    while (true) {
      const { value, done } = await reader.read();
      signal?.throwIfAborted();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      let start = 0;
      let newline = text.indexOf("\n", start);
      while (newline !== -1) {
        let line = text.slice(start, newline);
        if (pieces.length > 0) {
          pieces.push(line);
          line = pieces.join("");
          pieces = [];
        }
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line.trim() !== "") yield line;
        start = newline + 1;
        newline = text.indexOf("\n", start);
      }
      if (start < text.length) pieces.push(text.slice(start));
    }
    const rest = pieces.join("") + decoder.decode();
    if (rest.trim() !== "") yield rest;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Cancelling (rather than only releasing) tells the transport to drop the connection when the
    // consumer stops early, e.g. on an idle timeout or an aborted watch.
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
