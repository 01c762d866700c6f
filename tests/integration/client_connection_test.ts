// Writes in flight on a connection that dies silently, against the real API server. The freeze
// comes from the TCP relay (tests/support/tcp_relay.ts) between the client and the server: every
// open connection stops carrying bytes in both directions, without FIN or RST, while new
// connections pass. The client's health check (test-short timers here: 1 s of silence, 1 s for
// the probe) must find the connection dead, fail the write over to a new connection (a merge
// patch is retried, a create is not), and say so in one WARNING line naming the object.
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.ts";
import { ConnectionError } from "../../src/kube/errors.ts";
import type { Resource } from "../../src/kube/resource.ts";
import { cluster } from "../support/cluster.ts";
import { captureLogs, createObject, logs, testResource } from "../support/engine.ts";
import { TcpRelay } from "../support/tcp_relay.ts";

const c = await cluster();
await captureLogs();
const res = await testResource(c, "connprobes");
const resource: Resource = {
  group: res.group,
  version: res.version,
  plural: res.plural,
  kind: res.kind,
  singular: res.plural.replace(/s$/, ""),
  shortcuts: [],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
  subresources: ["status"],
};
const READ_IDLE_MS = 1000;
const PING_MS = 1000;

function warningsSince(index: number): string[] {
  return logs.slice(index).filter((l) => l.level === "warning").map((l) => l.message);
}

/** Writes to the test resource counted by the API server since `before`, by verb/subresource. */
async function writes(before: Awaited<ReturnType<typeof c.metrics>>) {
  const counts = (await c.metrics()).since(before);
  return {
    statusPatches: counts.count({ verb: "PATCH", resource: res.plural, subresource: "status" }),
    creates: counts.count({ verb: "POST", resource: res.plural }),
  };
}

async function setup() {
  const relay = await TcpRelay.start(c);
  const client = await KubeClient.connect({
    kubeconfig: relay.kubeconfig,
    readIdleTimeoutMs: READ_IDLE_MS,
    pingTimeoutMs: PING_MS,
    backoff: { initialMs: 100, factor: 2, maxMs: 1000 },
  });
  const ns = await c.namespace("conn");
  return {
    relay,
    client,
    ns,
    async [Symbol.asyncDispose]() {
      client.close();
      await relay.close();
      await c.deleteNamespace(ns);
    },
  };
}

Deno.test("connection (relay freeze): a /status patch in flight fails over within readIdle+ping, retried once, one WARNING", async () => {
  await using s = await setup();
  await createObject(c, res, s.ns, "kex1", { size: 1 });
  // One connection carries everything: the freeze catches the write on it.
  await s.client.get(resource, "kex1", { namespace: s.ns });
  assert.equal(s.relay.stats.accepted, 1);
  const m0 = await c.metrics();
  const logIndex = logs.length;

  const frozenAt = performance.now();
  assert.equal(s.relay.freeze(), 1, "the client's one connection is frozen");
  const patched = await s.client.patch<{ status?: { phase?: string } }>(resource, "kex1", {
    status: { phase: "done" },
  }, {
    namespace: s.ns,
    subresource: "status",
  });
  const recoveredMs = performance.now() - frozenAt;

  assert.equal(patched.status?.phase, "done");
  // Dead after 1 s of silence and 1 s without an answer to the probe; the retry's first pause
  // is at most 100 ms. 1.5 s of margin for a loaded machine.
  assert.ok(recoveredMs >= READ_IDLE_MS + PING_MS, `recovered after ${recoveredMs} ms`);
  assert.ok(recoveredMs < READ_IDLE_MS + PING_MS + 1500, `recovered after ${recoveredMs} ms`);
  assert.equal(s.client.metrics.deadConnections, 1);
  assert.equal(s.client.metrics.probes, 1);
  assert.equal(s.relay.stats.accepted, 2, "the retry went over a new connection");
  // The frozen attempt never reached the server (the relay held it): exactly one PATCH did.
  assert.deepEqual(await writes(m0), { statusPatches: 1, creates: 0 });
  const object = await c.api("GET", res.path(s.ns, "kex1"));
  assert.equal(object.status?.phase, "done");

  const warnings = warningsSince(logIndex);
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.match(
    warnings[0],
    /^The connection to https:\/\/127\.0\.0\.1:\d+ is dead \(nothing received for 1 s, no answer to a probe within 1 s\): replaced by a new one; 1 request\(s\) and 0 watch\(es\) in flight on it fail over\.$/,
  );
  assert.equal(
    warnings[1].replace(/127\.0\.0\.1:\d+/, "HOST").replace(/in \d+ ms/, "in N ms"),
    `PATCH ${res.plural}.${res.group}/status ${s.ns}/kex1: the connection to HOST was dead: ` +
      "nothing received for 1 s, no answer to a probe within 1 s; retry 1/8 in N ms.",
  );
});

