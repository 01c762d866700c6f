// The aggregation, batching and rate-limit logic of the Event poster, against a small recording
// transport: a fake is the only way to hold a write in flight or fail it on demand here. The
// shape and the write budget against a real API server: tests/integration/events_test.ts.
import assert from "node:assert/strict";
import {
  EventPoster,
  type EventPosterOptions,
  type EventTransport,
  truncateMessage,
} from "../../src/kube/events.ts";
import { FakeClock, settle } from "../support/fake_clock.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const START = Date.UTC(2030, 0, 2, 3, 4, 5, 678);

interface Call {
  method: string;
  path: string;
  body: Json;
  contentType?: string;
}

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

/** Records requests; answers at once unless told to hold or fail the next ones. */
class RecordingTransport implements EventTransport {
  readonly calls: Call[] = [];
  readonly held: Array<{ release(): void; fail(error: unknown): void }> = [];
  hold = false;
  failures: unknown[] = [];
  #created = 0;

  request<T>(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    this.calls.push({ method, path, body: options.body, contentType: options.contentType });
    const answer = method === "POST" ? { metadata: { name: `kopf-event-${++this.#created}` } } : {};
    const failure = this.failures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    if (!this.hold) return Promise.resolve(answer as T);
    return new Promise<T>((resolve, reject) => {
      this.held.push({ release: () => resolve(answer as T), fail: reject });
    });
  }

  writes(method?: string): Call[] {
    return this.calls.filter((call) => method === undefined || call.method === method);
  }
}

function setup(options: EventPosterOptions = {}) {
  const clock = new FakeClock(START);
  const transport = new RecordingTransport();
  const poster = new EventPoster(transport, { clock, ...options });
  return { clock, transport, poster };
}

function body(name = "ex1", uid = `uid-${name}`, namespace: string | undefined = "ns1") {
  return {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name, uid, namespace },
  };
}

Deno.test("EventPoster posts a Kopf-shaped core v1 Event", async () => {
  const { transport, poster } = setup({ reportingComponent: "my-op", reportingInstance: "pod-0" });
  poster.info(body(), { reason: "Created", message: "Hello." });
  await settle();

  assert.equal(transport.calls.length, 1);
  const [call] = transport.calls;
  assert.equal(call.method, "POST");
  assert.equal(call.path, "/api/v1/namespaces/ns1/events");
  assert.deepEqual(call.body, {
    apiVersion: "v1",
    kind: "Event",
    metadata: { namespace: "ns1", generateName: "kopf-event-" },
    action: "Action?",
    type: "Normal",
    reason: "Created",
    message: "Hello.",
    reportingComponent: "my-op",
    reportingInstance: "pod-0",
    source: { component: "my-op" },
    involvedObject: {
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      name: "ex1",
      uid: "uid-ex1",
      namespace: "ns1",
    },
    firstTimestamp: "2030-01-02T03:04:05Z",
    lastTimestamp: "2030-01-02T03:04:05Z",
    eventTime: "2030-01-02T03:04:05.678000Z",
    count: 1,
  });
  assert.equal(poster.stats.posted, 1);
});

Deno.test("EventPoster folds a synchronous burst of 100 identical events into one POST", async () => {
  const { transport, poster } = setup();
  for (let i = 0; i < 100; i++) poster.warn(body(), { reason: "Failing", message: "Same." });
  await settle();

  assert.equal(transport.calls.length, 1);
  assert.equal(transport.calls[0].body.count, 100);
  assert.equal(transport.calls[0].body.type, "Warning");
  assert.deepEqual(transport.calls[0].body.series, {
    count: 100,
    lastObservedTime: "2030-01-02T03:04:05.678000Z",
  });
  assert.equal(poster.stats.aggregated, 99);
});

