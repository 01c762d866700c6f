// The handling cycle with a recording client (no server): which writes one cycle makes for
// each cause, in which order and shape, and what it leaves for the next cycle. The integration
// tests check the same against the real API server; these pin the details.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { processObject } from "../../src/handling/cycle.ts";
import type { CycleEnvironment } from "../../src/handling/environment.ts";
import { Memories } from "../../src/handling/memories.ts";
import { applyMergePatch } from "../../src/storage/patch.ts";
import type { PatchOptions } from "../../src/kube/client.ts";
import { ApiError } from "../../src/kube/errors.ts";
import type { Resource } from "../../src/kube/resource.ts";
import type { RawBody } from "../../src/storage/fields.ts";
import { captureLogs, logs } from "../support/engine.ts";

const RESOURCE: Resource = {
  group: "kopf.dev",
  version: "v1",
  plural: "kopfexamples",
  kind: "KopfExample",
  singular: "kopfexample",
  shortcuts: ["kex"],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["get", "list", "watch", "patch"],
  subresources: ["status"],
};
const FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";
const DIFF_BASE = "kopf.zalando.org/last-handled-configuration";
const KEY = "kopfexamples.v1.kopf.dev/ns/ex";

interface Call {
  type: string;
  subresource?: string;
  body: unknown;
}

/** A client that records patches and answers with the patched object (resourceVersion + 1). */
class RecordingClient {
  calls: Call[] = [];
  gets = 0;
  object: RawBody;
  failNext: number[] = [];

  constructor(object: RawBody) {
    this.object = structuredClone(object);
  }

  patch<T>(_r: Resource, _name: string, body: unknown, options: PatchOptions = {}): Promise<T> {
    const type = options.type ?? "merge";
    this.calls.push({ type, subresource: options.subresource, body });
    const status = this.failNext.shift();
    if (status) {
      return Promise.reject(
        new ApiError({ verb: "PATCH", path: "/x", status, message: `simulated ${status}` }),
      );
    }
    const rv = String(Number(this.object.metadata?.resourceVersion ?? "0") + 1);
    // Merge-patches are applied (enough for these tests); JSON-patches only bump the version.
    if (type === "merge") applyMergePatch(this.object, structuredClone(body) as kopf.JsonObject);
    this.object = { ...this.object, metadata: { ...this.object.metadata, resourceVersion: rv } };
    return Promise.resolve(structuredClone(this.object) as T);
  }

  get<T>(): Promise<T> {
    this.gets++;
    return Promise.resolve(structuredClone(this.object) as T);
  }
}

function body(extra: Partial<RawBody> = {}, metadata: Record<string, unknown> = {}): RawBody {
  return {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name: "ex", namespace: "ns", uid: "uid-1", resourceVersion: "10", ...metadata },
    spec: { size: 1 },
    ...extra,
  };
}

function environment(registry: kopf.Registry, client: RecordingClient, settings?: kopf.Settings) {
  const env: CycleEnvironment = {
    client,
    registry,
    settings: settings ?? new kopf.Settings(),
    memories: new Memories(),
  };
  return env;
}

async function cycle(env: CycleEnvironment, object: RawBody) {
  return await processObject(env, {
    key: KEY,
    resource: RESOURCE,
    body: object,
    signal: new AbortController().signal,
  });
}

Deno.test("creation: all handlers in one cycle, one /status and one merge write", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create("kopfexamples", { id: "a" }, () => (calls.push("a"), { x: 1 }));
  registry.on.create("kopfexamples", { id: "b" }, () => (calls.push("b"), "text"));
  const client = new RecordingClient(body());
  const result = await cycle(environment(registry, client), body());
  assert.deepEqual(calls, ["a", "b"]);
  assert.equal(result.writes, 2);
  assert.equal(result.requeueAfter, undefined);
  assert.deepEqual(client.calls, [
    { type: "merge", subresource: "status", body: { status: { a: { x: 1 }, b: "text" } } },
    {
      type: "merge",
      subresource: undefined,
      body: { metadata: { annotations: { [DIFF_BASE]: '{"spec":{"size":1}}\n' } } },
    },
  ]);
});

