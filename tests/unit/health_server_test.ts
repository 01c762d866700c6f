// The health endpoint: URL parsing, probe caching, readiness rules, and a real server on a
// loopback port answering /healthz and /readyz.

import assert from "node:assert/strict";
import { parseLivenessUrl, ProbeCache, readinessOf, serveHealth } from "../../src/health/server.ts";

Deno.test("liveness URLs: Kopf's http://host:port/path, loopback by default, readyz next to the path", () => {
  assert.deepEqual(parseLivenessUrl("http://0.0.0.0:8080/healthz"), {
    hostname: "0.0.0.0",
    port: 8080,
    path: "/healthz",
    readyPath: "/readyz",
  });
  assert.deepEqual(parseLivenessUrl("http://localhost:9/probe/live"), {
    hostname: "localhost",
    port: 9,
    path: "/probe/live",
    readyPath: "/probe/readyz",
  });
  assert.equal(parseLivenessUrl("http://[::1]:80/").readyPath, "/readyz");
  assert.equal(parseLivenessUrl("http://[::1]/x").hostname, "::1");
  assert.throws(() => parseLivenessUrl("https://h:1/x"), /Unsupported scheme/);
  assert.throws(() => parseLivenessUrl("not a url"), /Unsupported liveness endpoint/);
});

Deno.test("probe results are cached for 10 s and concurrent requests share one run", async () => {
  let now = 0;
  let runs = 0;
  let release!: () => void;
  const cache = new ProbeCache(async () => {
    runs += 1;
    await new Promise<void>((resolve) => release = resolve);
    return { n: runs };
  }, { now: () => now });
  const a = cache.get();
  const b = cache.get();
  release();
  assert.deepEqual(await a, { n: 1 });
  assert.deepEqual(await b, { n: 1 });
  now = 9_000;
  assert.deepEqual(await cache.get(), { n: 1 });
  now = 10_001;
  const c = cache.get();
  release();
  assert.deepEqual(await c, { n: 2 });
});

Deno.test("readiness: started, listed, indexed, and some watch healthy lately", () => {
  const watch = { synced: true, healthy: true, lastHealthyAt: 1000 };
  const base = { watches: [watch], indexesReady: true, started: true, now: 2000 };
  assert.deepEqual(readinessOf(base), { ready: true, reasons: [] });
  assert.equal(readinessOf({ ...base, started: false }).ready, false);
  assert.equal(readinessOf({ ...base, indexesReady: false }).ready, false);
  const unsynced = readinessOf({
    ...base,
    watches: [{ ...watch, synced: false, resource: { plural: "pods", group: "" } }],
  });
  assert.deepEqual(unsynced.reasons, ["pods: not listed yet"]);
  const down = { ...watch, healthy: false, lastHealthyAt: 0 };
  assert.equal(readinessOf({ ...base, watches: [down], now: 30_000 }).ready, true, "a short blip");
  assert.deepEqual(readinessOf({ ...base, watches: [down], now: 61_000 }).reasons, [
    "no watch has been healthy for 61 seconds",
  ]);
  assert.equal(
    readinessOf({ ...base, watches: [down, watch], now: 99_000 }).ready,
    true,
    "one healthy watch shows the API server is reachable",
  );
});

Deno.test("the health server answers probes on its path and readiness on readyz, on loopback", async () => {
  let ready = false;
  const server = await serveHealth({
    endpoint: "http://127.0.0.1:0/healthz",
    probes: () => Promise.resolve({ pod_count: 3, names: ["a"] }),
    readiness: () => ({ ready, reasons: ready ? [] : ["the operator is starting"] }),
  });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
    const live = await fetch(server.url);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { pod_count: 3, names: ["a"] });
    const notReady = await fetch(server.readyUrl);
    assert.equal(notReady.status, 503);
    assert.deepEqual(await notReady.json(), {
      ready: false,
      reasons: ["the operator is starting"],
    });
    ready = true;
    const readyNow = await fetch(server.readyUrl);
    assert.equal(readyNow.status, 200);
    await readyNow.body?.cancel();
    const missing = await fetch(server.url.replace("/healthz", "/other"));
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(server.url), "closed");
});

Deno.test("a failing probe makes the liveness endpoint answer 500", async () => {
  const server = await serveHealth({
    endpoint: "http://127.0.0.1:0/healthz",
    probes: () => Promise.reject(new Error("probe broke")),
    readiness: () => ({ ready: true, reasons: [] }),
  });
  try {
    const response = await fetch(server.url);
    assert.equal(response.status, 500);
    assert.deepEqual(await response.json(), { error: "probe broke" });
  } finally {
    await server.close();
  }
});

Deno.test("a port in use is an error at start", async () => {
  const first = await serveHealth({
    endpoint: "http://127.0.0.1:0/healthz",
    probes: () => Promise.resolve({}),
    readiness: () => ({ ready: true, reasons: [] }),
  });
  try {
    const port = new URL(first.url).port;
    await assert.rejects(
      serveHealth({
        endpoint: `http://127.0.0.1:${port}/healthz`,
        probes: () => Promise.resolve({}),
        readiness: () => ({ ready: true, reasons: [] }),
      }),
    );
  } finally {
    await first.close();
  }
});