Deno.test("EventPoster batches repeats during and after a write into one PATCH per interval", async () => {
  const { clock, transport, poster } = setup({ updateInterval: 1 });
  transport.hold = true;
  poster.info(body(), { reason: "Tick", message: "Same." });
  await settle();
  assert.equal(transport.calls.length, 1, "the first occurrence is posted at once");

  for (let i = 0; i < 99; i++) poster.info(body(), { reason: "Tick", message: "Same." });
  transport.hold = false;
  transport.held[0].release();
  await settle();
  assert.equal(transport.calls.length, 1, "no update before the interval");

  clock.advance(1000);
  await settle();
  assert.equal(transport.calls.length, 2);
  const patch = transport.calls[1];
  assert.equal(patch.method, "PATCH");
  assert.equal(patch.path, "/api/v1/namespaces/ns1/events/kopf-event-1");
  assert.equal(patch.contentType, "application/merge-patch+json");
  assert.equal(patch.body.count, 100);
  assert.equal(patch.body.series.count, 100);
  assert.equal(patch.body.lastTimestamp, "2030-01-02T03:04:05Z", "the last occurrence's time");

  clock.advance(60_000);
  await settle();
  assert.equal(transport.calls.length, 2, "nothing left to write");
});

Deno.test("EventPoster keeps writes of a steady stream to about one per interval", async () => {
  const { clock, transport, poster } = setup({ updateInterval: 1 });
  for (let i = 0; i < 30; i++) {
    poster.info(body(), { reason: "Tick", message: "Same." });
    clock.advance(100);
    await settle();
  }
  await poster.flush();
  const writes = transport.calls.length;
  assert.ok(writes >= 2 && writes <= 5, `writes: ${writes}`);
  assert.equal(transport.calls.at(-1)!.body.count, 30);
});

Deno.test("EventPoster aggregates by object, type, reason and message", async () => {
  const { transport, poster } = setup();
  poster.info(body("a"), { reason: "R", message: "m" });
  poster.info(body("b"), { reason: "R", message: "m" });
  poster.warn(body("a"), { reason: "R", message: "m" });
  poster.info(body("a"), { reason: "R2", message: "m" });
  poster.info(body("a"), { reason: "R", message: "m2" });
  poster.info(body("a"), { reason: "R", message: "m" });
  await settle();
  assert.equal(transport.writes("POST").length, 5);
  assert.equal(transport.calls[0].body.count, 2);
});

Deno.test("EventPoster posts a new Event once the aggregation window has passed", async () => {
  const { clock, transport, poster } = setup({ aggregationWindow: 600 });
  poster.info(body(), { reason: "R", message: "m" });
  await settle();
  clock.advance(599_000);
  poster.info(body(), { reason: "R", message: "m" });
  await poster.flush();
  assert.deepEqual(transport.calls.map((call) => call.method), ["POST", "PATCH"]);

  clock.advance(600_001);
  poster.info(body(), { reason: "R", message: "m" });
  await settle();
  assert.deepEqual(transport.calls.map((call) => call.method), ["POST", "PATCH", "POST"]);
  assert.equal(transport.calls[2].body.count, 1);
});

Deno.test("EventPoster drops new Events beyond an object's burst, per object", async () => {
  const { clock, transport, poster } = setup({ burst: 25, refillInterval: 300 });
  for (let i = 0; i < 30; i++) poster.info(body("spammy"), { reason: "R", message: `m${i}` });
  poster.info(body("quiet"), { reason: "R", message: "m" });
  await settle();
  assert.equal(transport.writes("POST").length, 26);
  assert.equal(poster.stats.droppedRateLimited, 5);

  clock.advance(300_000);
  poster.info(body("spammy"), { reason: "R", message: "again" });
  poster.info(body("spammy"), { reason: "R", message: "and again" });
  await settle();
  assert.equal(transport.writes("POST").length, 27, "one token per refill interval");
  assert.equal(poster.stats.droppedRateLimited, 6);
});

