/**
 * The client's deadlines by verb, its cap on a whole request, the WARNING lines of writes that
 * fail without an answer, and the transport's health plumbing (bytes counted from streamed
 * bodies, in-flight work failed over when the probe goes unanswered) — against a local HTTP
 * server that answers, trickles or hangs as each test scripts. The real API server cannot be
 * made to hang on demand; tests/integration/client_connection_test.ts freezes a real connection.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord } from "@logtape/logtape";
import { KubeClient } from "../../src/kube/client.ts";
import { tokenCredentials } from "../../src/kube/config/credentials.ts";
import { ConnectionError, RequestTimeoutError } from "../../src/kube/errors.ts";
import type { SleepingClock } from "../../src/kube/time.ts";

const warnings: string[] = [];
await configure({
  reset: true,
  sinks: {
    memory: (record: LogRecord) => {
      if (record.level !== "warning") return;
      warnings.push(record.message.map((p, i) => i % 2 ? String(p) : p).join(""));
    },
  },
  loggers: [
    { category: ["kopf"], sinks: ["memory"], lowestLevel: "debug" },
    { category: ["logtape", "meta"], lowestLevel: "error" },
  ],
});

/** Answers that never come, until the test's server is disposed of (then: 503). */
let hanging = Promise.withResolvers<void>();
const never = () => hanging.promise.then(() => new Response("gone", { status: 503 }));

/** A local server: `handler` answers each request; every request is recorded. */
function serve(handler: (request: Request, index: number) => Response | Promise<Response>) {
  const seen: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (request) => {
    const url = new URL(request.url);
    seen.push(`${request.method} ${url.pathname}`);
    return handler(request, seen.length - 1);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    async [Symbol.asyncDispose]() {
      hanging.resolve();
      hanging = Promise.withResolvers<void>();
      await server.shutdown();
    },
  };
}

function client(server: string, options: ConstructorParameters<typeof KubeClient>[1] = {}) {
  return new KubeClient(
    { server, source: "test", tls: {}, credentials: tokenCredentials("t") },
    { backoff: { initialMs: 10, factor: 2, maxMs: 20 }, random: () => 0.5, ...options },
  );
}

/** Sleeps are instant and advance the time; nothing else does. */
class StepClock implements SleepingClock {
  time = 0;
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.time += ms;
    return Promise.resolve();
  }
}

const OBJECT = "/apis/kopf.dev/v1/namespaces/ns1/kopfexamples/kex1";

Deno.test("deadlines: reads and writes get their own per-attempt deadline", async () => {
  await using server = serve(never);
  const kube = client(server.url, { readTimeoutMs: 100, writeTimeoutMs: 300, retries: 0 });
  try {
    const started = performance.now();
    const read = await kube.request("GET", OBJECT).catch((e) => e);
    const readMs = performance.now() - started;
    assert.ok(read instanceof RequestTimeoutError, String(read));
    assert.equal(read.message, "GET kopfexamples.kopf.dev ns1/kex1: no response within 0.1 s");
    const write = await kube.request("PUT", OBJECT, { body: {} }).catch((e) => e);
    assert.ok(write instanceof RequestTimeoutError, String(write));
    assert.equal(write.message, "PUT kopfexamples.kopf.dev ns1/kex1: no response within 0.3 s");
    assert.ok(readMs < 300, `the read ended at its own deadline (${readMs} ms)`);
  } finally {
    kube.close();
  }
});

Deno.test("deadlines: the whole request, retries included, ends within timeoutMs", async () => {
  await using server = serve(never);
  // Backoff 500 ms ×2 at full jitter × 1.0: pauses 500, 1000, 2000… in clock time. With a cap
  // of 2000 ms: attempt 1 at 0, attempt 2 at 500, attempt 3 at 1500, and the next pause would
  // end past the cap — three attempts, where retries alone would allow nine.
  const kube = client(server.url, {
    readTimeoutMs: 50,
    timeoutMs: 2000,
    retries: 8,
    clock: new StepClock(),
    backoff: { initialMs: 500, factor: 2, maxMs: 30_000 },
    random: () => 1,
  });
  try {
    const error = await kube.request("GET", OBJECT).catch((e) => e);
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.equal(server.seen.length, 3);
    assert.match(error.message, /\(after 3 attempts\)$/);
  } finally {
    kube.close();
  }
});

Deno.test("warnings: a write retried after its deadline says so, once per retry; a read does not", async () => {
  warnings.length = 0;
  await using server = serve((_, index) =>
    index === 0 ? never() : Response.json({ metadata: { name: "kex1" } })
  );
  const kube = client(server.url, { writeTimeoutMs: 100, readTimeoutMs: 100 });
  try {
    const patched = await kube.request("PATCH", OBJECT + "/status", {
      body: { status: { x: 1 } },
      contentType: "application/merge-patch+json",
    });
    assert.deepEqual(patched, { metadata: { name: "kex1" } });
    assert.deepEqual(server.seen, [`PATCH ${OBJECT}/status`, `PATCH ${OBJECT}/status`]);
    assert.deepEqual(warnings, [
      "PATCH kopfexamples.kopf.dev/status ns1/kex1: no response within 0.1 s; retry 1/8 in 5 ms.",
    ]);
  } finally {
    kube.close();
  }
  warnings.length = 0;
  await using again = serve((_, index) => index === 0 ? never() : Response.json({}));
  const reader = client(again.url, { readTimeoutMs: 100 });
  try {
    await reader.request("GET", OBJECT);
    assert.equal(again.seen.length, 2);
    assert.deepEqual(warnings, [], "a retried read is no news at WARNING");
  } finally {
    reader.close();
  }
});