Deno.test("finalizerFirst = false: the finalizer goes in the same JSON-patch as the outcome", async () => {
  const registry = new kopf.Registry();
  registry.on.create("kopfexamples", { id: "create_fn" }, () => {});
  registry.on.delete("kopfexamples", { id: "delete_fn" }, () => {});
  const settings = new kopf.Settings();
  settings.persistence.finalizerFirst = false;
  const client = new RecordingClient(body());
  const result = await cycle(environment(registry, client, settings), body());
  assert.equal(result.writes, 1);
  assert.deepEqual(client.calls, [{
    type: "json",
    subresource: undefined,
    body: [
      { op: "test", path: "/metadata/resourceVersion", value: "10" },
      {
        op: "add",
        path: "/metadata/annotations",
        value: { [DIFF_BASE]: '{"spec":{"size":1}}\n' },
      },
      { op: "add", path: "/metadata/finalizers", value: [FINALIZER] },
    ],
  }]);
});

Deno.test("a failed resourceVersion test: the object is re-read and the patch recomputed", async () => {
  const registry = new kopf.Registry();
  registry.on.delete("kopfexamples", { id: "delete_fn" }, () => {});
  registry.on.create("kopfexamples", { id: "create_fn" }, () => {});
  const client = new RecordingClient(body({}, { resourceVersion: "15", finalizers: ["other"] }));
  client.failNext = [422];
  const settings = new kopf.Settings();
  settings.persistence.finalizerFirst = false;
  await cycle(environment(registry, client, settings), body());
  assert.equal(client.gets, 1);
  assert.equal(client.calls.length, 2);
  const retried = client.calls[1].body as { op: string; path: string; value?: unknown }[];
  assert.deepEqual(retried[0], { op: "test", path: "/metadata/resourceVersion", value: "15" });
  assert.ok(
    retried.some((op) =>
      op.op === "add" && op.path === "/metadata/finalizers/-" && op.value === FINALIZER
    ),
    JSON.stringify(retried),
  );
});

Deno.test("deletion: delete handlers run, then the finalizer is removed by a guarded JSON-patch", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.delete("kopfexamples", { id: "delete_fn" }, ({ reason }) => {
    calls.push(reason);
  });
  const deleting = body({}, {
    deletionTimestamp: "2026-01-01T00:00:00Z",
    finalizers: ["other.example.com/x", FINALIZER],
    annotations: { [DIFF_BASE]: '{"spec":{"size":1}}\n' },
  });
  const client = new RecordingClient(deleting);
  const result = await cycle(environment(registry, client), deleting);
  assert.deepEqual(calls, ["delete"]);
  assert.equal(result.writes, 1);
  assert.deepEqual(client.calls[0].body, [
    { op: "test", path: "/metadata/resourceVersion", value: "10" },
    { op: "remove", path: "/metadata/finalizers/1" },
  ]);
});

Deno.test("read-your-writes: a stale cached state waits for our own write to come back", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create("kopfexamples", { id: "create_fn" }, () => {
    calls.push("create");
  });
  const client = new RecordingClient(body());
  const env = environment(registry, client);
  await cycle(env, body());
  assert.deepEqual(calls, ["create"]);
  // The cache still has the old state (resourceVersion 10): it must not look like a creation.
  const again = await cycle(env, body());
  assert.ok(again.requeueAfter! > 0 && again.requeueAfter! <= 5, `${again.requeueAfter}`);
  assert.deepEqual(calls, ["create"]);
  assert.equal(client.calls.length, 1);
  // Our write comes back through the watch: the cycle goes on (nothing to do).
  env.memories.get(KEY)!.see("11");
  const fresh = { ...client.object };
  const done = await cycle(env, fresh);
  assert.equal(done.requeueAfter, undefined);
  assert.deepEqual(calls, ["create"]);
  assert.equal(client.calls.length, 1, "no writes for an unchanged essence");
});

Deno.test("a temporary error: one progress write, a local wake-up, no touch-dummy", async () => {
  const registry = new kopf.Registry();
  registry.on.create("kopfexamples", { id: "flaky" }, () => {
    throw new kopf.TemporaryError("later", { delay: 7 });
  });
  // A touch-dummy left by Python Kopf is removed with the next real write.
  const object = body({}, { annotations: { "kopf.zalando.org/touch-dummy": "x" } });
  const client = new RecordingClient(object);
  const result = await cycle(environment(registry, client), object);
  assert.ok(result.requeueAfter! > 6 && result.requeueAfter! <= 7, `${result.requeueAfter}`);
  assert.equal(client.calls.length, 1);
  const annotations =
    (client.calls[0].body as { metadata: { annotations: Record<string, unknown> } })
      .metadata.annotations;
  assert.equal(annotations["kopf.zalando.org/touch-dummy"], null);
  const record = JSON.parse(annotations["kopf.zalando.org/flaky"] as string);
  assert.equal(record.retries, 1);
  assert.equal(record.message, "later");
  assert.equal(record.purpose, "create");
  assert.ok(record.delayed);
  assert.equal(annotations[DIFF_BASE], undefined, "not handled yet");
});