Deno.test("EventPoster delays an update without tokens instead of dropping it", async () => {
  const { clock, transport, poster } = setup({ burst: 3, refillInterval: 300 });
  for (let i = 0; i < 3; i++) poster.info(body(), { reason: "R", message: `m${i}` });
  await settle();
  assert.equal(transport.calls.length, 3);

  poster.info(body(), { reason: "R", message: "m0" });
  poster.info(body(), { reason: "R", message: "m0" });
  clock.advance(299_000);
  await settle();
  assert.equal(transport.calls.length, 3, "waits for a token");

  clock.advance(1_000);
  await settle();
  assert.equal(transport.calls.length, 4);
  assert.equal(transport.calls[3].method, "PATCH");
  assert.equal(transport.calls[3].body.count, 3);
  assert.equal(poster.stats.droppedRateLimited, 0);
});

Deno.test("EventPoster bounds its queue and drops the oldest pending events", async () => {
  const { transport, poster } = setup({ queueSize: 3 });
  transport.hold = true;
  poster.info(body("first"), { reason: "R", message: "m" });
  await settle(); // "first" is being written: not in the queue any more
  for (const name of ["a", "b", "c", "d", "e"]) {
    poster.info(body(name), { reason: "R", message: "m" });
  }
  poster.info(body("a"), { reason: "R", message: "m" }); // dropped already: counts as new
  assert.equal(poster.pending, 3);
  assert.equal(poster.stats.droppedQueueFull, 3);

  transport.hold = false;
  transport.held[0].release();
  await poster.flush();
  const names = transport.writes("POST").map((call) => call.body.involvedObject.name);
  assert.deepEqual(names, ["first", "d", "e", "a"]);
});

Deno.test("EventPoster sends Events about cluster-scoped objects to the default namespace", async () => {
  const { transport, poster } = setup();
  poster.info({ apiVersion: "v1", kind: "Node", metadata: { name: "n1", uid: "u" } }, {
    reason: "R",
    message: "m",
  });
  await settle();
  assert.equal(transport.calls[0].path, "/api/v1/namespaces/default/events");
  assert.equal(transport.calls[0].body.metadata.namespace, "default");
  assert.deepEqual(transport.calls[0].body.involvedObject, {
    apiVersion: "v1",
    kind: "Node",
    name: "n1",
    uid: "u",
  });
});

Deno.test("EventPoster never posts Events about Events", async () => {
  const { transport, poster } = setup();
  poster.info({ apiVersion: "v1", kind: "Event", metadata: { name: "e", namespace: "x" } }, {
    reason: "R",
  });
  poster.info({ apiVersion: "events.k8s.io/v1", kind: "Event", metadata: { name: "e" } }, {
    reason: "R",
  });
  await settle();
  assert.equal(transport.calls.length, 0);
  assert.equal(poster.stats.skipped, 2);
});

Deno.test("EventPoster.exception names the error class and appends its message", async () => {
  class Boom extends Error {}
  const { transport, poster } = setup();
  poster.exception(body(), { message: "Handler failed:", exc: new Boom("oops") });
  poster.exception(body(), { reason: "Custom", exc: new TypeError("bad type") });
  await settle();
  assert.deepEqual(
    transport.calls.map((call) => [call.body.type, call.body.reason, call.body.message]),
    [["Error", "Boom", "Handler failed: oops"], ["Error", "Custom", "bad type"]],
  );
});

Deno.test("EventPoster cuts long messages and reasons to what the API server accepts", async () => {
  const { transport, poster } = setup();
  const message = "a".repeat(600) + "b".repeat(1400);
  poster.info(body(), { reason: "R".repeat(200), message });
  await settle();
  const sent = transport.calls[0].body;
  assert.equal(sent.reason.length, 128);
  assert.equal(sent.message.length, 1024);
  assert.equal(sent.message, "a".repeat(511) + "..." + "b".repeat(510));
});

Deno.test("truncateMessage counts UTF-8 bytes and never splits a character", () => {
  const encoder = new TextEncoder();
  const accented = truncateMessage("é".repeat(1000));
  assert.ok(encoder.encode(accented).length <= 1024);
  assert.match(accented, /^é+\.\.\.é+$/);

  const emoji = truncateMessage("🙂".repeat(600));
  assert.ok(encoder.encode(emoji).length <= 1024);
  assert.match(emoji, /^(🙂)+\.\.\.(🙂)+$/u);

  assert.equal(truncateMessage("short"), "short");
  assert.equal(truncateMessage("x".repeat(1024)), "x".repeat(1024));
});

