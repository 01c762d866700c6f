// Settings that change what the operator does, on the real API server: each one is acted upon
// (Kopf's settings reference, "Configuration": execution, watching), counted, not assumed.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import {
  createObject,
  logs,
  objectMessages,
  startOperator,
  testResource,
} from "../support/engine.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "kopfsettings");

/** Handlers of `count` objects, each sleeping `ms`; the most calls seen in progress at once. */
async function peakConcurrency(maxWorkers: number | null, count: number): Promise<number> {
  const ns = await c.namespace("settings-workers");
  const registry = new kopf.Registry();
  let running = 0;
  let peak = 0;
  let done = 0;
  registry.on.create(res.plural, { id: "slow" }, async () => {
    peak = Math.max(peak, ++running);
    await sleep(300);
    running--;
    done++;
  });
  const settings = new kopf.Settings();
  settings.execution.maxWorkers = maxWorkers;
  for (let i = 0; i < count; i++) await createObject(c, res, ns, `o${i}`);
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  try {
    await waitFor(() => done >= count, { message: `${count} handler calls`, timeout: 30 });
    return peak;
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
}

// Kopf's `settings.execution.max_workers` bounds its pool of handler threads; here it bounds the
// calls in progress over all objects.
Deno.test("execution.maxWorkers bounds the handler calls in progress over all objects", async () => {
  assert.equal(await peakConcurrency(2, 8), 2);
  // Without it, the same objects are handled side by side (so the bound above is the setting's).
  assert.ok(await peakConcurrency(null, 8) > 2);
});

// Sub-handlers run in their parent's slot: with one worker, a parent awaiting kopf.execute()
// must not wait forever for a second slot.
Deno.test("execution.maxWorkers = 1: a parent awaiting its sub-handlers does not deadlock", async () => {
  const ns = await c.namespace("settings-one-worker");
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create(res.plural, { id: "parent" }, async () => {
    await kopf.execute({ fns: { a: () => void calls.push("a"), b: () => void calls.push("b") } });
    calls.push("after");
  });
  const settings = new kopf.Settings();
  settings.execution.maxWorkers = 1;
  settings.execution.lifecycle = kopf.lifecycles.allAtOnce;
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "nested");
    await waitFor(() => calls.includes("after"), { message: "the parent to finish" });
    assert.deepEqual(calls, ["a", "b", "after"]);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// A synchronous handler blocks every other object (Kopf would run it in a thread): the operator
// says so, naming the handler and the remedy — for a sync handler, and for an async one that
// blocks after its first await (found by the lag probe).
Deno.test("execution.stallThreshold: a handler blocking the event loop gets a WARNING naming it", async () => {
  const ns = await c.namespace("settings-stall");
  const registry = new kopf.Registry();
  const block = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until) { /* busy */ }
  };
  registry.on.create(res.plural, { id: "blocking", field: "spec.sync" }, () => block(1200));
  registry.on.create(res.plural, { id: "later", field: "spec.late" }, async () => {
    await sleep(10);
    block(1200);
  });
  registry.on.create(res.plural, { id: "quick", field: "spec.quick" }, () => block(100));
  const settings = new kopf.Settings();
  settings.execution.stallThreshold = 0.5;
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  try {
    // One at a time, so that each stall is one object's.
    for (
      const [name, spec] of [["sync", { sync: true }], ["late", { late: true }], ["quick", {
        quick: true,
      }]] as const
    ) {
      await createObject(c, res, ns, name, spec);
      await waitFor(() => objectMessages(name, ns).some((m) => /Creation is processed/.test(m)), {
        message: `${name} to be handled`,
      });
    }
    await sleep(500);
    const sync = objectMessages("sync", ns).filter((m) => m.includes("blocked the event loop"));
    assert.equal(sync.length, 1, sync.join("\n"));
    assert.match(
      sync[0],
      /Handler 'blocking\/spec\.sync' blocked the event loop for 1\.\d s .*Worker/,
    );
    const late = objectMessages("late", ns).filter((m) => m.includes("event loop was blocked"));
    assert.equal(late.length, 1, objectMessages("late", ns).join("\n"));
    assert.match(
      late[0],
      /blocked for 1\.\d s while these calls were in progress: Handler 'later\/spec\.late'/,
    );
    assert.deepEqual(objectMessages("quick", ns).filter((m) => m.includes("blocked")), []);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// Kopf's `settings.watching.client_timeout`: the client ends each watch request after this long
// and resumes it from its resourceVersion — more WATCH requests, no new LIST, no missed event.
Deno.test("watching.clientTimeout re-opens watches from where they stood, without a LIST", async () => {
  // A resource of its own: the namespace controller lists the resources of deleted namespaces.
  const res = await testResource(c, "kopfclienttimeouts");
  const ns = await c.namespace("settings-client-timeout");
  const registry = new kopf.Registry();
  const seen: string[] = [];
  registry.on.create(res.plural, { id: "seen" }, ({ name }) => void seen.push(name!));
  const settings = new kopf.Settings();
  settings.watching.clientTimeout = 1.5;
  const m0 = await c.metrics();
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  try {
    await sleep(4500);
    await createObject(c, res, ns, "after-reopens");
    await waitFor(() => seen.includes("after-reopens"), { message: "the object to be handled" });
    // The server counts a watch when it ends; our log says each resumption and from where. (No
    // LIST is counted by the API server's metrics here: the namespace controller lists every
    // resource of every namespace being deleted.)
    const counts = (await c.metrics()).since(m0);
    assert.ok(counts.count({ verb: "WATCH", resource: res.plural }) >= 2, `${counts}`);
    const resumed = logs.filter((l) =>
      l.message.includes(res.plural) && /ended; resuming from \d+/.test(l.message)
    );
    assert.ok(resumed.length >= 2, `resumed from a resourceVersion: ${resumed.length}`);
    assert.deepEqual(
      logs.filter((l) => l.message.includes(res.plural) && /410|re-list/.test(l.message)),
      [],
    );
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});