Deno.test("connection (relay freeze): a create in flight is abandoned with a WARNING naming the object, never sent twice", async () => {
  await using s = await setup();
  await s.client.list(resource, { namespace: s.ns });
  const m0 = await c.metrics();
  const logIndex = logs.length;

  const frozenAt = performance.now();
  assert.equal(s.relay.freeze(), 1);
  const error = await s.client.create(resource, {
    metadata: { name: "kex2", namespace: s.ns },
    spec: { size: 2 },
  }).catch((e) => e);
  const failedMs = performance.now() - frozenAt;

  assert.ok(error instanceof ConnectionError, String(error));
  assert.equal(error.dead, true);
  assert.equal(error.maybeSent, true);
  assert.equal(error.attempts, 1);
  assert.ok(failedMs < READ_IDLE_MS + PING_MS + 1500, `failed after ${failedMs} ms`);
  assert.deepEqual(await writes(m0), { statusPatches: 0, creates: 0 });

  const warnings = warningsSince(logIndex);
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.equal(
    warnings[1].replace(/127\.0\.0\.1:\d+/, "HOST"),
    `POST ${res.plural}.${res.group} ${s.ns}/kex2: the connection to HOST was dead: nothing ` +
      "received for 1 s, no answer to a probe within 1 s; not retried: a POST is not idempotent " +
      "and may have been applied.",
  );

  // The client goes on over its new connection.
  const created = await s.client.create(resource, {
    metadata: { name: "kex3", namespace: s.ns },
  });
  assert.equal(created.metadata?.name, "kex3");
  assert.equal(s.relay.stats.accepted, 2);
  assert.deepEqual(await writes(m0), { statusPatches: 0, creates: 1 });
});

Deno.test("connection (relay freeze, node:https for skip-verify): a read in flight on a frozen socket ends at its deadline and is retried on a new socket", async () => {
  // HTTP/1.1 gives each request its own socket, and the probe takes a new one when none is
  // free: it is answered, so it cannot vouch for the frozen socket (documented in
  // src/kube/_transport.ts). What bounds such a request is its per-verb deadline.
  const relay = await TcpRelay.start(c);
  const kubeconfig = `${relay.kubeconfig}.insecure`;
  const text = await Deno.readTextFile(relay.kubeconfig);
  await Deno.writeTextFile(
    kubeconfig,
    text.replace(/certificate-authority-data: .*/, "insecure-skip-tls-verify: true"),
  );
  const client = await KubeClient.connect({
    kubeconfig,
    readIdleTimeoutMs: READ_IDLE_MS,
    pingTimeoutMs: PING_MS,
    readTimeoutMs: 3000,
    backoff: { initialMs: 100, factor: 2, maxMs: 1000 },
  });
  try {
    assert.equal(client.checksConnections, false, "watches keep their idle timer");
    await client.request("GET", "/api/v1/namespaces/default");
    assert.equal(relay.stats.accepted, 1);
    const frozenAt = performance.now();
    assert.equal(relay.freeze(), 1, "the agent's one kept-alive socket is frozen");
    const namespace = await client.request<{ metadata: { name: string } }>(
      "GET",
      "/api/v1/namespaces/default",
    );
    const recoveredMs = performance.now() - frozenAt;
    assert.equal(namespace.metadata.name, "default");
    assert.ok(recoveredMs >= 3000 && recoveredMs < 3000 + 1500, `recovered in ${recoveredMs} ms`);
    assert.equal(client.metrics.deadConnections, 0, "the probe on a new socket was answered");
    assert.ok(client.metrics.probes >= 1, "probed after 1 s of silence");
    assert.ok(relay.stats.accepted >= 2, "the retry (and the probe) used new sockets");
  } finally {
    client.close();
    await relay.close();
  }
});
