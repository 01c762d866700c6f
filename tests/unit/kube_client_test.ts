/**
 * KubeClient's request policy (retries, re-authentication, limits, timeouts, error typing)
 * against a tiny local HTTP server that answers what each test scripts. The real API server
 * cannot be made to answer 429/500/503 or to hang on demand; the integration tests cover the
 * same client against the real one.
 */
import assert from "node:assert/strict";
import { isIdempotent, KubeClient, parseRetryAfter } from "../../src/kube/client.ts";
import type { ClusterConfig, Credentials } from "../../src/kube/config/mod.ts";
import { tokenCredentials } from "../../src/kube/config/mod.ts";
import {
  ApiError,
  ConfigError,
  ConnectionError,
  RequestTimeoutError,
} from "../../src/kube/errors.ts";
import type { SleepingClock } from "../../src/kube/time.ts";
import type { Resource } from "../../src/kube/resource.ts";

interface Seen {
  method: string;
  path: string;
  query: string;
  contentType: string | null;
  authorization: string | null;
  body: string;
}

type Handler = (request: Request, seen: Seen, index: number) => Response | Promise<Response>;

/** A local HTTP server; `handler` decides each answer. */
function serve(handler: Handler) {
  const seen: Seen[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const entry: Seen = {
      method: request.method,
      path: url.pathname,
      query: url.search,
      contentType: request.headers.get("content-type"),
      authorization: request.headers.get("authorization"),
      body: await request.text(),
    };
    seen.push(entry);
    return await handler(request, entry, seen.length - 1);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** Sleeps are instant and recorded; time moves only when something sleeps. */
class FakeClock implements SleepingClock {
  time = 0;
  slept: number[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.slept.push(ms);
    this.time += ms;
    return Promise.resolve();
  }
}

function config(
  server: string,
  credentials: Credentials = tokenCredentials("good"),
): ClusterConfig {
  return { server, source: "test", tls: {}, credentials };
}

function status(code: number, reason: string, message: string, headers: HeadersInit = {}) {
  return Response.json({
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    reason,
    message,
    code,
  }, {
    status: code,
    headers,
  });
}

const KEX: Resource = {
  group: "kopf.dev",
  version: "v1",
  plural: "kopfexamples",
  kind: "KopfExample",
  singular: "kopfexample",
  shortcuts: [],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["get", "list", "watch", "create", "patch", "delete"],
  subresources: ["status"],
};

Deno.test("429 is retried, honouring Retry-After, for any method", async () => {
  await using server = await serve((_r, _s, i) =>
    i < 2
      ? status(429, "TooManyRequests", "slow down", { "Retry-After": "3" })
      : Response.json({ ok: i })
  );
  const clock = new FakeClock();
  const client = new KubeClient(config(server.url), { clock, random: () => 0 });
  try {
    assert.deepEqual(
      await client.request("POST", "/api/v1/namespaces/a/configmaps", { body: {} }),
      { ok: 2 },
    );
    // With zero jitter the backoff alone would not wait at all: Retry-After sets the floor.
    assert.deepEqual(clock.slept, [3000, 3000]);
    assert.equal(server.seen.length, 3);
    assert.equal(client.metrics.retries, 2);
    assert.deepEqual(client.metrics.responses, { 200: 1, 429: 2 });
    assert.deepEqual(client.metrics.requests, { POST: 3 });
  } finally {
    client.close();
  }
});

Deno.test("Retry-After is capped by maxRetryAfterMs", async () => {
  await using server = await serve((_r, _s, i) =>
    i < 1 ? status(429, "TooManyRequests", "later", { "Retry-After": "3600" }) : Response.json({})
  );
  const clock = new FakeClock();
  const client = new KubeClient(config(server.url), {
    clock,
    random: () => 0,
    maxRetryAfterMs: 5000,
  });
  try {
    await client.request("GET", "/api");
    assert.deepEqual(clock.slept, [5000]);
  } finally {
    client.close();
  }
});

// Kopf's networking.enforce_retry_after: exactly the server's word, even below the backoff; and
// errorBackoffs' values as the ceilings of the retries' delays (Kopf's error_backoffs).
Deno.test("enforceRetryAfter waits exactly Retry-After; backoff steps are per-retry ceilings", async () => {
  await using server = await serve((_r, _s, i) =>
    i < 3 ? status(429, "TooManyRequests", "soon", { "Retry-After": "1" }) : Response.json({})
  );
  const steps = { initialMs: 1, factor: 1, maxMs: 1, stepsMs: [4000, 6000] };
  for (
    const [enforceRetryAfter, expected] of [[true, [1000, 1000, 1000]], [false, [
      4000,
      6000,
      6000,
    ]]] as const
  ) {
    const clock = new FakeClock();
    const client = new KubeClient(config(server.url), {
      clock,
      random: () => 1,
      backoff: steps,
      enforceRetryAfter,
    });
    try {
      server.seen.length = 0;
      await client.request("GET", "/api").catch(() => {});
      assert.deepEqual(clock.slept, expected, `enforceRetryAfter: ${enforceRetryAfter}`);
    } finally {
      client.close();
    }
  }
});

Deno.test("5xx is retried with backoff for idempotent requests until the retries run out", async () => {
  await using server = await serve(() => status(500, "InternalError", "etcd is sad"));
  const clock = new FakeClock();
  const client = new KubeClient(config(server.url), {
    clock,
    random: () => 1,
    retries: 3,
    backoff: { initialMs: 100, factor: 2, maxMs: 250 },
  });
  try {
    const error = await client.get(KEX, "one", { namespace: "ns" }).catch((e) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.message, "GET kopfexamples.kopf.dev ns/one: 500 InternalError: etcd is sad");
    assert.equal(server.seen.length, 4);
    assert.deepEqual(clock.slept, [100, 200, 250]);
  } finally {
    client.close();
  }
});

Deno.test("POST and JSON patches are not retried on 500, but are on 503 with Retry-After", async () => {
  let answer = () => status(500, "InternalError", "maybe applied");
  await using server = await serve(() => answer());
  const client = new KubeClient(config(server.url), { clock: new FakeClock() });
  try {
    await assert.rejects(client.create(KEX, { metadata: { name: "x", namespace: "ns" } }), /500/);
    assert.equal(server.seen.length, 1);
    await assert.rejects(
      client.patch(KEX, "x", [{ op: "add", path: "/a", value: 1 }], {
        namespace: "ns",
        type: "json",
      }),
      /500/,
    );
    assert.equal(server.seen.length, 2);
    // A merge patch is idempotent: retried (8 retries by default).
    const seenBefore = server.seen.length;
    await assert.rejects(client.patch(KEX, "x", { a: 1 }, { namespace: "ns" }), /500/);
    assert.equal(server.seen.length - seenBefore, 9);
    answer = () => status(503, "ServiceUnavailable", "shutting down", { "Retry-After": "1" });
    const before = server.seen.length;
    const error = await client.request("POST", "/api/v1/namespaces", { body: {}, retries: 2 })
      .catch((e) => e);
    assert.ok(error instanceof ApiError && error.status === 503);
    assert.equal(server.seen.length - before, 3);
    // 503 without Retry-After: not retried for POST.
    answer = () => status(503, "ServiceUnavailable", "no idea");
    const before2 = server.seen.length;
    await assert.rejects(client.request("POST", "/api/v1/namespaces", { body: {} }), /503/);
    assert.equal(server.seen.length - before2, 1);
  } finally {
    client.close();
  }
});

Deno.test("401 reloads the credentials once and retries", async () => {
  let token = "stale";
  let invalidations = 0;
  const credentials: Credentials = {
    kind: "exec",
    get: () => Promise.resolve({ headers: [["Authorization", `Bearer ${token}`]] }),
    invalidate: () => {
      invalidations++;
      token = "fresh";
      return true;
    },
  };
  await using server = await serve((request) =>
    request.headers.get("authorization") === "Bearer fresh"
      ? Response.json({ kind: "Namespace" }, { status: 201 })
      : status(401, "Unauthorized", "Unauthorized")
  );
  const client = new KubeClient(config(server.url, credentials), { clock: new FakeClock() });
  try {
    // Even a POST: a 401 means nothing was done.
    assert.deepEqual(await client.request("POST", "/api/v1/namespaces", { body: {} }), {
      kind: "Namespace",
    });
    assert.equal(invalidations, 1);
    assert.deepEqual(server.seen.map((s) => s.authorization), ["Bearer stale", "Bearer fresh"]);
    assert.equal(client.metrics.reauthentications, 1);
  } finally {
    client.close();
  }
});

Deno.test("a second 401 in a row is an ApiError; static credentials are not retried", async () => {
  let invalidations = 0;
  const credentials: Credentials = {
    kind: "exec",
    get: () => Promise.resolve({ headers: [["Authorization", "Bearer bad"]] }),
    invalidate: () => (invalidations++, true),
  };
  await using server = await serve(() => status(401, "Unauthorized", "Unauthorized"));
  const client = new KubeClient(config(server.url, credentials), { clock: new FakeClock() });
  const fixed = new KubeClient(config(server.url), { clock: new FakeClock() });
  try {
    const error = await client.request("GET", "/api/v1/namespaces/x").catch((e) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.message, "GET namespaces x: 401 Unauthorized: Unauthorized");
    assert.equal(invalidations, 1);
    assert.equal(server.seen.length, 2);
    await assert.rejects(fixed.request("GET", "/api"), /401/);
    assert.equal(server.seen.length, 3);
  } finally {
    client.close();
    fixed.close();
  }
});

Deno.test("other 4xx are not retried and keep the Status details", async () => {
  await using server = await serve(() =>
    Response.json({
      kind: "Status",
      status: "Failure",
      reason: "Conflict",
      message:
        'Operation cannot be fulfilled on kopfexamples.kopf.dev "x": the object has been modified',
      details: { name: "x", group: "kopf.dev", kind: "kopfexamples" },
      code: 409,
    }, { status: 409 })
  );
  const client = new KubeClient(config(server.url), { clock: new FakeClock() });
  try {
    const error = await client.replace(KEX, "x", { metadata: { namespace: "ns" } }).catch((e) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 409);
    assert.equal(error.reason, "Conflict");
    assert.equal(error.details?.name, "x");
    assert.equal(server.seen.length, 1);
    assert.equal(server.seen[0].path, "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/x");
  } finally {
    client.close();
  }
});

Deno.test("an unreachable server gives a ConnectionError naming host and cause, after retries", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // nothing listens there now
  const clock = new FakeClock();
  const client = new KubeClient(config(`http://127.0.0.1:${port}`), { clock, retries: 3 });
  try {
    const error = await client.request("POST", "/api/v1/namespaces", { body: {} }).catch((e) => e);
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.host, `127.0.0.1:${port}`);
    assert.equal(error.attempts, 4, "refused connections are safe to retry even for POST");
    assert.equal(error.maybeSent, false);
    assert.match(
      error.message,
      new RegExp(
        `^POST http://127.0.0.1:${port}/api/v1/namespaces: cannot connect to 127.0.0.1:${port} \\(after 4 attempts\\): .*Connection refused`,
      ),
    );
    assert.equal(clock.slept.length, 3);
    assert.equal(client.metrics.transportErrors, 4);
  } finally {
    client.close();
  }
});