Deno.test("a sleeping handler: no call and no write until its time, just a wake-up", async () => {
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.create("kopfexamples", { id: "sleepy" }, () => {
    called++;
  });
  const delayed = new Date(Date.now() + 30_000).toISOString().replace("Z", "000+00:00");
  // As Kopf and this engine store records: nulls left out, the booleans kept.
  const record = JSON.stringify({
    started: "2026-01-01T00:00:00.000000+00:00",
    delayed,
    purpose: "create",
    retries: 1,
    success: false,
    failure: false,
  });
  const object = body({}, { annotations: { "kopf.zalando.org/sleepy": record } });
  const client = new RecordingClient(object);
  const result = await cycle(environment(registry, client), object);
  assert.equal(called, 0);
  assert.equal(client.calls.length, 0);
  assert.ok(result.requeueAfter! > 28 && result.requeueAfter! <= 30, `${result.requeueAfter}`);
});

Deno.test("stealth: objects matching no handler's filters get no writes", async () => {
  const registry = new kopf.Registry();
  registry.on.create("kopfexamples", { labels: { app: "x" } }, () => {});
  registry.on.delete("kopfexamples", { labels: { app: "x" } }, () => {});
  const client = new RecordingClient(body());
  const result = await cycle(environment(registry, client), body());
  assert.equal(client.calls.length, 0);
  assert.equal(result.writes, 0);
});

Deno.test("deletion without our finalizer is not ours: no handlers, no writes", async () => {
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.delete("kopfexamples", () => {
    called++;
  });
  const object = body({}, { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: ["other"] });
  const client = new RecordingClient(object);
  await cycle(environment(registry, client), object);
  assert.equal(called, 0);
  assert.equal(client.calls.length, 0);
});

Deno.test("a superseded creation: its unfinished records are purged, the update runs", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create("kopfexamples", { id: "create_fn" }, () => {
    calls.push("create");
  });
  registry.on.update("kopfexamples", { id: "update_fn" }, () => {
    calls.push("update");
  });
  const object = body({ spec: { size: 2 } }, {
    annotations: {
      [DIFF_BASE]: '{"spec":{"size":1}}\n',
      "kopf.zalando.org/create_fn": JSON.stringify({
        started: "2026-01-01T00:00:00.000000+00:00",
        purpose: "create",
        retries: 1,
      }),
    },
  });
  const client = new RecordingClient(object);
  await cycle(environment(registry, client), object);
  assert.deepEqual(calls, ["update"]);
  const annotations =
    (client.calls[0].body as { metadata: { annotations: Record<string, unknown> } })
      .metadata.annotations;
  assert.equal(annotations["kopf.zalando.org/create_fn"], null);
  assert.equal(annotations[DIFF_BASE], '{"spec":{"size":2}}\n');
});

Deno.test("resume handlers run once for objects from the initial listing", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.resume("kopfexamples", { id: "resume_fn" }, ({ reason }) => {
    calls.push(reason);
  });
  const object = body({}, { annotations: { [DIFF_BASE]: '{"spec":{"size":1}}\n' } });
  const client = new RecordingClient(object);
  const env = environment(registry, client);
  env.memories.recall(KEY, "uid-1").noticedByListing = true;
  await cycle(env, object);
  await cycle(env, object);
  assert.deepEqual(calls, ["resume"]);
  assert.equal(client.calls.length, 0, "nothing changed: nothing to write");
});

Deno.test("by default (finalizerFirst), the finalizer alone first, handlers in the next cycle", async () => {
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.create("kopfexamples", () => {
    called++;
  });
  registry.on.delete("kopfexamples", () => {});
  const client = new RecordingClient(body());
  await cycle(environment(registry, client), body());
  assert.equal(called, 0);
  assert.deepEqual(client.calls[0].body, [
    { op: "test", path: "/metadata/resourceVersion", value: "10" },
    { op: "add", path: "/metadata/finalizers", value: [FINALIZER] },
  ]);
});

Deno.test("the handlers' patch goes with the framework's in the same writes", async () => {
  const registry = new kopf.Registry();
  registry.on.create("kopfexamples", ({ patch }) => {
    patch.metadata.labels.seen = "yes";
    patch.status.phase = "Ready";
  });
  const client = new RecordingClient(body());
  const result = await cycle(environment(registry, client), body());
  assert.equal(result.writes, 2);
  assert.deepEqual(client.calls[0].body, { status: { phase: "Ready" } });
  assert.deepEqual(client.calls[1].body, {
    metadata: {
      labels: { seen: "yes" },
      annotations: { [DIFF_BASE]: '{"spec":{"size":1}}\n' },
    },
  });
});