Deno.test("EventPoster logs and ignores a rejected Event, and tries again next time", async () => {
  const { transport, poster } = setup();
  transport.failures.push(new HttpError(403));
  poster.info(body(), { reason: "R", message: "m" });
  await settle();
  assert.equal(transport.calls.length, 1, "no retry of a client error");
  assert.equal(poster.stats.failed, 1);
  assert.equal(poster.pending, 0);

  poster.info(body(), { reason: "R", message: "m" });
  await settle();
  assert.equal(transport.calls.length, 2);
  assert.equal(transport.calls[1].method, "POST");
  assert.equal(transport.calls[1].body.count, 1);
});

Deno.test("EventPoster retries server and network errors a few times", async () => {
  const { clock, transport, poster } = setup({ maxAttempts: 3, retryDelay: 10 });
  transport.failures.push(new HttpError(503), new TypeError("connection reset"));
  poster.info(body(), { reason: "R", message: "m" });
  await settle();
  poster.info(body(), { reason: "R", message: "m" }); // joins the pending retry
  clock.advance(10_000);
  await settle();
  assert.equal(transport.calls.length, 2);
  clock.advance(10_000);
  await settle();
  assert.equal(transport.calls.length, 3);
  assert.equal(transport.calls[2].body.count, 2);
  assert.equal(poster.stats.posted, 1);
  assert.equal(poster.stats.failed, 0);
});

Deno.test("EventPoster re-creates an Event that expired before its update", async () => {
  const { transport, poster } = setup();
  poster.info(body(), { reason: "R", message: "m" });
  await settle();
  transport.failures.push(new HttpError(404));
  poster.info(body(), { reason: "R", message: "m" });
  await poster.flush();
  assert.deepEqual(transport.calls.map((call) => call.method), ["POST", "PATCH", "POST"]);
  assert.equal(transport.calls[2].body.count, 2);
});

Deno.test("EventPoster never throws into the caller", async () => {
  const { poster } = setup();
  const throwing: EventTransport = {
    request: () => {
      throw new Error("synchronous failure");
    },
  };
  const other = new EventPoster(throwing, { clock: new FakeClock(START), maxAttempts: 1 });
  other.info(body(), { reason: "R", message: "m" });
  poster.info(null as unknown as ReturnType<typeof body>, { reason: "R" });
  poster.event([body("x"), undefined as unknown as ReturnType<typeof body>], {
    type: "Normal",
    reason: "R",
  });
  await settle();
  assert.equal(other.stats.failed, 1);
});

Deno.test("EventPoster.flush writes pending updates at once and resolves when done", async () => {
  const { transport, poster } = setup({ updateInterval: 60 });
  poster.info(body(), { reason: "R", message: "m" });
  await settle();
  poster.info(body(), { reason: "R", message: "m" });
  assert.equal(await poster.flush({ timeout: 5 }), true);
  assert.deepEqual(transport.calls.map((call) => call.method), ["POST", "PATCH"]);
  assert.equal(await poster.flush({ timeout: 5 }), true, "nothing to do");
});

Deno.test("EventPoster.flush gives up after its timeout, and close stops everything", async () => {
  const { clock, transport, poster } = setup();
  transport.hold = true;
  poster.info(body(), { reason: "R", message: "m" });
  const flushed = poster.flush({ timeout: 5 });
  await settle();
  clock.advance(5000);
  assert.equal(await flushed, false);

  const closed = poster.close({ timeout: 1 });
  await settle();
  clock.advance(1000);
  assert.equal(await closed, false);
  transport.held[0].fail(new DOMException("aborted", "AbortError"));
  await settle();
  poster.info(body(), { reason: "R", message: "later" });
  await settle();
  assert.equal(transport.calls.length, 1);
  assert.equal(clock.timers.size, 0);
});