Deno.test("a request without an answer times out with a RequestTimeoutError", async () => {
  const hang = Promise.withResolvers<void>();
  await using server = await serve(() => hang.promise.then(() => new Response("late")));
  const client = new KubeClient(config(server.url), {
    clock: new FakeClock(),
    readTimeoutMs: 200,
    writeTimeoutMs: 200,
    retries: 1,
  });
  try {
    const error = await client.request("GET", "/api/v1/namespaces/a/pods").catch((e) => e);
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.equal(error.message, "GET pods in a: no response within 0.2 s (after 2 attempts)");
    assert.equal(server.seen.length, 2);
    // Not retried for POST (it may have been applied).
    const post = await client.request("POST", "/api/v1/namespaces", { body: {} }).catch((e) => e);
    assert.ok(post instanceof RequestTimeoutError);
    assert.equal(server.seen.length, 3);
  } finally {
    hang.resolve();
    client.close();
  }
});

Deno.test("the caller's signal aborts waits and requests without retrying", async () => {
  const hang = Promise.withResolvers<void>();
  await using server = await serve(() => hang.promise.then(() => new Response("late")));
  const client = new KubeClient(config(server.url));
  try {
    const controller = new AbortController();
    const pending = client.request("GET", "/api", { signal: controller.signal });
    while (!server.seen.length) await new Promise((r) => setTimeout(r, 5));
    controller.abort(new Error("operator stopping"));
    await assert.rejects(pending, /operator stopping/);
    assert.equal(server.seen.length, 1);
  } finally {
    hang.resolve();
    client.close();
  }
});

