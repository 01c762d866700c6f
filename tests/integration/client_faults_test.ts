// KubeClient's retries against faults the real API server will not make on demand — 429 storms
// and 5xx answers — injected by the fault proxy (tests/support/fault_proxy.ts) in front of the
// real server. Every answer not faulted is the real server's. The retry sleeps go through a fake
// clock (they are recorded, not waited out); the server's own counters confirm what reached it.
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.ts";
import { ApiError } from "../../src/kube/errors.ts";
import type { SleepingClock } from "../../src/kube/time.ts";
import type { KubeObject, Resource } from "../../src/kube/resource.ts";
import { cluster } from "../support/cluster.ts";
import { FaultProxy } from "../support/fault_proxy.ts";

const PROBE_CRD = new URL("../support/fixtures/client_probe_crd.yaml", import.meta.url).pathname;
const PROBE: Resource = {
  group: "kopf.dev",
  version: "v1",
  plural: "clientprobes",
  kind: "ClientProbe",
  singular: "clientprobe",
  shortcuts: ["cprobe"],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  subresources: ["status"],
};

class FakeClock implements SleepingClock {
  slept: number[] = [];
  now = () => Date.now();
  setTimeout = (callback: () => void, delayMs: number): unknown => setTimeout(callback, delayMs);
  clearTimeout = (handle: unknown) => clearTimeout(handle as number);
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.slept.push(ms);
    return Promise.resolve();
  }
}

