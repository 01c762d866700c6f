// Exactly once within one process: a handler that finished for an object is never called again
// for the same cause — creation, update, field change, sub-handlers, deletion — whatever runs
// beside it (a timer, a daemon). Counted per object and cause on the real API server; finalizers
// are counted too (none may be left behind).
//
// The delete handler used to run twice whenever the resource also had a timer or a daemon: its
// success was purged in the same write that had to keep the finalizer (the daemon was still
// stopping), so the cycle after the daemon's exit found no record and ran it again.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import {
  createObject,
  getObject,
  startOperator,
  stripFinalizers,
  testResource,
} from "../support/engine.ts";
import { waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "exactlyonces");
const N = Number(Deno.env.get("N") ?? 10);

type Beside = "timer" | "daemon" | "timer+daemon";
const CAUSES = ["create", "create/sub", "field/create", "update", "field/update", "delete"];

/** Registers the handlers of one run and counts their calls per `cause:name`. */
function operatorWith(beside: Beside) {
  const registry = new kopf.Registry();
  const calls = new Map<string, number>();
  const count = (cause: string, name: string) => {
    const key = `${cause}:${name}`;
    calls.set(key, (calls.get(key) ?? 0) + 1);
  };
  registry.on.create(res.plural, { id: "create_fn" }, ({ name, subhandler }) => {
    count("create", name!);
    subhandler({ id: "sub" }, ({ name }) => count("create/sub", name!));
    return { created: true };
  });
  registry.on.update(res.plural, { id: "update_fn" }, ({ name }) => count("update", name!));
  // A field handler takes part in the creation (the field appears) and in the update.
  registry.on.field(res.plural, { id: "field_fn", field: "spec.size" }, ({ name, reason }) => {
    count(`field/${reason}`, name!);
  });
  registry.on.delete(res.plural, { id: "delete_fn" }, ({ name }) => count("delete", name!));
  if (beside.includes("timer")) {
    registry.timer(res.plural, { id: "tick", interval: 0.2 }, () => {});
  }
  if (beside.includes("daemon")) {
    registry.daemon(res.plural, { id: "watcher" }, async ({ stopped }) => {
      await stopped.wait();
    });
  }
  return { registry, calls };
}

for (const beside of ["timer", "daemon", "timer+daemon"] as const) {
  Deno.test(`${N} objects with a ${beside}: every handler once per object and cause`, async () => {
    const ns = await c.namespace("once");
    const { registry, calls } = operatorWith(beside);
    const operator = await startOperator(c, { registry, namespaces: [ns] });
    const names = Array.from({ length: N }, (_, i) => `obj-${i}`);
    try {
      await Promise.all(names.map((name) => createObject(c, res, ns, name, { size: 1 })));
      await waitFor(async () => {
        for (const name of names) {
          const o = await getObject(c, res, ns, name);
          if (!o?.metadata.annotations?.["kopf.zalando.org/last-handled-configuration"]) {
            return false;
          }
        }
        return true;
      }, { message: "every creation handled" });
      await Promise.all(
        names.map((name) =>
          c.api("PATCH", res.path(ns, name), { spec: { size: 2 } }, {
            contentType: "application/merge-patch+json",
          })
        ),
      );
      await waitFor(() => names.every((n) => calls.get(`field/update:${n}`) === 1), {
        message: "every update handled",
      });
      await Promise.all(names.map((name) => c.api("DELETE", res.path(ns, name))));
      await waitFor(async () => {
        const list = await c.api("GET", res.path(ns));
        return list.items.length === 0;
      }, { message: "every object released and gone (no finalizer left behind)" });
      // Anything still scheduled (a stray requeue) would run within this time.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      for (const name of names) {
        for (const cause of CAUSES) {
          const n = calls.get(`${cause}:${name}`);
          assert.equal(n, 1, `${cause} of ${name}: called ${n ?? 0} times`);
        }
      }
      assert.equal(calls.size, N * CAUSES.length, `no other calls: ${[...calls.keys()]}`);
    } finally {
      // Stopped first: a running operator would put its finalizer back.
      await operator.stop();
      await stripFinalizers(c, res, ns);
      await c.deleteNamespace(ns);
    }
  });
}

Deno.test("an object deleted while its create handler runs still gets its delete handler", async () => {
  const ns = await c.namespace("once-race");
  const registry = new kopf.Registry();
  const calls: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let started!: () => void;
  const running = new Promise<void>((resolve) => started = resolve);
  registry.on.create(res.plural, { id: "create_fn" }, async () => {
    calls.push("create");
    started();
    await gate;
  });
  registry.on.delete(res.plural, { id: "delete_fn" }, () => {
    calls.push("delete");
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "racer");
    await running;
    // Deleted while the very first handler runs: the finalizer is already there (it went first),
    // so the object waits for its delete handler instead of vanishing.
    await c.api("DELETE", res.path(ns, "racer"));
    const deleting = await getObject(c, res, ns, "racer");
    assert.ok(deleting?.metadata.deletionTimestamp, "blocked by the finalizer");
    release();
    await waitFor(async () => (await getObject(c, res, ns, "racer")) === null, {
      message: "the object to be released and gone",
    });
    assert.deepEqual(calls, ["create", "delete"]);
  } finally {
    release();
    // Stopped first: a running operator would put its finalizer back.
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

// Objects deleted right after their creation: their deletion races with our finalizer's write.
// The API server may then delete an object although our finalizer made it onto it (a DELETE that
// read the object before our write completes after it), or — without the finalizer first — before
// the finalizer is there at all. Either way, the object whose create handler started gets its
// delete handler once, on its last known state.
for (const finalizerFirst of [true, false]) {
  Deno.test(`quick deletions (finalizerFirst=${finalizerFirst}): every started object gets one delete`, async () => {
    const ns = await c.namespace("once-quick");
    const registry = new kopf.Registry();
    const creates = new Map<string, number>();
    const deletes = new Map<string, number>();
    const bump = (map: Map<string, number>, name: string) =>
      map.set(name, (map.get(name) ?? 0) + 1);
    registry.on.create(res.plural, { id: "create_fn" }, async ({ name }) => {
      bump(creates, name!);
      await new Promise((resolve) => setTimeout(resolve, 300));
    });
    registry.on.delete(res.plural, { id: "delete_fn" }, ({ name }) => {
      bump(deletes, name!);
    });
    registry.daemon(res.plural, { id: "idle" }, async ({ stopped }) => {
      await stopped.wait();
    });
    const settings = new kopf.Settings();
    settings.persistence.finalizerFirst = finalizerFirst;
    const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
    try {
      const names = Array.from({ length: 30 }, (_, i) => `quick-${i}`);
      await Promise.all(names.map(async (name) => {
        await createObject(c, res, ns, name);
        await c.api("DELETE", res.path(ns, name));
      }));
      await waitFor(async () => (await c.api("GET", res.path(ns))).items.length === 0, {
        message: "every object gone",
      });
      await waitFor(() => [...creates.keys()].every((name) => deletes.has(name)), {
        timeout: 10,
        message: `a delete for every started object: ${[...creates.keys()]} vs ${[...deletes]}`,
      });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const [name, n] of deletes) assert.equal(n, 1, `delete of ${name}: ${n} calls`);
      for (const [name, n] of creates) assert.equal(n, 1, `create of ${name}: ${n} calls`);
    } finally {
      // Stopped first: a running operator would put its finalizer back.
      await operator.stop();
      await stripFinalizers(c, res, ns);
      await c.deleteNamespace(ns);
    }
  });
}
