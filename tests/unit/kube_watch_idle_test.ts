// Silence on a watch, by transport: with a transport that checks its connections' health, a
// silent watch is a quiet resource (kept, nothing logged, until it outlives its own server-side
// timeout: then the server failed to end it, and that is a WARNING); an explicit idle timer re-opens it at
// INFO, not WARNING; a watch failed by a dead connection re-opens at INFO (the transport has
// already warned once). Driven by a scripted transport; the real server's side is in
// tests/integration/watch_connection_test.ts.
import assert from "node:assert/strict";
import { configure, type LogRecord } from "@logtape/logtape";
import { ConnectionError } from "../../src/kube/errors.ts";
import { listAndWatch, type ListAndWatchOptions } from "../../src/kube/watch.ts";
import { ScriptedTransport, THINGS } from "../support/scripted_transport.ts";

const records: { level: string; message: string }[] = [];
await configure({
  reset: true,
  sinks: {
    memory: (record: LogRecord) =>
      void records.push({
        level: record.level,
        message: record.message.map((p, i) => i % 2 ? String(p) : p).join(""),
      }),
  },
  loggers: [
    { category: ["kopf"], sinks: ["memory"], lowestLevel: "info" },
    { category: ["logtape", "meta"], lowestLevel: "error" },
  ],
});

function start(checksConnections: boolean, options: ListAndWatchOptions = {}) {
  const transport = Object.assign(new ScriptedTransport(), { checksConnections });
  const abort = new AbortController();
  const watch = listAndWatch(transport, THINGS, {
    signal: abort.signal,
    backoff: { initialMs: 10, maxMs: 10 },
    random: () => 0.5,
    ...options,
  });
  const iterating = (async () => {
    for await (const _ of watch);
  })();
  return {
    transport,
    watch,
    async stop() {
      abort.abort();
      await iterating;
    },
  };
}

Deno.test("watch idle: over a health-checked transport a silent watch stays open until past its server-side timeout", async () => {
  records.length = 0;
  // timeoutSeconds 1 and a margin of 0.5 s (30 s by default): kept until 1.5 s, then re-opened
  // with a WARNING, since the server should have ended it.
  const { transport, watch, stop } = start(true, {
    serverTimeoutSeconds: [1, 1],
    overdueMarginMs: 500,
  });
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w1 = await transport.nextWatch();
  const opened = Date.now();
  w1.open();
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(w1.dropped, false, "silent, but kept");
  assert.equal(records.length, 0, "nothing logged");
  await w1.whenDropped;
  const droppedAfter = Date.now() - opened;
  assert.ok(droppedAfter >= 1400 && droppedAfter < 2500, `dropped after ${droppedAfter} ms`);
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.resourceVersion, "r1");
  assert.equal(watch.stats.watches, 2);
  assert.equal(records.length, 1);
  assert.equal(records[0].level, "warning");
  assert.match(
    records[0].message,
    /^Watch of things\.v1\.example\.com in \* failed: no event or bookmark for 1\.[5-9] s, 0\.[5-9] s past its server-side timeout of 1 s; retrying in 5 ms\.$/,
  );
  await stop();
});

Deno.test("watch idle: an explicit idle timer re-opens a silent watch with an INFO line, not a WARNING", async () => {
  records.length = 0;
  const { transport, watch, stop } = start(true, { idleTimeoutMs: 100 });
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w1 = await transport.nextWatch();
  w1.open();
  await w1.whenDropped;
  const w2 = await transport.nextWatch();
  assert.equal(w2.query.resourceVersion, "r1");
  assert.equal(watch.stats.lists, 1, "resumed, no LIST");
  assert.deepEqual(records, [{
    level: "info",
    message: "Watch of things.v1.example.com in *: no event or bookmark for 0.1 s; re-opening it " +
      "in 5 ms.",
  }]);
  await stop();
});

Deno.test("watch idle: a watch failed by a dead connection re-opens with an INFO line", async () => {
  records.length = 0;
  const { transport, stop } = start(true);
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r1" }, items: [] });
  const w1 = await transport.nextWatch();
  w1.break(
    new ConnectionError({
      verb: "GET",
      url: "https://127.0.0.1:6443/apis/example.com/v1/things",
      cause: new Error("nothing received for 30 s, no answer to a probe within 15 s"),
      dead: true,
    }),
  );
  await transport.nextWatch();
  assert.deepEqual(records, [{
    level: "info",
    message: "Watch of things.v1.example.com in * lost its connection (GET " +
      "https://127.0.0.1:6443/apis/example.com/v1/things: the connection to 127.0.0.1:6443 was " +
      "dead: nothing received for 30 s, no answer to a probe within 15 s); re-opening it in 5 ms.",
  }]);
  await stop();
});
