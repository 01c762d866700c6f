// The list/watch loop and informer against the real API server, with faults the server will not
// make on demand injected by the fault proxy (tests/support/fault_proxy.ts): cut streams, 410
// Gone, silent streams and 429 storms. Each test writes while the fault is active and then checks
// that the cache equals the server's final state, that no object's states were seen out of order
// or twice, and, from the API server's own /metrics, how many LISTs actually reached it.
import assert from "node:assert/strict";
import { type Informer, Informers, type InformersOptions } from "../../src/cache/informer.ts";
import { cluster, type TestCluster } from "../support/cluster.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { waitFor } from "../support/wait.ts";
import {
  assertOrdered,
  Churn,
  connect,
  countRequests,
  logIfAsked,
  type ProbeResource,
  probeResource,
  Seen,
  waitForSameState,
} from "../support/watch_fixtures.ts";

interface Setup extends AsyncDisposable {
  c: TestCluster;
  resource: ProbeResource;
  namespace: string;
  proxy: FaultProxy;
  informer: Informer;
  seen: Seen;
  churn: Churn;
  /** Matches requests for the probe resource (to aim faults at them). */
  path: RegExp;
  /** LIST requests for the probe resource in the namespace, as counted by the API server. */
  lists(): Promise<number>;
}

async function setup(
  name: string,
  options: InformersOptions & { before?: (s: Omit<Setup, "informer" | "seen">) => Promise<void> } =
    {},
): Promise<Setup> {
  await logIfAsked();
  const c = await cluster();
  const resource = await probeResource(c);
  const namespace = await c.namespace(name);
  const proxy = await FaultProxy.start(c);
  const transport = await connect(proxy.kubeconfig);
  const churn = new Churn(c, resource, namespace);
  const path = new RegExp(`/${resource.plural}(/|\\?|$)`);
  const m0 = await c.metrics();
  const lists = async () =>
    countRequests((await c.metrics()).since(m0), resource, { verb: "LIST", scope: "namespace" });
  const { before, ...informerOptions } = options;
  const partial = {
    c,
    resource,
    namespace,
    proxy,
    churn,
    path,
    lists,
    [Symbol.asyncDispose]: async () => {},
  };
  await before?.(partial);
  const informers = new Informers(transport, {
    backoff: { initialMs: 200, maxMs: 1000 },
    ...informerOptions,
  });
  const informer = informers.get(resource, { namespace });
  const seen = new Seen();
  const subscription = informer.subscribe(seen.listener);
  await informer.waitForSync(AbortSignal.timeout(60_000));
  await waitFor(() => proxy.openWatches(path) === 1, { message: "the watch to be open" });
  return {
    ...partial,
    informer,
    seen,
    [Symbol.asyncDispose]: async () => {
      subscription.unsubscribe();
      await informers.stop();
      transport.close();
      await proxy.close();
      await c.deleteNamespace(namespace);
      await resource.drop();
    },
  };
}

Deno.test("watch: cut streams (fault proxy) resume from the last resourceVersion, no relist, nothing lost or reordered", async () => {
  await using s = await setup("watch-cut", {
    before: async ({ churn }) => void await churn.create(5),
  });
  assert.equal(s.informer.store.size, 5);
  const listsAfterSync = await s.lists();
  assert.equal(listsAfterSync, 1, "the initial listing is one LIST");

  // The next three watches are reset after 3 events each, and the open one is closed now.
  s.proxy.cutWatches({ afterEvents: 3, count: 3, mode: "reset", match: { path: s.path } });
  assert.equal(s.proxy.cutOpenWatches("close"), 1);
  let living = [...s.churn.history.keys()];
  for (let round = 0; round < 4; round++) living = await s.churn.round(3, living);

  await waitForSameState(() => s.informer.store.values(), s.churn);
  assertOrdered(s.seen, s.churn);
  assert.equal(s.proxy.pendingFaults, 0, "every armed cut fired");
  assert.equal(await s.lists(), listsAfterSync, "no LIST after cut streams");
  assert.equal(s.informer.stats?.relists, 0);
  assert.ok(s.informer.stats!.reconnects >= 4, `reconnects: ${s.informer.stats!.reconnects}`);
});

