// The Event poster against the real API server: the Events it writes are accepted and stored as
// Kopf would write them, and aggregation really saves writes (counted by the apiserver itself).
//
// The transport is a plain `fetch` with the admin token: it keeps these tests about the poster,
// independent of the framework's own client.
import assert from "node:assert/strict";
import { EventPoster, type EventQuery, type EventTransport } from "../../src/kube/events.ts";
import { cluster, type Obj, type TestCluster } from "../support/cluster.ts";

class TransportError extends Error {
  constructor(readonly status: number, text: string, what: string) {
    super(`${what}: HTTP ${status}: ${text}`);
  }
}

function fetchTransport(c: TestCluster): EventTransport & { close(): void } {
  const client = Deno.createHttpClient({ caCerts: [c.caPem] });
  return {
    async request<T>(
      method: string,
      path: string,
      options: { body?: unknown; contentType?: string; query?: EventQuery; signal?: AbortSignal } =
        {},
    ): Promise<T> {
      const headers: Record<string, string> = {
        Authorization: `Bearer ${c.token}`,
        Accept: "application/json",
      };
      if (options.body !== undefined) {
        headers["Content-Type"] = options.contentType ?? "application/json";
      }
      const response = await fetch(`${c.server}${path}`, {
        method,
        headers,
        client,
        signal: options.signal,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
      const text = await response.text();
      if (!response.ok) throw new TransportError(response.status, text, `${method} ${path}`);
      return JSON.parse(text) as T;
    },
    close: () => client.close(),
  };
}

async function eventsAbout(c: TestCluster, namespace: string, uid: string): Promise<Obj[]> {
  const list = await c.api(
    "GET",
    `/api/v1/namespaces/${namespace}/events?fieldSelector=involvedObject.uid%3D${uid}`,
  );
  return list.items;
}

async function configMap(c: TestCluster, namespace: string, name: string): Promise<Obj> {
  return await c.api("POST", `/api/v1/namespaces/${namespace}/configmaps`, {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name },
  });
}

Deno.test("100 identical events for one object cost at most 2 writes and store count 100", async () => {
  const c = await cluster();
  const ns = await c.namespace("events-burst");
  const transport = fetchTransport(c);
  try {
    const owner = await configMap(c, ns, "owner");
    const poster = new EventPoster(transport, { updateInterval: 30 });
    const before = await c.metrics();

    // The first occurrence is written on its own, the other 99 arrive after it is stored:
    // the worst case for aggregation (one create, then only updates).
    poster.warn(owner, { reason: "Flapping", message: "The same thing happened again." });
    assert.equal(await poster.flush({ timeout: 30 }), true);
    for (let i = 0; i < 99; i++) {
      poster.warn(owner, { reason: "Flapping", message: "The same thing happened again." });
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(await poster.close({ timeout: 30 }), true);

    const delta = (await c.metrics()).since(before);
    const writes = delta.count({ verb: "POST", resource: "events" }) +
      delta.count({ verb: "PATCH", resource: "events" });
    assert.ok(writes >= 1 && writes <= 2, `events writes: ${writes}\n${delta}`);
    assert.deepEqual(poster.stats, {
      posted: 1,
      patched: 1,
      aggregated: 99,
      droppedRateLimited: 0,
      droppedQueueFull: 0,
      failed: 0,
      skipped: 0,
    });

    const events = await eventsAbout(c, ns, owner.metadata.uid);
    assert.equal(events.length, 1, JSON.stringify(events, null, 2));
    const [event] = events;
    assert.equal(event.count, 100);
    assert.equal(event.series?.count, 100);
    assert.equal(event.type, "Warning");
    assert.equal(event.reason, "Flapping");
    assert.equal(event.message, "The same thing happened again.");
    assert.match(event.metadata.name, /^kopf-event-/);
    assert.equal(event.source.component, "kopf");
    assert.equal(event.reportingComponent, "kopf");
    assert.equal(event.reportingInstance, "dev");
    assert.deepEqual(event.involvedObject, {
      apiVersion: "v1",
      kind: "ConfigMap",
      name: "owner",
      namespace: ns,
      uid: owner.metadata.uid,
    });
    assert.ok(Date.parse(event.lastTimestamp) >= Date.parse(event.firstTimestamp));
    assert.ok(event.eventTime, "eventTime is stored");
  } finally {
    transport.close();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a synchronous burst of identical events is a single create", async () => {
  const c = await cluster();
  const ns = await c.namespace("events-sync");
  const transport = fetchTransport(c);
  try {
    const owner = await configMap(c, ns, "owner");
    const poster = new EventPoster(transport);
    for (let i = 0; i < 100; i++) poster.info(owner, { reason: "Tick", message: "tick" });
    assert.equal(await poster.close({ timeout: 30 }), true);
    assert.equal(poster.stats.posted, 1);
    assert.equal(poster.stats.patched, 0);
    const events = await eventsAbout(c, ns, owner.metadata.uid);
    assert.equal(events.length, 1);
    assert.equal(events[0].count, 100);
  } finally {
    transport.close();
    await c.deleteNamespace(ns);
  }
});

Deno.test("the API server accepts every kind of event the poster writes", async () => {
  const c = await cluster();
  const ns = await c.namespace("events-kinds");
  const transport = fetchTransport(c);
  const cleanup: string[] = [];
  try {
    const owner = await configMap(c, ns, "owner");
    const namespaceObj = await c.api("GET", `/api/v1/namespaces/${ns}`);
    const poster = new EventPoster(transport, {
      reportingComponent: "kopf-tests",
      reportingInstance: "instance-1",
    });

    poster.info(owner, { reason: "Info", message: "an info" });
    poster.warn(owner, { reason: "Warn", message: "a warning" });
    poster.exception(owner, { message: "Handler failed:", exc: new RangeError("out of range") });
    poster.event(owner, { type: "Normal", reason: "Long", message: "ж".repeat(3000) });
    poster.event(owner, { type: "Normal", reason: "" });
    poster.info(namespaceObj, { reason: "ClusterScoped", message: "about a namespace" });
    assert.equal(await poster.close({ timeout: 30 }), true);
    assert.equal(poster.stats.failed, 0, "every write was accepted");
    assert.equal(poster.stats.posted, 6);

    const events = await eventsAbout(c, ns, owner.metadata.uid);
    const byReason = Object.fromEntries(events.map((e) => [e.reason, e]));
    assert.deepEqual(Object.keys(byReason).sort(), [
      "Info",
      "Long",
      "RangeError",
      "Unknown",
      "Warn",
    ]);
    assert.equal(byReason.Info.type, "Normal");
    assert.equal(byReason.Warn.type, "Warning");
    assert.equal(byReason.RangeError.type, "Error");
    assert.equal(byReason.RangeError.message, "Handler failed: out of range");
    assert.equal(byReason.Info.reportingComponent, "kopf-tests");
    assert.equal(byReason.Info.reportingInstance, "instance-1");
    assert.equal(byReason.Info.source.component, "kopf-tests");
    const long: string = byReason.Long.message;
    assert.ok(new TextEncoder().encode(long).length <= 1024);
    assert.match(long, /^ж+\.\.\.ж+$/);

    // Events about a cluster-scoped object live in "default", with a cluster-scoped reference.
    const clusterEvents = await eventsAbout(c, "default", namespaceObj.metadata.uid);
    cleanup.push(...clusterEvents.map((e) => e.metadata.name));
    assert.equal(clusterEvents.length, 1);
    assert.equal(clusterEvents[0].involvedObject.kind, "Namespace");
    assert.equal(clusterEvents[0].involvedObject.namespace, undefined);
  } finally {
    transport.close();
    for (const name of cleanup) {
      await c.api("DELETE", `/api/v1/namespaces/default/events/${name}`).catch(() => {});
    }
    await c.deleteNamespace(ns);
  }
});

Deno.test("an Event deleted before its update is created again with the full count", async () => {
  const c = await cluster();
  const ns = await c.namespace("events-gone");
  const transport = fetchTransport(c);
  try {
    const owner = await configMap(c, ns, "owner");
    const poster = new EventPoster(transport, { updateInterval: 0 });
    poster.info(owner, { reason: "Again", message: "again" });
    assert.equal(await poster.flush({ timeout: 30 }), true);
    const [first] = await eventsAbout(c, ns, owner.metadata.uid);
    await c.api("DELETE", `/api/v1/namespaces/${ns}/events/${first.metadata.name}`);

    poster.info(owner, { reason: "Again", message: "again" });
    assert.equal(await poster.close({ timeout: 30 }), true);
    assert.deepEqual(
      [poster.stats.posted, poster.stats.patched, poster.stats.failed],
      [2, 0, 0],
    );
    const events = await eventsAbout(c, ns, owner.metadata.uid);
    assert.equal(events.length, 1);
    assert.notEqual(events[0].metadata.name, first.metadata.name);
    assert.equal(events[0].count, 2);
  } finally {
    transport.close();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a rejected Event is logged and dropped, never thrown", async () => {
  const c = await cluster();
  const transport = fetchTransport(c);
  try {
    const poster = new EventPoster(transport);
    // The namespace does not exist: the API server answers 404 to the create.
    poster.info(
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "x", namespace: "no-such-namespace-kopf", uid: "u" },
      },
      { reason: "Nowhere", message: "nowhere" },
    );
    assert.equal(await poster.close({ timeout: 30 }), true);
    assert.equal(poster.stats.failed, 1);
    assert.equal(poster.stats.posted, 0);
  } finally {
    transport.close();
  }
});