Deno.test("object loggers post Events only with posting.loggers on", async () => {
  for (const loggers of [false, true]) {
    const registry = new kopf.Registry();
    registry.on.create("kopfexamples", { id: "create_fn" }, ({ logger }) => {
      logger.info("A message from the handler.");
    });
    const settings = new kopf.Settings();
    settings.posting.loggers = loggers;
    const posted: string[] = [];
    const client = new RecordingClient(body());
    const env: CycleEnvironment = {
      ...environment(registry, client, settings),
      poster: {
        event: (_objs, spec) => void posted.push(`${spec.type} ${spec.reason}: ${spec.message}`),
      },
    };
    await cycle(env, body());
    assert.deepEqual(
      posted,
      loggers
        ? [
          "Normal Logging: A message from the handler.",
          "Normal Logging: Handler 'create_fn' succeeded.",
          "Normal Logging: Creation is processed: 1 succeeded; 0 failed.",
        ]
        : [],
    );
  }
});

Deno.test("after a cycle, an object's memory is idle; its memo is made only when a handler reads it", async () => {
  const registry = new kopf.Registry();
  registry.on.create("kopfexamples", { id: "plain" }, ({ spec }) => spec.size);
  registry.on.update("kopfexamples", { id: "memo" }, ({ memo }) => {
    memo.count = ((memo.count as number) ?? 0) + 1;
  });
  const client = new RecordingClient(body());
  const env = environment(registry, client);
  await cycle(env, body());
  const memory = env.memories.get(KEY)!;
  assert.equal(memory.memoMade, false, "the create handler did not read its memo");
  memory.see(client.object.metadata!.resourceVersion);
  assert.equal(memory.idle, true, "our write came back: no read-your-writes state left");
  assert.equal(memory.awaitedVersion, undefined);

  const changed = { ...client.object, spec: { size: 2 } } as RawBody;
  client.object = changed;
  await cycle(env, changed);
  assert.equal(memory.memoMade, true);
  assert.equal(memory.memo.count, 1, "the handler's memo is the object's memo");
});

// Within one process, a handler that finished for a cause is never called again for that cause,
// whatever happens to the stored progress meanwhile.

Deno.test("deletion while daemons stop: the delete handler runs once, records kept until release", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.delete("kopfexamples", { id: "delete_fn" }, () => {
    calls.push("delete");
  });
  const deleting = body({}, {
    deletionTimestamp: "2026-01-01T00:00:00Z",
    finalizers: [FINALIZER],
    annotations: { [DIFF_BASE]: '{"spec":{"size":1}}\n' },
  });
  const client = new RecordingClient(deleting);
  let stopping = true;
  const env: CycleEnvironment = {
    ...environment(registry, client),
    // A daemon engine whose daemons are still stopping keeps the finalizer on.
    engines: [{ cycle: () => ({ delays: stopping ? [60] : [] }) }],
  };
  const first = await cycle(env, deleting);
  assert.deepEqual(calls, ["delete"]);
  assert.equal(first.requeueAfter, 60);
  const written = client.calls[0].body as { metadata: { annotations: Record<string, string> } };
  const record = JSON.parse(written.metadata.annotations["kopf.zalando.org/delete_fn"]);
  assert.equal(
    record.success,
    true,
    "the success is stored, not purged, while the finalizer stays",
  );
  // The daemons have stopped; the engine requeues the object: the cycle sees our write.
  stopping = false;
  env.memories.get(KEY)!.see(client.object.metadata!.resourceVersion);
  await cycle(env, structuredClone(client.object));
  assert.deepEqual(calls, ["delete"], "not called again");
  const release = client.calls.at(-1)!.body as { op: string; path: string }[];
  assert.ok(release.some((op) => op.op === "remove" && op.path === "/metadata/finalizers/0"));
});