Deno.test("watch: a 410 ERROR event (fault proxy) makes exactly one relist that reports objects deleted meanwhile", async () => {
  await using s = await setup("watch-gone");
  const names = await s.churn.create(6);
  await waitForSameState(() => s.informer.store.values(), s.churn);
  const listsBefore = await s.lists();

  // Lock the client out (503 for every request of the resource), tell its open watch 410 Gone,
  // change things while it cannot see them, then let it back in.
  s.proxy.reply(503, { count: 1_000_000, match: { path: s.path } });
  assert.equal(s.proxy.cutOpenWatches("gone"), 1);
  await waitFor(() => s.proxy.seen({ path: s.path, watch: false }).some((r) => r.status === 503), {
    message: "the client to try re-listing",
  });
  await s.churn.delete(names.slice(0, 3));
  await s.churn.update(names.slice(3, 5));
  const added = await s.churn.create(2);
  s.proxy.clearFaults();

  await waitForSameState(() => s.informer.store.values(), s.churn);
  assertOrdered(s.seen, s.churn);
  for (const name of names.slice(0, 3)) {
    assert.equal(s.seen.perObject.get(name)?.at(-1), "DELETED", `${name} reported deleted`);
  }
  assert.equal(
    s.seen.perObject.get(names[5])?.length,
    1,
    "an unchanged object is not re-announced",
  );
  for (const name of added) assert.equal(s.seen.perObject.get(name)?.length, 1);
  assert.equal(await s.lists() - listsBefore, 1, "exactly one relist reached the server");
  assert.equal(s.informer.stats?.relists, 1);
  assert.equal(s.seen.relists, 1);
});

Deno.test("watch: an HTTP 410 answer to a re-watch (fault proxy) makes exactly one relist", async () => {
  await using s = await setup("watch-gone-http");
  const names = await s.churn.create(3);
  await waitForSameState(() => s.informer.store.values(), s.churn);
  const listsBefore = await s.lists();

  s.proxy.goneWatches({ as: "http", match: { path: s.path } });
  assert.equal(s.proxy.cutOpenWatches("close"), 1);
  await waitFor(() => s.informer.stats!.relists === 1, { message: "a relist" });
  await s.churn.update(names);
  await s.churn.delete(names.slice(0, 1));

  await waitForSameState(() => s.informer.store.values(), s.churn);
  assertOrdered(s.seen, s.churn);
  assert.ok(s.proxy.requests.some((r) => r.fault === "reply 410"));
  assert.equal(await s.lists() - listsBefore, 1, "exactly one relist reached the server");
});

Deno.test("watch: a silent stream (fault proxy) is dropped by the idle timer and resumed without a relist", async () => {
  await using s = await setup("watch-silent", { idleTimeoutMs: 2000 });
  const names = await s.churn.create(3);
  await waitForSameState(() => s.informer.store.values(), s.churn);
  const listsBefore = await s.lists();
  const watchesBefore = s.informer.stats!.watches;

  assert.equal(s.proxy.silenceOpenWatches(), 1);
  await s.churn.update(names);
  await s.churn.delete(names.slice(0, 1));
  await s.churn.create(2);

  await waitForSameState(() => s.informer.store.values(), s.churn);
  assertOrdered(s.seen, s.churn);
  assert.ok(s.informer.stats!.watches > watchesBefore, "the silent watch was replaced");
  assert.equal(await s.lists(), listsBefore, "no LIST after a silent stream");
  assert.equal(s.informer.stats?.relists, 0);
});