Deno.test("requests in flight are capped; watch streams do not take slots", async () => {
  const gates: PromiseWithResolvers<void>[] = [];
  let active = 0;
  let peak = 0;
  await using server = await serve(async (request) => {
    if (new URL(request.url).searchParams.get("watch")) {
      // A watch: headers now, body never ends (until the client goes).
      const body = new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode("{}\n"));
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    active++;
    peak = Math.max(peak, active);
    const gate = Promise.withResolvers<void>();
    gates.push(gate);
    await gate.promise;
    active--;
    return Response.json({});
  });
  const client = new KubeClient(config(server.url), { maxInFlight: 2, clock: new FakeClock() });
  try {
    const streams = await Promise.all(
      [1, 2, 3].map(() => client.stream("/api/v1/pods", { query: { watch: true } })),
    );
    assert.equal(client.metrics.streams, 3);
    const requests = [1, 2, 3, 4, 5].map(() => client.request("GET", "/api/v1/pods"));
    while (gates.length < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(gates.length, 2, "only two requests reached the server");
    assert.equal(client.metrics.inFlight, 2);
    assert.equal(client.metrics.waitingForSlot, 3);
    let done = false;
    const all = Promise.all(requests).finally(() => done = true);
    while (!done) {
      for (const gate of gates.splice(0)) gate.resolve();
      await new Promise((r) => setTimeout(r, 5));
    }
    await all;
    assert.equal(peak, 2);
    for (const stream of streams) await stream.body?.cancel();
  } finally {
    client.close();
  }
});

Deno.test("the token bucket throttles requests and counts the waits", async () => {
  await using server = await serve(() => Response.json({}));
  const clock = new FakeClock();
  const client = new KubeClient(config(server.url), { qps: 2, maxQps: 2, burst: 2, clock });
  try {
    for (let i = 0; i < 5; i++) await client.request("GET", "/api");
    assert.deepEqual(clock.slept, [500, 500, 500]);
    assert.equal(client.metrics.throttledWaits, 3);
    assert.equal(client.metrics.throttledMs, 1500);
    assert.equal(client.metrics.qps, 2);
  } finally {
    client.close();
  }
});

Deno.test("the token bucket's rate rises while the server answers and halves on a 429", async () => {
  let throttle = false;
  await using server = await serve(() =>
    throttle
      ? new Response('{"kind":"Status","code":429,"reason":"TooManyRequests"}', {
        status: 429,
        headers: { "retry-after": "0", "content-type": "application/json" },
      })
      : Response.json({})
  );
  const clock = new FakeClock();
  const client = new KubeClient(config(server.url), { qps: 2, maxQps: 16, burst: 1, clock });
  try {
    for (let i = 0; i < 20; i++) await client.request("GET", "/api");
    assert.equal(client.metrics.qps, 16, "raised up to maxQps while requests waited");
    assert.equal(client.metrics.rateRaises, 3);
    throttle = true;
    await assert.rejects(client.request("GET", "/api", { retries: 0 }), /429/);
    assert.equal(client.metrics.qps, 8);
    assert.equal(client.metrics.rateCuts, 1);
  } finally {
    client.close();
  }
});

Deno.test("stream() returns the streaming response, or an ApiError with the Status", async () => {
  await using server = await serve((request) =>
    new URL(request.url).searchParams.get("resourceVersion") === "old"
      ? status(410, "Expired", "too old resource version: 1 (5)")
      : new Response('{"type":"ADDED"}\n', { headers: { "content-type": "application/json" } })
  );
  const client = new KubeClient(config(server.url), { clock: new FakeClock() });
  try {
    const response = await client.stream("/apis/kopf.dev/v1/kopfexamples", {
      query: { watch: true, allowWatchBookmarks: true },
    });
    assert.equal(await response.text(), '{"type":"ADDED"}\n');
    assert.equal(server.seen[0].query, "?watch=true&allowWatchBookmarks=true");
    const error = await client.stream("/apis/kopf.dev/v1/kopfexamples", {
      query: { watch: true, resourceVersion: "old" },
    }).catch((e) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 410);
    assert.equal(error.reason, "Expired");
    assert.equal(
      error.message,
      "GET kopfexamples.kopf.dev: 410 Expired: too old resource version: 1 (5)",
    );
  } finally {
    client.close();
  }
});

Deno.test("typed helpers send the right method, path, query and content type", async () => {
  await using server = await serve(() => Response.json({ kind: "KopfExample" }));
  const client = new KubeClient(config(server.url), { clock: new FakeClock() });
  try {
    await client.get(KEX, "a", { namespace: "ns", subresource: "status" });
    await client.list(KEX, { namespace: "ns", labelSelector: "app=x", limit: 10, continue: "abc" });
    await client.create(KEX, { metadata: { name: "a", namespace: "ns" }, spec: {} }, {
      fieldManager: "kopf",
    });
    await client.patch(KEX, "a", { spec: { x: 1 } }, { namespace: "ns" });
    await client.patch(KEX, "a", [{ op: "test", path: "/metadata/resourceVersion", value: "1" }], {
      namespace: "ns",
      type: "json",
    });
    await client.patch(KEX, "a", { status: { y: 2 } }, {
      namespace: "ns",
      subresource: "status",
      type: "apply",
      fieldManager: "kopf",
      force: true,
    });
    await client.delete(KEX, "a", {
      namespace: "ns",
      propagationPolicy: "Foreground",
      preconditions: { uid: "u-1" },
    });
    const rows = server.seen.map((s) => [s.method, s.path + s.query, s.contentType]);
    assert.deepEqual(rows, [
      ["GET", "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a/status", null],
      [
        "GET",
        "/apis/kopf.dev/v1/namespaces/ns/kopfexamples?labelSelector=app%3Dx&limit=10&continue=abc",
        null,
      ],
      [
        "POST",
        "/apis/kopf.dev/v1/namespaces/ns/kopfexamples?fieldManager=kopf",
        "application/json",
      ],
      ["PATCH", "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a", "application/merge-patch+json"],
      ["PATCH", "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a", "application/json-patch+json"],
      [
        "PATCH",
        "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a/status?fieldManager=kopf&force=true",
        "application/apply-patch+yaml",
      ],
      ["DELETE", "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a", "application/json"],
    ]);
    assert.deepEqual(JSON.parse(server.seen[2].body), {
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      metadata: { name: "a", namespace: "ns" },
      spec: {},
    });
    assert.deepEqual(JSON.parse(server.seen[5].body), {
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      status: { y: 2 },
    });
    assert.deepEqual(JSON.parse(server.seen[6].body), {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Foreground",
      preconditions: { uid: "u-1" },
    });
    assert.throws(
      () => client.patch(KEX, "a", {}, { namespace: "ns", type: "apply" }),
      /fieldManager/,
    );
    assert.throws(() => client.patch(KEX, "a", {}, { namespace: "ns", type: "json" }), /array/);
    assert.throws(() => client.patch(KEX, "a", {}, { namespace: "ns", force: true }), /force/);
  } finally {
    client.close();
  }
});

Deno.test("a closed client refuses requests", async () => {
  const client = new KubeClient(config("http://127.0.0.1:9"));
  client.close();
  await assert.rejects(client.request("GET", "/api"), /the client is closed/);
});

Deno.test("isIdempotent() and parseRetryAfter()", () => {
  assert.equal(isIdempotent("get"), true);
  assert.equal(isIdempotent("DELETE"), true);
  assert.equal(isIdempotent("PUT"), true);
  assert.equal(isIdempotent("POST"), false);
  assert.equal(isIdempotent("PATCH", "application/merge-patch+json"), true);
  assert.equal(isIdempotent("PATCH", "application/apply-patch+yaml"), true);
  assert.equal(isIdempotent("PATCH", "application/json-patch+json"), false);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter(" 7 "), 7);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
});

Deno.test("a credentials failure is thrown as it is, without retries or requests", async () => {
  await using server = await serve(() => Response.json({}));
  let calls = 0;
  const credentials: Credentials = {
    kind: "exec",
    get: () => {
      calls++;
      return Promise.reject(
        new ConfigError("exec plugin failed", { source: "x", field: "users[a].exec" }),
      );
    },
    invalidate: () => true,
  };
  const client = new KubeClient(config(server.url, credentials), {
    clock: new FakeClock(),
    maxInFlight: 1,
  });
  try {
    await assert.rejects(client.request("GET", "/api"), ConfigError);
    await assert.rejects(client.request("GET", "/api"), ConfigError);
    assert.equal(calls, 2);
    assert.equal(server.seen.length, 0);
    assert.equal(client.metrics.inFlight, 0, "the slot was released");
  } finally {
    client.close();
  }
});