Deno.test("deletion while daemons stop: also without the stored record (another purge)", async () => {
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.delete("kopfexamples", { id: "delete_fn" }, () => {
    called++;
  });
  const deleting = body({}, {
    deletionTimestamp: "2026-01-01T00:00:00Z",
    finalizers: [FINALIZER],
    annotations: { [DIFF_BASE]: '{"spec":{"size":1}}\n' },
  });
  const client = new RecordingClient(deleting);
  let delays = [60];
  const env: CycleEnvironment = {
    ...environment(registry, client),
    engines: [{ cycle: () => ({ delays }) }],
  };
  await cycle(env, deleting);
  // The next cycle sees the object as it was before our write (e.g. the consistency wait has
  // timed out): no record of the handler in storage, but this process knows it has run.
  delays = [];
  env.memories.get(KEY)!.see("999");
  await cycle(env, deleting);
  assert.equal(called, 1);
});

Deno.test("a lost outcome write: the handler is not called again, its result is written again", async () => {
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.create("kopfexamples", { id: "create_fn" }, () => {
    called++;
    return { answer: 42 };
  });
  const client = new RecordingClient(body());
  client.failNext = [500];
  const env = environment(registry, client);
  await assert.rejects(() => cycle(env, body()), ApiError);
  assert.equal(called, 1);
  // The queue retries the object (same state: nothing was stored).
  await cycle(env, body());
  assert.equal(called, 1, "not called again for the same creation");
  assert.deepEqual(client.calls.at(-2)!.body, { status: { create_fn: { answer: 42 } } });
  const annotations =
    (client.calls.at(-1)!.body as { metadata: { annotations: Record<string, string> } }).metadata
      .annotations;
  assert.ok(annotations[DIFF_BASE], "the creation is finished now");
});

Deno.test("a new cause forgets the finished handlers of the previous one", async () => {
  const registry = new kopf.Registry();
  const calls: number[] = [];
  registry.on.update("kopfexamples", { id: "update_fn" }, ({ spec }) => {
    calls.push(spec.size as number);
  });
  const handled = (size: number, resourceVersion: string) =>
    body({ spec: { size } }, {
      resourceVersion,
      annotations: { [DIFF_BASE]: `{"spec":{"size":${size === 2 ? 1 : 2}}}\n` },
    });
  const client = new RecordingClient(handled(2, "10"));
  const env = environment(registry, client);
  // Each cycle starts once our previous write has come back through the watch.
  const written = () => env.memories.get(KEY)!.see(client.object.metadata!.resourceVersion);
  await cycle(env, handled(2, "10")); // 1 → 2
  written();
  await cycle(env, handled(1, "12")); // 2 → 1: another cause
  written();
  await cycle(env, handled(2, "14")); // 1 → 2 again: a new change, not a repeat
  assert.deepEqual(calls, [2, 1, 2]);
});

Deno.test("stored progress that holds a handler back for long is reported once, naming it", async () => {
  await captureLogs();
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.create("kopfexamples", { id: "far" }, () => {
    called++;
  });
  const record = JSON.stringify({
    started: "2026-01-01T00:00:00.000000+00:00",
    delayed: "2099-01-01T00:00:00.000000+00:00",
    purpose: "create",
    retries: 1,
  });
  const object = body({}, { uid: "uid-far", annotations: { "kopf.zalando.org/far": record } });
  const env = environment(registry, new RecordingClient(object));
  await cycle(env, object);
  await cycle(env, object);
  assert.equal(called, 0);
  const warnings = logs.filter((l) => l.level === "warning" && l.message.includes("'far'"));
  assert.deepEqual(warnings.map((l) => l.message), [
    "Handler 'far' is not due before 2099-01-01T00:00:00.000Z, as its stored progress says: " +
    "it will not run until then.",
  ]);
  assert.equal((warnings[0].properties.object as { name: string }).name, "ex");
});

Deno.test("finished records without a matching diff-base (a copied object) are reported", async () => {
  await captureLogs();
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.create("kopfexamples", { id: "copied" }, () => {
    called++;
  });
  const record = JSON.stringify({
    started: "2026-01-01T00:00:00.000000+00:00",
    stopped: "2026-01-01T00:00:01.000000+00:00",
    purpose: "create",
    retries: 1,
    success: true,
  });
  const object = body({}, {
    uid: "uid-copied",
    annotations: { "kopf.zalando.org/copied": record },
  });
  await cycle(environment(registry, new RecordingClient(object)), object);
  assert.equal(called, 0, "Kopf's rule: a handler recorded as finished does not run");
  const warnings = logs.filter((l) => l.level === "warning" && l.message.includes("'copied'"));
  assert.deepEqual(warnings.map((l) => l.message), [
    "Handler 'copied' is recorded as finished for this creation, but the change was never " +
    "marked as handled (no matching diff-base): it will not run for it. Remove its progress " +
    "record to run it.",
  ]);
});
