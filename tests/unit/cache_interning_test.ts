// How compactly the cache holds objects: one copy of shared strings, metadata with fast
// properties. Which copy of an equal string an object holds, and whether an object is in V8's
// dictionary mode, cannot be seen from JavaScript: these tests run their checks in a child
// process with V8's test natives (%IsSameHeapObject, %HasFastProperties). Their strings are
// 10 characters or longer: V8's JSON parser already shares shorter ones by itself.
import assert from "node:assert/strict";
import { internStrings, MAX_INTERNED_LENGTH, StringPool } from "../../src/cache/interning.ts";

const SRC = new URL("../../src/", import.meta.url).href;
const SUPPORT = new URL("../support/", import.meta.url).href;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** Runs `body` (JavaScript with natives syntax) in a child process; returns its JSON output. */
async function natives(body: string): Promise<Record<string, unknown>> {
  const file = await Deno.makeTempFile({ suffix: ".js" });
  try {
    await Deno.writeTextFile(
      file,
      `const SRC = ${JSON.stringify(SRC)};\nconst SUPPORT = ${JSON.stringify(SUPPORT)};\n` +
        `const same = (a, b) => %IsSameHeapObject(a, b);\n` +
        `const fast = (o) => %HasFastProperties(o);\n${body}`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, "--v8-flags=--allow-natives-syntax", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `the natives script failed:\n${stderr}`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("StringPool keeps two bounded generations and carries recurring strings over", () => {
  const pool = new StringPool(2);
  assert.equal(pool.intern("a"), "a");
  pool.intern("b");
  assert.equal(pool.size, 2);
  pool.intern("c"); // a new generation: {c}, the previous one {a, b}
  assert.equal(pool.size, 3);
  pool.intern("a"); // carried over: {c, a}
  pool.intern("d"); // {d}, previous {c, a}: b is dropped
  assert.equal(pool.size, 3);
  for (let i = 0; i < 100; i++) pool.intern(`unique-${i}`);
  assert.ok(pool.size <= 4, "never more than two generations");
});

Deno.test("internStrings() changes no value", () => {
  const text = JSON.stringify({
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: {
      name: "x",
      namespace: "ns",
      uid: "u",
      labels: { app: "web" },
      finalizers: ["kopf.zalando.org/KopfFinalizerMarker"],
      ownerReferences: [{ kind: "Owner", name: "o", uid: "ou" }],
    },
    spec: { list: ["a", 1, null, true, { deep: "v" }], long: "x".repeat(MAX_INTERNED_LENGTH + 1) },
    status: { conditions: [{ type: "Ready", status: "True" }] },
  });
  const pool = new StringPool();
  assert.deepEqual(internStrings(JSON.parse(text), pool), JSON.parse(text));
  assert.deepEqual(internStrings(JSON.parse(text), pool), JSON.parse(text));
  assert.equal(internStrings(null, pool), null);
  assert.equal(internStrings("text", pool), "text");
});

Deno.test("internStrings() shares common strings, not names, uids, versions or long values", async () => {
  const result = await natives(`
    const { internStrings, StringPool } = await import(SRC + "cache/interning.ts");
    const pool = new StringPool();
    const text = (name) => JSON.stringify({
      apiVersion: "kopf.dev/v1",
      metadata: {
        name: "same-object-name", namespace: "the-namespace", uid: "same-uid-0000-1111",
        resourceVersion: "123456789012", finalizers: ["kopf.zalando.org/KopfFinalizerMarker"],
        ownerReferences: [{ kind: "OwnerKind", uid: "owner-uid-0000-1111" }],
        annotations: { long: "x".repeat(300), short: "short-annotation" },
      },
      spec: { items: [{ value: "nested-value" }] },
    });
    const a = internStrings(JSON.parse(text()), pool);
    const b = internStrings(JSON.parse(text()), pool);
    console.log(JSON.stringify({
      apiVersion: same(a.apiVersion, b.apiVersion),
      namespace: same(a.metadata.namespace, b.metadata.namespace),
      finalizer: same(a.metadata.finalizers[0], b.metadata.finalizers[0]),
      ownerUid: same(a.metadata.ownerReferences[0].uid, b.metadata.ownerReferences[0].uid),
      short: same(a.metadata.annotations.short, b.metadata.annotations.short),
      nested: same(a.spec.items[0].value, b.spec.items[0].value),
      name: same(a.metadata.name, b.metadata.name),
      uid: same(a.metadata.uid, b.metadata.uid),
      resourceVersion: same(a.metadata.resourceVersion, b.metadata.resourceVersion),
      long: same(a.metadata.annotations.long, b.metadata.annotations.long),
    }));
  `);
  assert.deepEqual(result, {
    apiVersion: true,
    namespace: true,
    finalizer: true,
    ownerUid: true,
    short: true,
    nested: true,
    name: false,
    uid: false,
    resourceVersion: false,
    long: false,
  });
});

Deno.test("stripManagedFields() leaves metadata with fast properties (not a hash table)", async () => {
  const result = await natives(`
    const { stripManagedFields } = await import(SRC + "cache/store.ts");
    const text = JSON.stringify({
      metadata: { name: "x", namespace: "ns", uid: "u", labels: { a: "b" }, managedFields: [{}] },
    });
    const deleted = JSON.parse(text);
    delete deleted.metadata.managedFields;
    const stripped = stripManagedFields(JSON.parse(text));
    console.log(JSON.stringify({
      control: fast(deleted.metadata),
      stripped: fast(stripped.metadata),
      keys: Object.keys(stripped.metadata),
    }));
  `);
  assert.deepEqual(result, {
    control: false, // if V8 stops turning objects into hash tables on delete, this test is moot
    stripped: true,
    keys: ["name", "namespace", "uid", "labels"],
  });
});

Deno.test("the informer caches objects with shared strings and fast metadata", async () => {
  const result = await natives(`
    const { Informers } = await import(SRC + "cache/informer.ts");
    const { obj, ScriptedTransport, THINGS } = await import(SUPPORT + "scripted_transport.ts");
    const transport = new ScriptedTransport();
    const informers = new Informers(transport);
    const informer = informers.get(THINGS, { namespace: "ns" });
    informer.subscribe(() => {});
    // Strings of 10 characters or more: V8's JSON parser shares shorter ones by itself.
    const extra = (name) => ({
      metadata: {
        namespace: "the-namespace", name, resourceVersion: "1",
        finalizers: ["kopf.zalando.org/x"], managedFields: [{ manager: "m" }],
      },
    });
    // Each object parsed separately, as the watch does.
    const items = ["a", "b"].map((name) => JSON.parse(JSON.stringify(obj(name, "1", extra(name)))));
    (await transport.nextList()).respond({ metadata: { resourceVersion: "2" }, items });
    await informer.waitForSync();
    const a = informer.store.getByName("a", "the-namespace");
    const b = informer.store.getByName("b", "the-namespace");
    console.log(JSON.stringify({
      namespace: same(a.metadata.namespace, b.metadata.namespace),
      finalizer: same(a.metadata.finalizers[0], b.metadata.finalizers[0]),
      fast: fast(a.metadata) && fast(b.metadata),
      managedFields: "managedFields" in a.metadata,
    }));
    await informers.stop();
  `);
  assert.deepEqual(result, { namespace: true, finalizer: true, fast: true, managedFields: false });
});
