// Indexes: Kopf's result rules (objects, Maps with tuple keys, scalars), updates and removals,
// filters, error modes, and readiness after the initial listing.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import type { KubeObject } from "../../mod.ts";
import type { InformerEvent, InformerListener } from "../../src/cache/informer.ts";
import { type Index, indexEntries, OperatorIndexes } from "../../src/engines/indexes.ts";
import { Settings } from "../../src/settings/settings.ts";
import { flush, ManualClock, Memos, pods } from "../support/engines.ts";

function pod(name: string, extra: { labels?: Record<string, string>; phase?: string } = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "ns", uid: `uid-${name}`, labels: extra.labels ?? {} },
    status: { phase: extra.phase ?? "Running" },
  } as KubeObject;
}

function setup(register: (registry: kopf.Registry) => void) {
  const registry = new kopf.Registry();
  register(registry);
  const clock = new ManualClock();
  const indexes = new OperatorIndexes({
    registry,
    settings: new Settings(),
    memo: new Memos().memo,
    clock,
  });
  const event = (type: "ADDED" | "MODIFIED" | "DELETED", object: KubeObject) =>
    indexes.observe(pods, { type, key: `ns/${object.metadata?.name}`, object, initial: false });
  return { registry, indexes, clock, event };
}

function dump(index: unknown): Record<string, unknown[]> {
  return (index as Index).toJSON();
}

Deno.test("index results: object entries, Map entries with tuple keys, scalars under null", () => {
  assert.deepEqual(indexEntries({ a: 1 }), [["a", 1]]);
  assert.deepEqual(indexEntries(new Map([[["x", "y"], 2]])), [[["x", "y"], 2]]);
  assert.deepEqual(indexEntries(true), [[null, true]]);
  assert.deepEqual(indexEntries([1, 2]), [[null, [1, 2]]]);
  assert.equal(indexEntries(null), null);
  assert.equal(indexEntries(undefined), null);
});

Deno.test("an index collects values per key from all objects and follows updates and deletions", async () => {
  const { indexes, event } = setup((registry) => {
    registry.index("pods", { id: "by_label" }, ({ labels, name }) => {
      const result: Record<string, string> = {};
      for (const [k, v] of Object.entries(labels)) result[`${k}=${v}`] = name;
      return result;
    });
    registry.index(
      "pods",
      { id: "is_running" },
      ({ namespace, name, status }) =>
        new Map([[[namespace, name], (status as { phase?: string }).phase === "Running"]]),
    );
  });
  event("ADDED", pod("a", { labels: { app: "web" } }));
  event("ADDED", pod("b", { labels: { app: "web", tier: "fe" } }));
  await flush();
  assert.deepEqual(dump(indexes.indices.by_label), {
    "app=web": ["a", "b"],
    "tier=fe": ["b"],
  });
  const running = indexes.indices.is_running as Index<[string, string], boolean>;
  assert.equal(running.size, 2);
  assert.deepEqual(running.get(["ns", "a"])?.toArray(), [true], "tuple keys compare by value");

  event("MODIFIED", pod("b", { labels: { app: "db" }, phase: "Pending" }));
  await flush();
  assert.deepEqual(dump(indexes.indices.by_label), { "app=web": ["a"], "app=db": ["b"] });
  assert.deepEqual(running.get(["ns", "b"])?.toArray(), [false]);

  event("DELETED", pod("a", { labels: { app: "web" } }));
  assert.deepEqual(dump(indexes.indices.by_label), { "app=db": ["b"] }, "discarded at once");
  assert.equal(running.has(["ns", "a"]), false);
});

Deno.test("an object that stops matching the filters leaves the index", async () => {
  const { indexes, event } = setup((registry) =>
    registry.index("pods", { id: "idx", labels: { app: kopf.PRESENT } }, ({ name }) => name)
  );
  event("ADDED", pod("a", { labels: { app: "x" } }));
  await flush();
  assert.deepEqual(dump(indexes.indices.idx), { null: ["a"] });
  event("MODIFIED", pod("a"));
  await flush();
  assert.deepEqual(dump(indexes.indices.idx), {});
});

Deno.test("index errors: ignored keeps stale values; temporary removes them for the delay; permanent for good", async () => {
  let fail = false;
  const calls = { ignored: 0, temporary: 0, permanent: 0 };
  const { indexes, event, clock } = setup((registry) => {
    registry.index("pods", { id: "ignored" }, ({ meta }) => {
      calls.ignored++;
      if (fail) throw new Error("boom");
      return { v: meta.resourceVersion };
    });
    registry.index("pods", { id: "temporary", errors: "temporary", backoff: 10 }, () => {
      calls.temporary++;
      if (fail) throw new Error("boom");
      return { v: 1 };
    });
    registry.index("pods", { id: "permanent", errors: "permanent" }, () => {
      calls.permanent++;
      if (fail) throw new Error("boom");
      return { v: 1 };
    });
  });
  const at = (rv: string) => ({
    ...pod("a"),
    metadata: { ...pod("a").metadata, resourceVersion: rv },
  });
  event("ADDED", at("1"));
  await flush();
  fail = true;
  event("MODIFIED", at("2"));
  await flush();
  assert.deepEqual(dump(indexes.indices.ignored), { v: ["1"] }, "stale value kept");
  assert.deepEqual(dump(indexes.indices.temporary), {});
  assert.deepEqual(dump(indexes.indices.permanent), {});
  fail = false;
  event("MODIFIED", at("3")); // within the backoff: the temporary one sits out
  await flush();
  assert.deepEqual(calls, { ignored: 3, temporary: 2, permanent: 2 });
  assert.deepEqual(dump(indexes.indices.temporary), {});
  await clock.advance(11_000);
  event("MODIFIED", at("4"));
  await flush();
  assert.deepEqual(calls, { ignored: 4, temporary: 3, permanent: 2 });
  assert.deepEqual(dump(indexes.indices.temporary), { v: [1] });
  assert.deepEqual(dump(indexes.indices.permanent), {}, "excluded for good");
});

Deno.test("readiness waits for the first listing to be synced and indexed", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const { indexes } = setup((registry) =>
    registry.index("pods", { id: "slow" }, async ({ name }) => {
      await gate;
      return name;
    })
  );
  let listener: InformerListener | undefined;
  const subscription = indexes.attach(pods, {
    subscribe: (l) => {
      listener = l;
      return { unsubscribe: () => {}, [Symbol.dispose]: () => {} };
    },
  });
  assert.ok(subscription);
  assert.equal(indexes.ready, false);
  let ready = false;
  const waiting = indexes.waitReady().then(() => ready = true);
  const send = (event: InformerEvent) => listener!(event);
  send({ type: "ADDED", key: "ns/a", object: pod("a"), initial: true });
  send({ type: "SYNCED", relist: false });
  await flush();
  assert.equal(ready, false, "the initial object is still being indexed");
  release();
  await waiting;
  assert.equal(indexes.ready, true);
  assert.deepEqual(dump(indexes.indices.slow), { null: ["a"] });
});

Deno.test("resources without index handlers are not attached and do not block readiness", () => {
  const { indexes } = setup((registry) => registry.index("kex", { id: "x" }, () => 1));
  const attached = indexes.attach(pods, {
    subscribe: () => {
      throw new Error("must not subscribe");
    },
  });
  assert.equal(attached, null);
  assert.equal(indexes.ready, true);
});
