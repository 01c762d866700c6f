// Watches and a silently dead connection, against the real API server, with the client's default
// health check (30 s of silence, then 15 s for a probe):
//
// - An operator whose connection freezes (the freeze comes from the TCP relay in
//   tests/support/tcp_relay.ts: no bytes either way, no FIN/RST; new connections pass) handles an
//   object created after the freeze within 45 s and a margin, with every watch re-opened on a new
//   connection from its resourceVersion (no LIST), the handler called once and the usual writes.
//   Requests and watches have a connection each (watches are read on a thread of their own): the
//   watches' one is found dead, and the requests' one, idle, is dropped with it.
// - An informer on a resource without objects, through the fault proxy (which records every
//   request, probes included), stays silent-but-healthy for longer than the old 90 s idle timer:
//   no WARNING, no LIST, no re-opened watch, and the probes it made are counted on the wire.
import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { Informers } from "../../src/cache/informer.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { runOperator } from "../../src/reactor/running.ts";
import { cluster } from "../support/cluster.ts";
import { captureLogs, logs } from "../support/engine.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { TcpRelay } from "../support/tcp_relay.ts";
import { sleep, waitFor } from "../support/wait.ts";
import { countRequests, probeResource } from "../support/watch_fixtures.ts";

const c = await cluster();
await captureLogs();

/** The client's defaults: client-go's ReadIdleTimeout and PingTimeout. */
const READ_IDLE_S = 30;
const PING_S = 15;

Deno.test("watch (relay freeze, default 30+15 s): an object created after the freeze is handled within 45 s, watches re-opened on a new connection, no LIST", async () => {
  // A private CRD served in its non-preferred version, which the controller manager's namespace
  // deleter and garbage collector never list: every request counted for it is the operator's.
  const resource = await probeResource(c);
  const ns = await c.namespace("conn-watch");
  const create = (name: string) =>
    c.api("POST", resource.path(ns), {
      apiVersion: `${resource.group}/${resource.version}`,
      kind: resource.kind,
      metadata: { name },
    });
  const relay = await TcpRelay.start(c);
  const client = await KubeClient.connect({ kubeconfig: relay.kubeconfig });
  const calls: { name: string; at: number }[] = [];
  const registry = new kopf.Registry();
  registry.on.create(`${resource.group}/${resource.version}`, resource.plural, {
    id: "created",
  }, ({ name }) => {
    calls.push({ name: name!, at: performance.now() });
    return { seen: true };
  });
  const stop = new AbortController();
  const ready = Promise.withResolvers<void>();
  const done = runOperator({
    registry,
    namespaces: [ns],
    signal: stop.signal,
    ready: () => ready.resolve(),
  }, { client });
  await Promise.race([ready.promise, done]);
  const writes = (counts: Awaited<ReturnType<typeof c.metrics>>) =>
    countRequests(counts, resource, { verb: "PATCH" }) +
    countRequests(counts, resource, { verb: "PUT" });
  try {
    const mBefore = await c.metrics();
    await create("before");
    await waitFor(() => calls.length === 1, { message: "the object created before the freeze" });
    await sleep(2000); // its writes come back through the watch
    // What handling one object costs without any fault: the frozen connection may not add to it.
    const writesPerObject = writes((await c.metrics()).since(mBefore));
    assert.ok(writesPerObject >= 1);
    const watches = client.metrics.streams;
    assert.ok(watches >= 1);
    assert.equal(relay.stats.accepted, 2, "one connection for the requests, one for the watches");
    const m0 = await c.metrics();
    const logIndex = logs.length;

    const frozenAt = performance.now();
    assert.equal(relay.freeze(), 2);
    await create("after"); // straight to the API server, not through the relay
    await waitFor(() => client.metrics.deadConnections === 1, {
      timeout: READ_IDLE_S + PING_S + 10,
      message: "the connection to be found dead",
    });
    const deadAt = performance.now();
    await waitFor(() => calls.length === 2, {
      timeout: 20,
      message: "the object after the freeze",
    });
    const handledS = (calls[1].at - frozenAt) / 1000;
    const deadS = (deadAt - frozenAt) / 1000;

    assert.equal(calls[1].name, "after");
    // Dead at most 30 + 15 s after the last byte, which came before the freeze; then the watch
    // backoff (at most 0.8 s) and one round trip. 5 s of margin for a loaded machine.
    assert.ok(deadS <= READ_IDLE_S + PING_S + 2, `dead after ${deadS} s`);
    assert.ok(handledS <= READ_IDLE_S + PING_S + 5, `handled after ${handledS} s`);
    await waitFor(() => client.metrics.streams === 2 * watches, {
      message: `every one of ${watches} watches re-opened`,
    });
    await sleep(2000); // the handler's writes come back; nothing else may happen
    assert.equal(client.metrics.streams, 2 * watches, "each watch was re-opened exactly once");
    // The watches' connection was found dead; the requests' one, idle, was dropped with it.
    assert.equal(relay.stats.accepted, 4, "on new connections");
    assert.equal(client.metrics.deadConnections, 1, "one connection found dead");
    assert.equal(client.metrics.probes, 1, "one probe: the one that went unanswered");

    const counts = (await c.metrics()).since(m0);
    assert.equal(countRequests(counts, resource, { verb: "LIST" }), 0, "resumed, no relist");
    assert.equal(writes(counts), writesPerObject, `the writes of 'after' only:\n${counts}`);
    assert.deepEqual(calls.map((x) => x.name), ["before", "after"], "one call per object");
    const warnings = logs.slice(logIndex).filter((l) => l.level === "warning");
    assert.equal(warnings.length, 1, warnings.map((w) => w.message).join("\n"));
    assert.match(
      warnings[0].message,
      /^The connection to https:\/\/127\.0\.0\.1:\d+ is dead \(nothing received for \d+(\.\d)? s, no answer to a probe within 15 s\): replaced by a new one; 0 request\(s\) and \d+ watch\(es\) in flight on it fail over\.$/,
    );
  } finally {
    stop.abort();
    await done;
    client.close();
    await relay.close();
    // The operator's finalizers would hold the namespace and the CRD in Terminating.
    for (const name of ["before", "after"]) {
      await c.api("PATCH", `${resource.path(ns)}/${name}`, { metadata: { finalizers: null } }, {
        contentType: "application/merge-patch+json",
      }).catch(() => {});
    }
    await c.deleteNamespace(ns);
    await resource.drop();
  }
});

