// Kopf's documented behaviours a switching user would notice, on the real API server; each test
// names the section of Kopf's docs it follows. Writes are counted too: none of these may cost a
// write per handler (one /status write and one object write per cycle, as everywhere).

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import {
  createObject,
  getObject,
  startOperator,
  testResource,
  writesTo,
} from "../support/engine.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "kopfparities");
const DIFF_BASE = "kopf.zalando.org/last-handled-configuration";

async function handled(ns: string, name: string) {
  return await waitFor(async () => {
    const o = await getObject(c, res, ns, name);
    return o?.metadata.annotations?.[DIFF_BASE] && o;
  }, { message: `${name} to be handled` });
}

// Kopf's docs, "Results delivery" (results.rst): handlers of one object communicate through
// status — a later handler reads an earlier one's result; and a handler's `patch` is seen by the
// handlers after it ("Patching").
Deno.test("results.rst: a handler sees the results and patches of the handlers before it", async () => {
  const ns = await c.namespace("parity-results");
  const registry = new kopf.Registry();
  const seen: unknown[] = [];
  registry.on.create(res.plural, { id: "first" }, ({ patch }) => {
    patch.metadata.labels = { stage: "one" };
    return { value: 123 };
  });
  registry.on.create(res.plural, { id: "second" }, ({ status, labels, retry }) => {
    seen.push({ retry, first: status.first, stage: labels.stage });
    if (!status.first) throw new kopf.TemporaryError("no result of 'first' yet", { delay: 3 });
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const m0 = await c.metrics();
    await createObject(c, res, ns, "results");
    const obj = await handled(ns, "results");
    await sleep(1500);
    assert.deepEqual(seen, [{ retry: 0, first: { value: 123 }, stage: "one" }]);
    assert.equal(obj.metadata.labels.stage, "one");
    // One /status and one object write for the cycle; and as in Kopf, the diff-base stored is
    // the essence as received, so the handler's own label is a change the next cycle sees (an
    // update cause) and stores: one more object write, never one per handler.
    const counts = (await c.metrics()).since(m0);
    assert.ok(writesTo(counts, res) <= 3, `one cycle's writes, plus the new diff-base:\n${counts}`);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// Kopf's docs, "Sub-handlers" (handlers.rst), with the default lifecycle asap (one handler per
// cycle): the parent is called once per sub-handler (a retry while any is left, as Kopf's
// HandlerChildrenRetry) and succeeds in the call whose sub-handler finishes the set — each
// sub-handler once, in order, each seeing the results of those before it.
Deno.test("handlers.rst, Sub-handlers: the parent runs once per sub-handler", async () => {
  const ns = await c.namespace("parity-subs");
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create(res.plural, { id: "parent" }, ({ spec, retry }) => {
    calls.push(`parent#${retry}`);
    for (const item of spec.items as string[]) {
      kopf.subhandler({ id: `item-${item}` }, ({ status }) => {
        calls.push(`${item}:${Object.keys(status).sort().join(",")}`);
        return { item };
      });
    }
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const m0 = await c.metrics();
    await createObject(c, res, ns, "subs", { items: ["a", "b", "c"] });
    await handled(ns, "subs");
    await sleep(1500);
    assert.deepEqual(calls, [
      "parent#0",
      "a:",
      "parent#1",
      "b:parent/item-a",
      "parent#2",
      "c:parent/item-a,parent/item-b",
    ]);
    assert.ok(writesTo((await c.metrics()).since(m0), res) <= 2, "one cycle's writes");
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// Kopf's docs, "Sub-handlers", the imperative form: `await kopf.execute(fns=…)` runs the given
// functions as sub-handlers inside the parent; the code after it runs once they are all done.
Deno.test("handlers.rst, kopf.execute(): sub-handlers run inside the parent, then it goes on", async () => {
  const ns = await c.namespace("parity-execute");
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create(res.plural, { id: "parent" }, async ({ retry }) => {
    calls.push(`parent#${retry}`);
    await kopf.execute({
      fns: {
        "step-one": () => {
          calls.push("one");
        },
        "step-two": () => {
          calls.push("two");
        },
      },
    });
    calls.push("after");
    return { done: true };
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "execute");
    const obj = await handled(ns, "execute");
    assert.deepEqual(calls, ["parent#0", "one", "parent#1", "two", "after"]);
    assert.deepEqual(obj.status.parent, { done: true });
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// Kopf's docs, "In-memory indexing" (indexing.rst): with objects existing before the operator
// starts, every index is complete before any other handler, timer or daemon runs; and startup
// handlers have run (and filled the memo) before them too ("Startup").
Deno.test("indexing.rst: indexes are complete before event handlers and timers run", async () => {
  const ns = await c.namespace("parity-indexes");
  const names = ["i0", "i1", "i2", "i3", "i4"];
  for (const name of names) await createObject(c, res, ns, name);
  const registry = new kopf.Registry();
  const eventSizes: number[] = [];
  const tickSizes: number[] = [];
  const tickMemos: unknown[] = [];
  registry.on.startup({ id: "setup" }, ({ memo }) => {
    memo.configured = "yes";
  });
  registry.index(res.plural, { id: "by_name" }, ({ name }) => ({ [name!]: true }));
  registry.on.event(res.plural, { id: "watcher" }, ({ indices }) => {
    eventSizes.push((indices.by_name as kopf.Index).size);
  });
  registry.timer(res.plural, { id: "tick", interval: 60 }, ({ indices, memo }) => {
    tickSizes.push((indices.by_name as kopf.Index).size);
    tickMemos.push(memo.configured);
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await waitFor(() => eventSizes.length >= names.length && tickSizes.length >= names.length, {
      message: "an event handler call and a tick per object",
    });
    assert.deepEqual(eventSizes.slice(0, names.length), names.map(() => names.length));
    assert.deepEqual(tickSizes.slice(0, names.length), names.map(() => names.length));
    assert.deepEqual(tickMemos.slice(0, names.length), names.map(() => "yes"));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// Kopf's docs, "Timeouts" (errors.rst): `timeout` is the total time since the handler first
// started; it is checked before attempts, not enforced on a running one — a 2 s attempt of a
// handler with timeout=1 succeeds.
Deno.test("errors.rst, Timeouts: a running attempt is not aborted by the handler's timeout", async () => {
  const ns = await c.namespace("parity-timeout");
  const registry = new kopf.Registry();
  let aborted = false;
  registry.on.create(res.plural, { id: "slow", timeout: 1 }, async ({ signal }) => {
    signal.addEventListener("abort", () => aborted = true);
    await sleep(2000);
    return { finished: true };
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "slow");
    const obj = await handled(ns, "slow");
    assert.deepEqual(obj.status.slow, { finished: true });
    assert.equal(aborted, false);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});