/** Fails (instead of hanging) when `promise` does not settle within `ms` — a generous bound. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function setup(prefix: string) {
  const c = await cluster();
  await c.applyCrd(PROBE_CRD);
  const ns = await c.namespace(prefix);
  const proxy = await FaultProxy.start(c);
  const clock = new FakeClock();
  const client = await KubeClient.connect({ kubeconfig: proxy.kubeconfig, clock, retries: 4 });
  return {
    c,
    ns,
    proxy,
    clock,
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      await proxy.close();
      await c.deleteNamespace(ns);
    },
  };
}

Deno.test("a 429 storm is ridden out, honouring Retry-After; one request reaches the server", async () => {
  await using t = await setup("client-429");
  const { c, ns, proxy, clock, client } = t;
  await client.create(PROBE, { metadata: { name: "x", namespace: ns } });
  const path = new RegExp(`/namespaces/${ns}/clientprobes/x$`);
  proxy.reply(429, { count: 3, retryAfter: 2, match: { method: "GET", path } });
  const before = await c.metrics();
  const got = await client.get<KubeObject>(PROBE, "x", { namespace: ns });
  assert.equal(got.metadata?.name, "x");
  assert.deepEqual(proxy.seen({ method: "GET", path }).map((r) => r.status), [429, 429, 429, 200]);
  assert.equal(clock.slept.length, 3);
  assert.ok(clock.slept.every((ms) => ms >= 2000), `slept ${clock.slept}`);
  assert.equal(client.metrics.retries, 3);
  const delta = (await c.metrics()).since(before);
  assert.equal(delta.count({ verb: "GET", resource: "clientprobes" }), 1, delta.toString());
});

Deno.test("a 429 storm longer than the retries ends in an ApiError", async () => {
  await using t = await setup("client-429-long");
  const { ns, proxy, client } = t;
  proxy.reply(429, { count: 100, retryAfter: 1, match: { method: "GET" } });
  const error = await client.get(PROBE, "x", { namespace: ns }).catch((e) => e);
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.status, 429);
  assert.equal(error.retryAfterSeconds, 1);
  assert.match(
    error.message,
    new RegExp(`^GET clientprobes.kopf.dev ${ns}/x: 429 TooManyRequests`),
  );
  assert.equal(proxy.seen({ method: "GET" }).length, 5, "1 attempt + 4 retries");
});

Deno.test("a POST is retried on 503 with Retry-After and creates the object once", async () => {
  await using t = await setup("client-503");
  const { c, ns, proxy, client } = t;
  proxy.reply(503, { count: 2, retryAfter: 1, match: { method: "POST" } });
  const before = await c.metrics();
  await client.create(PROBE, { metadata: { name: "once", namespace: ns } });
  assert.deepEqual(proxy.seen({ method: "POST" }).map((r) => r.status), [503, 503, 201]);
  const delta = (await c.metrics()).since(before);
  assert.equal(delta.count({ verb: "POST", resource: "clientprobes" }), 1, delta.toString());
  const list = await client.list(PROBE, { namespace: ns });
  assert.deepEqual(list.items.map((o) => o.metadata?.name), ["once"]);
});

Deno.test("a POST is not retried on 500 (it may have been applied); a GET is", async () => {
  await using t = await setup("client-500");
  const { c, ns, proxy, client } = t;
  proxy.reply(500, { count: 1, match: { method: "POST" } });
  const before = await c.metrics();
  const error = await client.create(PROBE, { metadata: { name: "maybe", namespace: ns } }).catch((
    e,
  ) => e);
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.status, 500);
  assert.equal(proxy.seen({ method: "POST" }).length, 1);
  const delta = (await c.metrics()).since(before);
  assert.equal(delta.count({ verb: "POST", resource: "clientprobes" }), 0, delta.toString());

  await client.create(PROBE, { metadata: { name: "there", namespace: ns } });
  proxy.reply(500, { count: 2, match: { method: "GET" } });
  proxy.reply(502, { count: 1, match: { method: "GET" } });
  const got = await client.get<KubeObject>(PROBE, "there", { namespace: ns });
  assert.equal(got.metadata?.name, "there");
  assert.deepEqual(proxy.seen({ method: "GET" }).map((r) => r.status), [500, 500, 502, 200]);
});

Deno.test("stream() opens a real watch, and a 410 Gone arrives as an ApiError", async () => {
  await using t = await setup("client-stream");
  const { ns, proxy, client } = t;
  const list = await client.list(PROBE, { namespace: ns });
  const controller = new AbortController();
  const response = await client.stream(`/apis/kopf.dev/v1/namespaces/${ns}/clientprobes`, {
    query: {
      watch: true,
      resourceVersion: list.metadata.resourceVersion,
      allowWatchBookmarks: true,
    },
    signal: controller.signal,
  });
  assert.equal(response.status, 200);
  await client.create(PROBE, { metadata: { name: "streamed", namespace: ns } });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const event = JSON.parse(text.split("\n")[0]);
  assert.equal(event.type, "ADDED");
  assert.equal(event.object.metadata.name, "streamed");
  controller.abort();
  await reader.cancel().catch(() => {});

  proxy.goneWatches({ as: "http" });
  const error = await client.stream(`/apis/kopf.dev/v1/namespaces/${ns}/clientprobes`, {
    query: { watch: true, resourceVersion: "1" },
  }).catch((e) => e);
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.status, 410);
});

Deno.test("open watch streams do not take the in-flight slots", async () => {
  const c = await cluster();
  await c.applyCrd(PROBE_CRD);
  const ns = await c.namespace("client-slots");
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig, maxInFlight: 1 });
  const controller = new AbortController();
  try {
    const streams = await Promise.all(
      [1, 2, 3].map(() =>
        client.stream(`/apis/kopf.dev/v1/namespaces/${ns}/clientprobes`, {
          query: { watch: true, timeoutSeconds: 60 },
          signal: controller.signal,
        })
      ),
    );
    // With three watches open and a cap of one, ordinary requests still go through.
    await within(
      30_000,
      "a request next to the watches",
      (async () => {
        await client.create(PROBE, { metadata: { name: "a", namespace: ns } });
        await client.get(PROBE, "a", { namespace: ns });
      })(),
    );
    assert.equal(client.metrics.inFlight, 0);
    assert.equal(client.metrics.streams, 3);
    controller.abort();
    await Promise.all(streams.map((s) => s.body?.cancel().catch(() => {})));
  } finally {
    client.close();
    await c.deleteNamespace(ns);
  }
});

Deno.test("the rate limit rises above 50 QPS while the real server keeps up, and halves on a 429 storm (fault proxy)", async () => {
  await using t = await setup("client-rate");
  const { c, ns, proxy } = t;
  // The real clock: this is about the token bucket's pacing against the server's real answers.
  const client = await KubeClient.connect({ kubeconfig: proxy.kubeconfig });
  try {
    await client.create(PROBE, { metadata: { name: "x", namespace: ns } });
    const before = await c.metrics();
    const total = 600;
    let next = 0;
    const worker = async () => {
      while (next++ < total) await client.get(PROBE, "x", { namespace: ns });
    };
    await within(120_000, "600 GETs", Promise.all(Array.from({ length: 16 }, worker)));
    const raised = client.metrics;
    assert.ok(raised.rateRaises >= 1, `raised ${raised.rateRaises} times`);
    assert.ok(raised.qps > 50, `rate ${raised.qps} QPS after a burst the server kept up with`);
    assert.ok(raised.throttledWaits > 0, "the burst did have to wait at first");
    const delta = (await c.metrics()).since(before);
    assert.equal(delta.count({ verb: "GET", resource: "clientprobes" }), total, delta.toString());

    proxy.reply(429, { count: 4, retryAfter: 0, match: { method: "GET" } });
    await within(
      60_000,
      "GETs through a 429 storm",
      Promise.all(Array.from({ length: 4 }, () => client.get(PROBE, "x", { namespace: ns }))),
    );
    const cut = client.metrics;
    assert.ok(cut.rateCuts >= 1, `cut ${cut.rateCuts} times`);
    assert.ok(cut.qps < raised.qps, `rate ${raised.qps} → ${cut.qps} QPS after 429s`);
    assert.ok(cut.qps >= 50, "never below the configured qps");
  } finally {
    client.close();
  }
});
