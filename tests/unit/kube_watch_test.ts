// The list/watch state machine, driven by a scripted transport: which requests it makes, with
// which parameters, and what it yields for each server answer. Real-server behaviour is covered by
// tests/integration/watch_*_test.ts.
import assert from "node:assert/strict";
import {
  listAndWatch,
  type ListAndWatchOptions,
  type ListWatch,
  type WatchEvent,
} from "../../src/kube/watch.ts";
import { obj, ScriptedTransport, StatusError, THINGS } from "../support/scripted_transport.ts";

class Collector {
  readonly events: WatchEvent[] = [];
  done = false;
  #waiters: (() => void)[] = [];
  constructor(watch: ListWatch) {
    (async () => {
      for await (const event of watch) {
        this.events.push(event);
        for (const wake of this.#waiters.splice(0)) wake();
      }
      this.done = true;
      for (const wake of this.#waiters.splice(0)) wake();
    })();
  }
  /** Waits until at least `n` events were collected; returns the events from index `from`. */
  async until(n: number, from = 0, timeoutMs = 5000): Promise<WatchEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < n) {
      if (this.done) throw new Error(`the watch ended after ${this.events.length} events`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`only ${this.events.length} of ${n} events: ${this.summary()}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.events.slice(from);
  }
  summary(from = 0): string {
    return this.events.slice(from).map((e) =>
      e.type === "SYNCED"
        ? `SYNCED${e.relist ? "(relist)" : ""}`
        : e.type === "MISSING"
        ? "MISSING"
        : `${e.type} ${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}${
          e.initial ? " initial" : ""
        }${e.finalStateUnknown ? " unknown" : ""}`
    ).join(", ");
  }
}

function start(options: ListAndWatchOptions = {}) {
  const transport = new ScriptedTransport();
  const abort = new AbortController();
  const watch = listAndWatch(transport, THINGS, {
    namespace: "ns",
    signal: abort.signal,
    backoff: { initialMs: 1, maxMs: 2 },
    ...options,
  });
  const events = new Collector(watch);
  return { transport, abort, watch, events };
}

Deno.test("listAndWatch() lists page by page, then watches from the list's resourceVersion", async () => {
  const { transport, abort, watch, events } = start();
  const page1 = await transport.nextList();
  assert.equal(page1.path, "/apis/example.com/v1/namespaces/ns/things");
  assert.equal(page1.query.limit, 500);
  assert.equal(page1.query.continue, undefined);
  assert.equal(page1.query.resourceVersion, undefined, "the first listing is a consistent read");
  page1.respond({ metadata: { resourceVersion: "", continue: "tok" }, items: [obj("a", "5")] });
  const page2 = await transport.nextList();
  assert.equal(page2.query.continue, "tok");
  // List items carry no apiVersion/kind: the loop fills them in.
  page2.respond({
    metadata: { resourceVersion: "r10" },
    items: [{ metadata: { namespace: "ns", name: "b", resourceVersion: "6" } }],
  });
  const listed = await events.until(3);
  assert.equal(events.summary(), "ADDED a@5 initial, ADDED b@6 initial, SYNCED");
  assert.equal((listed[1] as { object: { kind: string } }).object.kind, "Thing");
  assert.deepEqual(listed[2], { type: "SYNCED", relist: false, resourceVersion: "r10" });
  assert.equal(watch.stats.synced, true);

  const w = await transport.nextWatch();
  assert.equal(w.query.watch, true);
  assert.equal(w.query.allowWatchBookmarks, true);
  assert.equal(w.query.resourceVersion, "r10");
  const timeout = w.query.timeoutSeconds as number;
  assert.ok(timeout >= 300 && timeout <= 600, `timeoutSeconds=${timeout}`);
  w.send({ type: "MODIFIED", object: obj("a", "11") });
  w.send({ type: "DELETED", object: obj("b", "12") });
  w.send({ type: "ADDED", object: obj("c", "13") });
  await events.until(6);
  assert.equal(events.summary(3), "MODIFIED a@11, DELETED b@12, ADDED c@13");
  abort.abort();
  await w.whenDropped;
  assert.deepEqual(
    { lists: watch.stats.lists, pages: watch.stats.listPages, relists: watch.stats.relists },
    { lists: 1, pages: 2, relists: 0 },
  );
});

Deno.test("listAndWatch() resumes from the last event or bookmark after a stream ends, without listing", async () => {
  const { transport, abort, watch, events } = start();
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w1 = await transport.nextWatch();
  w1.send({ type: "ADDED", object: obj("a", "r2") });
  w1.send({ type: "BOOKMARK", object: { kind: "Thing", metadata: { resourceVersion: "r5" } } });
  await events.until(2);
  w1.end();
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.resourceVersion, "r5", "a bookmark moves the resume point");
  w2.send({ type: "MODIFIED", object: obj("a", "r7") });
  await events.until(3);
  w2.break();
  const w3 = await transport.nextWatch();
  assert.equal(w3.query.resourceVersion, "r7", "a broken stream resumes from the last event");
  abort.abort();
  assert.equal(watch.stats.lists, 1);
  assert.equal(watch.stats.watches, 3);
  assert.equal(watch.stats.reconnects, 2);
  assert.equal(watch.stats.bookmarks, 1);
  assert.equal(transport.calls.filter((c) => c.kind === "list").length, 1);
});

Deno.test("listAndWatch() re-lists on a 410 ERROR event and diffs the new listing against what it announced", async () => {
  const { transport, abort, watch, events } = start();
  (await transport.nextList()).respond({
    metadata: { resourceVersion: "r3" },
    items: [obj("same", "1"), obj("changed", "2"), obj("gone", "3")],
  });
  const w1 = await transport.nextWatch();
  await events.until(4);
  w1.send({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } });
  const relist = await transport.nextList();
  assert.equal(relist.query.resourceVersion, undefined, "a re-list is a consistent read");
  relist.respond({
    metadata: { resourceVersion: "r9" },
    items: [obj("same", "1"), obj("changed", "8"), obj("new", "7")],
  });
  await events.until(8);
  assert.equal(
    events.summary(4),
    "MODIFIED changed@8, ADDED new@7, DELETED gone@3 unknown, SYNCED(relist)",
  );
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.resourceVersion, "r9");
  abort.abort();
  assert.equal(watch.stats.relists, 1);
  assert.equal(watch.stats.lists, 2);
});

Deno.test("listAndWatch() re-lists on an HTTP 410 answer to the watch request", async () => {
  const { transport, abort, watch, events } = start();
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  (await transport.nextWatch()).fail(new StatusError(410, "Gone"));
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r2" }, items: [] });
  await events.until(2);
  assert.equal(events.summary(), "SYNCED, SYNCED(relist)");
  assert.equal((await transport.nextWatch()).query.resourceVersion, "r2");
  abort.abort();
  assert.equal(watch.stats.relists, 1);
});

Deno.test("listAndWatch() restarts a listing whose continue token expired, announcing nothing twice", async () => {
  const { transport, abort, events } = start();
  (await transport.nextList()).respond({
    metadata: { continue: "old" },
    items: [obj("a", "1"), obj("b", "2")],
  });
  const stale = await transport.nextList();
  assert.equal(stale.query.continue, "old");
  stale.fail(new StatusError(410, "Expired"));
  const fresh = await transport.nextList();
  assert.equal(fresh.query.continue, undefined);
  fresh.respond({ metadata: { resourceVersion: "r5" }, items: [obj("b", "2"), obj("c", "4")] });
  await events.until(5);
  assert.equal(
    events.summary(),
    "ADDED a@1 initial, ADDED b@2 initial, ADDED c@4 initial, DELETED a@1 unknown, SYNCED",
  );
  abort.abort();
});

Deno.test("listAndWatch() backs off and re-watches from the same resourceVersion on other errors", async () => {
  const { transport, abort, watch, events } = start();
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w1 = await transport.nextWatch();
  w1.send({ type: "ERROR", object: { kind: "Status", code: 500, message: "boom" } });
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.resourceVersion, "r1");
  w2.fail(new StatusError(503, "ServiceUnavailable"));
  const w3 = await transport.nextWatch();
  w3.fail(new TypeError("connection refused"));
  const w4 = await transport.nextWatch();
  assert.equal(w4.query.resourceVersion, "r1");
  w4.sendRaw("this is not json\n");
  const w5 = await transport.nextWatch();
  assert.equal(w5.query.resourceVersion, "r1");
  await events.until(1);
  abort.abort();
  assert.equal(watch.stats.lists, 1, "no re-list for errors other than 410");
  assert.equal(watch.stats.errors, 4);
  assert.equal(watch.stats.healthy, false);
});

Deno.test("listAndWatch() waits at least Retry-After before retrying a 429", async () => {
  const { transport, abort } = start();
  (await transport.nextList()).fail(new StatusError(429, "TooManyRequests", 0.3));
  const began = Date.now();
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  assert.ok(Date.now() - began >= 250, `retried after ${Date.now() - began} ms`);
  abort.abort();
});

Deno.test("listAndWatch() drops a silent stream after the idle timeout and resumes", async () => {
  const { transport, abort, watch } = start({ idleTimeoutMs: 100 });
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w1 = await transport.nextWatch();
  w1.send({ type: "BOOKMARK", object: { metadata: { resourceVersion: "r2" } } });
  await w1.whenDropped;
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.resourceVersion, "r2");
  abort.abort();
  assert.equal(watch.stats.lists, 1);
});

Deno.test("listAndWatch() counts a stream that ends at once with nothing as a failure", async () => {
  const { transport, abort, watch } = start({ backoff: { initialMs: 200, maxMs: 200 } });
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  (await transport.nextWatch()).end();
  await transport.nextWatch();
  assert.equal(watch.stats.errors, 1);
  abort.abort();
});

Deno.test("listAndWatch() ignores replayed states and normalises event types against what it announced", async () => {
  const { transport, abort, events } = start();
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w = await transport.nextWatch();
  w.send({ type: "MODIFIED", object: obj("a", "x2") }); // unknown key: it is new to the consumer
  w.send({ type: "MODIFIED", object: obj("a", "x2") }); // same resourceVersion: not a change
  w.send({ type: "ADDED", object: obj("a", "x3") }); // known key: a modification
  w.send({ type: "DELETED", object: obj("zzz", "x4") }); // never announced: nothing to delete
  w.send({ type: "DELETED", object: obj("a", "x5") });
  await events.until(4);
  assert.equal(events.summary(1), "ADDED a@x2, MODIFIED a@x3, DELETED a@x5");
  w.end();
  assert.equal((await transport.nextWatch()).query.resourceVersion, "x5");
  abort.abort();
});

Deno.test("listAndWatch() does a streaming list when asked, then continues on the same stream", async () => {
  const { transport, abort, watch, events } = start({ initialSync: "stream" });
  const w1 = await transport.nextWatch();
  assert.equal(w1.query.sendInitialEvents, true);
  assert.equal(w1.query.resourceVersionMatch, "NotOlderThan");
  assert.equal(w1.query.allowWatchBookmarks, true);
  assert.equal(w1.query.resourceVersion, undefined);
  w1.send({ type: "ADDED", object: obj("b", "9") });
  w1.send({ type: "ADDED", object: obj("a", "4") }); // initial events come in no RV order
  w1.send({
    type: "BOOKMARK",
    object: {
      metadata: { resourceVersion: "r10", annotations: { "k8s.io/initial-events-end": "true" } },
    },
  });
  w1.send({ type: "MODIFIED", object: obj("a", "r11") });
  await events.until(4);
  assert.equal(events.summary(), "ADDED b@9 initial, ADDED a@4 initial, SYNCED, MODIFIED a@r11");
  w1.end();
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.sendInitialEvents, undefined);
  assert.equal(w2.query.resourceVersion, "r11");
  abort.abort();
  assert.equal(watch.stats.lists, 1);
  assert.equal(transport.calls.filter((c) => c.kind === "list").length, 0);
});

Deno.test("listAndWatch() re-lists by streaming after a 410 and still reports what vanished", async () => {
  const { transport, abort, events } = start({ initialSync: "stream" });
  const w1 = await transport.nextWatch();
  w1.send({ type: "ADDED", object: obj("a", "1") });
  w1.send({ type: "ADDED", object: obj("b", "2") });
  w1.send({
    type: "BOOKMARK",
    object: {
      metadata: { resourceVersion: "r3", annotations: { "k8s.io/initial-events-end": "true" } },
    },
  });
  w1.send({ type: "ERROR", object: { code: 410 } });
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.sendInitialEvents, true);
  w2.send({ type: "ADDED", object: obj("b", "2") });
  w2.send({
    type: "BOOKMARK",
    object: {
      metadata: { resourceVersion: "r8", annotations: { "k8s.io/initial-events-end": "true" } },
    },
  });
  await events.until(5);
  assert.equal(events.summary(3), "DELETED a@1 unknown, SYNCED(relist)");
  abort.abort();
});

Deno.test("listAndWatch() falls back to paginated lists when the server ignores streaming lists", async () => {
  const { transport, abort, events } = start({ initialSync: "stream" });
  const w1 = await transport.nextWatch();
  w1.send({ type: "BOOKMARK", object: { metadata: { resourceVersion: "r3" } } });
  const list = await transport.nextList();
  list.respond({ metadata: { resourceVersion: "r4" }, items: [obj("a", "1")] });
  await events.until(2);
  assert.equal(events.summary(), "ADDED a@1 initial, SYNCED");
  assert.equal((await transport.nextWatch()).query.resourceVersion, "r4");
  abort.abort();
});

Deno.test("listAndWatch() passes selectors to the server and ends when its signal aborts", async () => {
  const { transport, abort, events } = start({ labelSelector: "app=web", fieldSelector: "x=y" });
  const list = await transport.nextList();
  assert.equal(list.query.labelSelector, "app=web");
  assert.equal(list.query.fieldSelector, "x=y");
  list.respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w = await transport.nextWatch();
  assert.equal(w.query.labelSelector, "app=web");
  abort.abort();
  await w.whenDropped;
  await events.until(1);
  for (let i = 0; i < 50 && !events.done; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(events.done, true);
});

Deno.test("listAndWatch() keeps retrying a failing listing with growing, capped delays", async () => {
  const { transport, abort, watch } = start({ backoff: { initialMs: 1, maxMs: 8 } });
  for (let i = 0; i < 6; i++) (await transport.nextList()).fail(new StatusError(503));
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  await transport.nextWatch();
  assert.equal(watch.stats.errors, 6);
  assert.equal(watch.stats.synced, true);
  abort.abort();
});