Deno.test("watch: a 429 storm (fault proxy) during the listing and the watch is waited out, nothing lost, no relist", async () => {
  await using s = await setup("watch-429", {
    before: async ({ proxy, path, churn }) => {
      await churn.create(2);
      proxy.reply(429, { count: 3, retryAfter: 1, match: { path } });
    },
  });
  const lists429 = s.proxy.seen({ path: s.path }).filter((r) => r.status === 429).length;
  assert.equal(lists429, 3, "the initial listing met the storm");
  const listsAfterSync = await s.lists();
  assert.equal(listsAfterSync, 1, "the 429s never reached the server");

  s.proxy.reply(429, { count: 4, retryAfter: 1, match: { path: s.path } });
  assert.equal(s.proxy.cutOpenWatches("reset"), 1);
  let living = [...s.churn.history.keys()];
  for (let round = 0; round < 3; round++) living = await s.churn.round(2, living);

  await waitForSameState(() => s.informer.store.values(), s.churn);
  assertOrdered(s.seen, s.churn);
  assert.equal(s.proxy.pendingFaults, 0);
  assert.equal(await s.lists(), listsAfterSync, "a 429 on a watch is no reason to relist");
  assert.equal(s.informer.stats?.relists, 0);
  // The client retries 429s of plain requests itself; those of watch requests reach the loop.
  assert.ok(s.informer.stats!.errors >= 5, `errors: ${s.informer.stats!.errors}`);
});

Deno.test("watch: an idle, healthy informer makes no requests over a window", async () => {
  await using s = await setup("watch-idle");
  await s.churn.create(2);
  await waitForSameState(() => s.informer.store.values(), s.churn);
  const listsBefore = await s.lists();
  const stats = { ...s.informer.stats! };
  const requestsBefore = s.proxy.requests.length;

  await new Promise((resolve) => setTimeout(resolve, 8000)); // the observation window

  assert.equal(
    await s.lists(),
    listsBefore,
    "no LIST while idle: " +
      s.proxy.requests.map((r) => `${r.method} ${r.path} ${JSON.stringify(r.query)} ${r.status}`)
        .join("\n"),
  );
  assert.equal(s.proxy.requests.length, requestsBefore, "no request of any kind while idle");
  assert.equal(s.informer.stats!.watches, stats.watches);
  assert.equal(s.informer.healthy, true);
});

Deno.test("watch (streaming list): a 410 ERROR event (fault proxy) makes exactly one streaming relist and no LIST", async () => {
  await using s = await setup("watch-gone-stream", { initialSync: "stream" });
  const streamingLists = () =>
    s.proxy.seen({ path: s.path, watch: true }).filter((r) =>
      r.query.sendInitialEvents === "true" && r.status === 200
    ).length;
  assert.equal(streamingLists(), 1, "the initial sync was a streaming list");
  assert.equal(await s.lists(), 0, "and no LIST");
  const names = await s.churn.create(4);
  await waitForSameState(() => s.informer.store.values(), s.churn);

  s.proxy.reply(503, { count: 1_000_000, match: { path: s.path } });
  assert.equal(s.proxy.cutOpenWatches("gone"), 1);
  await waitFor(() => s.proxy.seen({ path: s.path }).some((r) => r.status === 503), {
    message: "the client to try re-listing",
  });
  await s.churn.delete(names.slice(0, 2));
  await s.churn.update(names.slice(2, 3));
  s.proxy.clearFaults();

  await waitForSameState(() => s.informer.store.values(), s.churn);
  assertOrdered(s.seen, s.churn);
  for (const name of names.slice(0, 2)) {
    assert.equal(s.seen.perObject.get(name)?.at(-1), "DELETED", `${name} reported deleted`);
  }
  assert.equal(
    s.seen.perObject.get(names[3])?.length,
    1,
    "an unchanged object is not re-announced",
  );
  assert.equal(streamingLists(), 2, "exactly one streaming relist reached the server");
  assert.equal(await s.lists(), 0, "no LIST at all");
  assert.equal(s.informer.stats?.relists, 1);
});