Deno.test("warnings: a create that got no answer is not retried, and says so with the object's name", async () => {
  warnings.length = 0;
  await using server = serve(never);
  const kube = client(server.url, { writeTimeoutMs: 100 });
  try {
    const error = await kube.request("POST", "/apis/kopf.dev/v1/namespaces/ns1/kopfexamples", {
      body: { metadata: { name: "kex2" } },
    }).catch((e) => e);
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.equal(server.seen.length, 1);
    assert.deepEqual(warnings, [
      "POST kopfexamples.kopf.dev ns1/kex2: no response within 0.1 s; not retried: a POST is " +
      "not idempotent and may have been applied.",
    ]);
  } finally {
    kube.close();
  }
});

Deno.test("health: a trickling stream keeps the connection alive without probes", async () => {
  // A body chunk every 100 ms, silence threshold 300 ms: the bytes themselves prove the
  // connection alive, so no probe is needed for as long as they keep coming.
  await using server = serve((request) => {
    if (new URL(request.url).pathname === "/version") return Response.json({});
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((r) => setTimeout(r, 100));
        if (n++ === 15) controller.close();
        else controller.enqueue(new TextEncoder().encode(`{"type":"BOOKMARK","n":${n}}\n`));
      },
    });
    return new Response(body);
  });
  const kube = client(server.url, { readIdleTimeoutMs: 300, pingTimeoutMs: 200 });
  try {
    const response = await kube.stream("/api/v1/namespaces/ns1/configmaps", {
      query: { watch: true },
    });
    const text = await response.text();
    assert.equal(text.trim().split("\n").length, 15);
    assert.equal(kube.metrics.probes, 0);
    assert.deepEqual(server.seen.filter((s) => s === "GET /version"), []);
  } finally {
    kube.close();
  }
});

Deno.test("health: silence, then an unanswered probe: every request and stream on the connection fails over", async () => {
  warnings.length = 0;
  let silent = true;
  await using server = serve((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/version") return silent ? never() : Response.json({});
    if (request.method === "GET" && new URL(request.url).searchParams.has("watch")) {
      // Headers now, then nothing: a watch on a connection that goes quiet.
      return new Response(new ReadableStream({ pull: () => hanging.promise }));
    }
    return silent ? never() : Response.json({ ok: true });
  });
  const kube = client(server.url, { readIdleTimeoutMs: 200, pingTimeoutMs: 200 });
  try {
    const watch = await kube.stream("/api/v1/namespaces/ns1/configmaps", {
      query: { watch: true },
    });
    const started = performance.now();
    const reading = watch.text().then(() => "ended", (e) => e);
    const patching = kube.request("PATCH", OBJECT, {
      body: {},
      contentType: "application/merge-patch+json",
    });
    const failed = await reading;
    const failedAfter = performance.now() - started;
    silent = false;
    assert.ok(failed instanceof ConnectionError && failed.dead, String(failed));
    assert.match(
      failed.message,
      /^GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/ns1\/configmaps: the connection to 127\.0\.0\.1:\d+ was dead: nothing received for 0\.2 s, no answer to a probe within 0\.2 s$/,
    );
    assert.ok(failedAfter >= 350 && failedAfter < 2000, `failed after ${failedAfter} ms`);
    assert.deepEqual(await patching, { ok: true }, "the merge patch was retried and answered");
    // Requests and watches have a connection each (watches are read on a thread of their own):
    // both went silent, and each was found dead once, after one probe.
    assert.equal(kube.metrics.deadConnections, 2);
    assert.equal(kube.metrics.probes, 2);
    assert.equal(warnings.length, 3, warnings.join("\n"));
    const dead = (what: string) =>
      new RegExp(
        String
          .raw`^The connection to http://127\.0\.0\.1:\d+ is dead \(nothing received for 0\.2 s, no answer to a probe within 0\.2 s\): replaced by a new one; ${what} in flight on it fail over\.$`,
      );
    assert.equal(
      warnings.filter((w) => dead(String.raw`1 request\(s\) and 0 watch\(es\)`).test(w)).length,
      1,
    );
    assert.equal(
      warnings.filter((w) => dead(String.raw`0 request\(s\) and 1 watch\(es\)`).test(w)).length,
      1,
    );
    assert.equal(
      warnings.filter((w) =>
        /^PATCH kopfexamples\.kopf\.dev ns1\/kex1: the connection to 127\.0\.0\.1:\d+ was dead: .*; retry 1\/8 in 5 ms\.$/
          .test(w)
      ).length,
      1,
    );
  } finally {
    kube.close();
  }
});
