// Splitting watch bodies into event lines, whatever the chunking.
import assert from "node:assert/strict";
import { watchLines } from "../../src/kube/_watch_lines.ts";

function body(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === "string" ? encoder.encode(c) : c);
      controller.close();
    },
  });
}

async function lines(chunks: (string | Uint8Array)[]): Promise<string[]> {
  const out: string[] = [];
  for await (const line of watchLines(body(chunks))) out.push(line);
  return out;
}

Deno.test("watchLines() splits many events in one chunk and one event over many chunks", async () => {
  assert.deepEqual(await lines(['{"a":1}\n{"b":2}\n{"c"', ":3}\n"]), [
    '{"a":1}',
    '{"b":2}',
    '{"c":3}',
  ]);
  const big = JSON.stringify({ data: "x".repeat(100_000) });
  const pieces = big.match(/.{1,997}/gs)!;
  assert.deepEqual(await lines([...pieces, "\n"]), [big]);
});

Deno.test("watchLines() yields a last line without a newline, and skips blank lines and CRs", async () => {
  assert.deepEqual(await lines(["\n", '{"a":1}\r\n', "\n", '{"b":2}']), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(await lines([]), []);
});

Deno.test("watchLines() decodes a multi-byte character split across chunks", async () => {
  const bytes = new TextEncoder().encode('{"name":"żółw"}\n');
  const cut = bytes.indexOf(0xc5) + 1; // in the middle of "ż"
  assert.deepEqual(await lines([bytes.slice(0, cut), bytes.slice(cut)]), ['{"name":"żółw"}']);
});

Deno.test("watchLines() cancels the body when the consumer stops early", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("1\n2\n"));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const line of watchLines(stream)) {
    assert.equal(line, "1");
    break;
  }
  assert.equal(cancelled, true);
});

Deno.test("watchLines() cancels a silent body and throws the reason when its signal aborts", async () => {
  let cancelled = false;
  const silent = new ReadableStream<Uint8Array>({
    cancel() {
      cancelled = true;
    },
  });
  const abort = new AbortController();
  const reason = new Error("idle");
  setTimeout(() => abort.abort(reason), 20);
  await assert.rejects(async () => {
    for await (const _ of watchLines(silent, abort.signal)) { /* nothing comes */ }
  }, (error) => error === reason);
  assert.equal(cancelled, true);
});
