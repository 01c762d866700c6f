// Daemons and timers against the real API server: spawned per object, stopped on deletion (with
// and without a finalizer), on filter mismatch and at operator exit; results written; an idle
// timer or daemon makes no writes (counted by the apiserver's own /metrics).

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import {
  createObject,
  getObject,
  objectMessages,
  startOperator,
  stripFinalizers,
  testResource,
  writesTo,
} from "../support/engine.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "enginedaemons");
const FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";

function patchLabels(ns: string, name: string, labels: Record<string, string | null>) {
  return c.api("PATCH", res.path(ns, name), { metadata: { labels } }, {
    contentType: "application/merge-patch+json",
  });
}

Deno.test("a daemon asking for cleanup time holds a finalizer and is stopped promptly on deletion", async () => {
  const ns = await c.namespace("daemon-del");
  const registry = new kopf.Registry();
  const seen: string[] = [];
  registry.daemon(
    res.plural,
    { id: "watcher", cancellationBackoff: 5 },
    async ({ stopped, patch }) => {
      seen.push("started");
      patch.status.watching = true; // written after the daemon exits
      await stopped.wait();
      seen.push(`stopped:${stopped.reason}`);
    },
  );
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "d1");
    await waitFor(async () => (await getObject(c, res, ns, "d1"))?.metadata.finalizers?.[0], {
      message: "the finalizer",
    });
    assert.deepEqual((await getObject(c, res, ns, "d1"))?.metadata.finalizers, [FINALIZER]);
    await waitFor(() => seen.includes("started"), { message: "the daemon to start" });
    const t0 = Date.now();
    await c.api("DELETE", res.path(ns, "d1"));
    await waitFor(async () => (await getObject(c, res, ns, "d1")) === null, {
      timeout: 30,
      message: "the object to be deleted",
    });
    const latency = Date.now() - t0;
    assert.deepEqual(seen, ["started", "stopped:resource-deleted"]);
    console.log(`deletion with a daemon (finalizer) took ${latency} ms`);
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("a daemon without cleanup options adds no finalizer and stops when the object is gone", async () => {
  const ns = await c.namespace("daemon-nofin");
  const registry = new kopf.Registry();
  const seen: string[] = [];
  // Kopf's rule: without `cancellationTimeout` a daemon is asked to stop (`stopped`), never
  // cancelled — its `signal` stays usable for the requests it makes on its way out.
  registry.daemon(res.plural, { id: "plain" }, async ({ stopped, signal }) => {
    seen.push("started");
    await stopped.wait();
    seen.push(`stopped:${stopped.reason}:aborted=${signal.aborted}`);
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "d2");
    await waitFor(() => seen.includes("started"), { message: "the daemon to start" });
    await sleep(1000);
    assert.deepEqual((await getObject(c, res, ns, "d2"))?.metadata.finalizers ?? [], []);
    await c.api("DELETE", res.path(ns, "d2"));
    await waitFor(() => seen.length === 2, { message: "the daemon to be stopped" });
    assert.deepEqual(seen, ["started", "stopped:resource-deleted:aborted=false"]);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a daemon that returns stores its result, is not restarted, and releases its finalizer", async () => {
  const ns = await c.namespace("daemon-done");
  const registry = new kopf.Registry();
  let calls = 0;
  registry.daemon(res.plural, { id: "once", requiresFinalizer: true }, ({ retry }) => {
    calls += 1;
    if (retry < 2) throw new kopf.TemporaryError("not yet", { delay: 0.2 });
    return { done: true, retry };
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "d3");
    const obj = await waitFor(async () => {
      const o = await getObject(c, res, ns, "d3");
      return o?.status?.once?.done && !(o.metadata.finalizers?.length) && o;
    }, { message: "the result and the finalizer released" });
    assert.deepEqual(obj.status.once, { done: true, retry: 2 });
    await patchLabels(ns, "d3", { touched: "yes" });
    await sleep(1500);
    assert.equal(calls, 3, "not restarted after it returned");
    const messages = objectMessages("d3", ns);
    assert.ok(messages.includes("Daemon 'once' failed temporarily: not yet"), messages.join("\n"));
    assert.ok(
      messages.includes("Removing the finalizer, as there are no handlers requiring it."),
      messages.join("\n"),
    );
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("a daemon stops when its object stops matching and restarts when it matches again", async () => {
  const ns = await c.namespace("daemon-filter");
  const registry = new kopf.Registry();
  const seen: string[] = [];
  // The label filter is a callback: it cannot go to the server, so the object stays watched.
  registry.daemon(res.plural, {
    id: "filtered",
    labels: { run: (value: string | undefined) => value === "yes" },
  }, async ({ stopped }) => {
    seen.push("start");
    await stopped.wait();
    seen.push(`stop:${stopped.reason}`);
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "d4", {}, { labels: { run: "yes" } });
    await waitFor(() => seen.length === 1, { message: "the first start" });
    await patchLabels(ns, "d4", { run: "no" });
    await waitFor(() => seen.length === 2, { message: "the stop" });
    await patchLabels(ns, "d4", { run: "yes" });
    await waitFor(() => seen.length === 3, { message: "the restart" });
    assert.deepEqual(seen, ["start", "stop:filters-mismatch", "start"]);
  } finally {
    await operator.stop();
    assert.equal(seen.at(-1), "stop:operator-exiting");
    await c.deleteNamespace(ns);
  }
});

Deno.test("idle timers and daemons make no API writes when nothing changes", async () => {
  const ns = await c.namespace("timer-idle");
  const registry = new kopf.Registry();
  let ticks = 0;
  registry.timer(res.plural, { id: "same", interval: 0.3 }, ({ patch }) => {
    ticks += 1;
    patch.metadata.labels["example.com/checked"] = "yes";
    return { state: "steady" };
  });
  registry.daemon(res.plural, { id: "loop" }, async ({ stopped, patch }) => {
    patch.status.daemon = "running";
    await stopped.wait();
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    for (const name of ["t1", "t2"]) await createObject(c, res, ns, name);
    for (const name of ["t1", "t2"]) {
      await waitFor(async () => {
        const o = await getObject(c, res, ns, name);
        return o?.status?.same?.state === "steady" &&
          o.metadata.labels?.["example.com/checked"] === "yes";
      }, { message: `the timer's first writes on ${name}` });
    }
    await sleep(1000); // our own writes come back through the watch
    const m0 = await c.metrics();
    const ticks0 = ticks;
    await sleep(5000);
    const counts = (await c.metrics()).since(m0);
    assert.ok(ticks - ticks0 >= 20, `the timers kept ticking: ${ticks - ticks0}`);
    assert.equal(writesTo(counts, res), 0, `writes while idle:\n${counts}`);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a timer's changing results are written, one write per change", async () => {
  const ns = await c.namespace("timer-change");
  const registry = new kopf.Registry();
  let n = 0;
  registry.timer(res.plural, { id: "counter", interval: 0.2 }, () => ({ value: Math.min(++n, 5) }));
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const m0 = await c.metrics();
    await createObject(c, res, ns, "t3");
    await waitFor(async () => (await getObject(c, res, ns, "t3"))?.status?.counter?.value === 5, {
      message: "the counter to reach 5",
    });
    await sleep(2000);
    const counts = (await c.metrics()).since(m0);
    assert.equal(
      counts.count({ verb: "PATCH", resource: res.plural, subresource: "status" }),
      5,
      `${counts}`,
    );
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("the operator's stop waits for daemons within their cancellation settings", async () => {
  const ns = await c.namespace("daemon-exit");
  const registry = new kopf.Registry();
  const seen: string[] = [];
  registry.daemon(res.plural, { id: "slowexit", cancellationBackoff: 1 }, async ({ stopped }) => {
    await stopped.wait();
    await sleep(300); // cleans up
    seen.push(`exited:${stopped.reason}`);
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  await createObject(c, res, ns, "d5");
  await waitFor(async () => (await getObject(c, res, ns, "d5"))?.metadata.finalizers?.length, {
    message: "the finalizer",
  });
  await operator.stop();
  // Signalled after the request, within its backoff: both reasons, as Kopf's combined flags.
  assert.deepEqual(seen, ["exited:operator-exiting|daemon-signalled"]);
  // The finalizer stays: the object is still served by whoever runs next.
  assert.deepEqual((await getObject(c, res, ns, "d5"))?.metadata.finalizers, [FINALIZER]);
  await stripFinalizers(c, res, ns);
  await c.deleteNamespace(ns);
});