Deno.test("watch (fault proxy, default 30+15 s): an idle informer on an empty resource for 100 s — no WARNING, no LIST, no re-open, probes counted", async () => {
  const resource = await probeResource(c);
  const ns = await c.namespace("conn-idle");
  const proxy = await FaultProxy.start(c);
  const client = await KubeClient.connect({ kubeconfig: proxy.kubeconfig });
  const informers = new Informers(client);
  try {
    const informer = informers.get(resource, { namespace: ns });
    const events: string[] = [];
    const subscription = informer.subscribe((event) => void events.push(event.type));
    await informer.waitForSync(AbortSignal.timeout(60_000));
    const m0 = await c.metrics();
    const logIndex = logs.length;
    const requestIndex = proxy.requests.length;
    const startedAt = performance.now();

    const windowS = 100; // longer than the old 90 s idle timer
    await sleep(windowS * 1000);
    const elapsedS = (performance.now() - startedAt) / 1000;

    const requests = proxy.requests.slice(requestIndex);
    const probesOnWire = requests.filter((r) => r.method === "GET" && r.path === "/version");
    const others = requests.filter((r) => r.path !== "/version");
    assert.deepEqual(others.map((r) => `${r.method} ${r.path}`), [], "no request but probes");
    const counts = (await c.metrics()).since(m0);
    assert.equal(countRequests(counts, resource, { verb: "LIST" }), 0, "no LIST");
    const stats = informer.stats!;
    assert.equal(stats.watches, 1, "the watch was never re-opened");
    assert.equal(stats.errors, 0);
    // Bookmarks may or may not have come: on the test plane the first one for a non-storage
    // version of an empty CRD comes after about 120 s, later than the old 90 s idle timer.
    assert.equal(informer.healthy, true);
    const warnings = logs.slice(logIndex).filter((l) => l.level === "warning");
    assert.deepEqual(warnings.map((w) => w.message), [], "no WARNING");

    // Every probe the client counts went over the wire, and at most one per 30 s of silence.
    const probes = client.metrics.probes;
    assert.equal(probesOnWire.length, probes);
    assert.ok(probes >= 1, "a bookmark a minute leaves 30 s silences: probed at least once");
    assert.ok(probes <= Math.floor(elapsedS / READ_IDLE_S), `${probes} probes in ${elapsedS} s`);
    assert.equal(client.metrics.deadConnections, 0);
    assert.deepEqual(events, ["SYNCED"], "nothing but the empty listing");
    subscription.unsubscribe();
  } finally {
    await informers.stop();
    client.close();
    await proxy.close();
    await c.deleteNamespace(ns);
    await resource.drop();
  }
});
