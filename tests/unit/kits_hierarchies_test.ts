import assert from "node:assert/strict";
import {
  adjustNamespace,
  adopt,
  appendOwnerReference,
  buildObjectReference,
  buildOwnerReference,
  currentBody,
  harmonizeNaming,
  label,
  removeOwnerReference,
} from "../../src/kits/hierarchies.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const OWNER = {
  apiVersion: "kopf.dev/v1",
  kind: "KopfExample",
  metadata: {
    name: "owner",
    namespace: "owner-ns",
    uid: "owner-uid",
    labels: { app: "demo", tier: "web" },
  },
  spec: { field: "value" },
};

Deno.test("buildOwnerReference builds a controller reference by default", () => {
  assert.deepEqual(buildOwnerReference(OWNER), {
    controller: true,
    blockOwnerDeletion: true,
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    name: "owner",
    uid: "owner-uid",
  });
});

Deno.test("buildOwnerReference honours the flags and omits null ones and missing fields", () => {
  assert.deepEqual(
    buildOwnerReference({ kind: "Node", metadata: { name: "n" } }, {
      controller: false,
      blockOwnerDeletion: null,
    }),
    { controller: false, kind: "Node", name: "n" },
  );
});

Deno.test("buildObjectReference includes the namespace and drops empty fields", () => {
  assert.deepEqual(buildObjectReference(OWNER), {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    name: "owner",
    uid: "owner-uid",
    namespace: "owner-ns",
  });
  assert.deepEqual(
    buildObjectReference({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n1", namespace: "" },
    }),
    { apiVersion: "v1", kind: "Node", name: "n1" },
  );
});

Deno.test("appendOwnerReference adds the reference once per owner uid", () => {
  const obj: Json = {};
  appendOwnerReference(obj, OWNER);
  appendOwnerReference(obj, OWNER);
  assert.deepEqual(obj.metadata.ownerReferences, [buildOwnerReference(OWNER)]);

  const other = { ...OWNER, metadata: { ...OWNER.metadata, uid: "other-uid" } };
  appendOwnerReference(obj, other, { controller: false, blockOwnerDeletion: false });
  assert.equal(obj.metadata.ownerReferences.length, 2);
  assert.deepEqual(obj.metadata.ownerReferences[1], {
    ...buildOwnerReference(other),
    controller: false,
    blockOwnerDeletion: false,
  });
});

Deno.test("appendOwnerReference keeps the existing reference of the same uid as is", () => {
  const existing = { uid: "owner-uid", name: "stale", controller: false };
  const obj: Json = { metadata: { ownerReferences: [existing] } };
  appendOwnerReference(obj, OWNER);
  assert.deepEqual(obj.metadata.ownerReferences, [existing]);
});

Deno.test("appendOwnerReference walks arrays, nested arrays included", () => {
  const objs: Json[] = [{}, [{}, [{}]]];
  appendOwnerReference(objs, OWNER);
  const flat = [objs[0], objs[1][0], objs[1][1][0]];
  for (const obj of flat) assert.equal(obj.metadata.ownerReferences[0].uid, "owner-uid");
});

Deno.test("removeOwnerReference removes only the owner's references", () => {
  const obj: Json = {
    metadata: { ownerReferences: [{ uid: "owner-uid" }, { uid: "x" }, { uid: "owner-uid" }] },
  };
  removeOwnerReference(obj, OWNER);
  assert.deepEqual(obj.metadata.ownerReferences, [{ uid: "x" }]);

  const bare: Json = { kind: "Pod" };
  removeOwnerReference(bare, OWNER);
  assert.deepEqual(bare, { kind: "Pod" });
});

Deno.test("label sets missing labels and keeps existing ones unless forced", () => {
  const obj: Json = { metadata: { labels: { app: "mine" } } };
  label(obj, { app: "demo", extra: "x" });
  assert.deepEqual(obj.metadata.labels, { app: "mine", extra: "x" });

  label(obj, { app: "demo" }, { forced: true });
  assert.deepEqual(obj.metadata.labels, { app: "demo", extra: "x" });
});

Deno.test("label labels nested objects that exist, and skips absent or non-object ones", () => {
  const obj: Json = { spec: { template: { spec: {} }, selector: "not-an-object" } };
  label(obj, { app: "demo" }, { nested: ["spec.template", ["spec", "selector"], "spec.missing"] });
  assert.deepEqual(obj.metadata.labels, { app: "demo" });
  assert.deepEqual(obj.spec.template.metadata.labels, { app: "demo" });
  assert.equal(obj.spec.selector, "not-an-object");
  assert.equal("missing" in obj.spec, false);
});

Deno.test("label accepts a single nested path as a string", () => {
  const obj: Json = { spec: { jobTemplate: { spec: { template: {} } } } };
  label(obj, { a: "b" }, { nested: "spec.jobTemplate.spec.template" });
  assert.deepEqual(obj.spec.jobTemplate.spec.template.metadata.labels, { a: "b" });
});

Deno.test("harmonizeNaming sets generateName on unnamed objects, or the exact name if strict", () => {
  const loose: Json = {};
  harmonizeNaming(loose, "parent");
  assert.deepEqual(loose.metadata, { generateName: "parent-" });

  const strict: Json = { metadata: {} };
  harmonizeNaming(strict, "parent", { strict: true });
  assert.deepEqual(strict.metadata, { name: "parent" });
});

Deno.test("harmonizeNaming keeps existing names unless forced, and then replaces them", () => {
  const named: Json = { metadata: { name: "own" } };
  const prefixed: Json = { metadata: { generateName: "own-" } };
  harmonizeNaming([named, prefixed], "parent");
  assert.deepEqual(named.metadata, { name: "own" });
  assert.deepEqual(prefixed.metadata, { generateName: "own-" });

  harmonizeNaming(named, "parent", { forced: true });
  assert.deepEqual(named.metadata, { generateName: "parent-" });
  harmonizeNaming(prefixed, "parent", { forced: true, strict: true });
  assert.deepEqual(prefixed.metadata, { name: "parent" });
});

Deno.test("harmonizeNaming fails without a name to use", () => {
  assert.throws(() => harmonizeNaming({}, null), /name must be set explicitly/);
  assert.throws(() => currentBody.run({ metadata: {} }, () => harmonizeNaming({})), /name/);
});

Deno.test("adjustNamespace sets missing namespaces, overwriting only when forced", () => {
  const bare: Json = {};
  const placed: Json = { metadata: { namespace: "theirs" } };
  adjustNamespace([bare, placed], "ours");
  assert.equal(bare.metadata.namespace, "ours");
  assert.equal(placed.metadata.namespace, "theirs");

  adjustNamespace(placed, "ours", { forced: true });
  assert.equal(placed.metadata.namespace, "ours");
});

Deno.test("adjustNamespace with a cluster-scoped owner writes no namespace", () => {
  const bare: Json = {};
  adjustNamespace(bare, null);
  assert.deepEqual(bare, { metadata: {} });

  const placed: Json = { metadata: { namespace: "theirs" } };
  adjustNamespace(placed, null, { forced: true });
  assert.deepEqual(placed, { metadata: {} });
});

Deno.test("adopt = owner reference + naming + namespace + labels", () => {
  const child: Json = { kind: "Deployment", spec: { template: { spec: {} } } };
  adopt(child, OWNER, { nested: "spec.template" });
  assert.deepEqual(child.metadata, {
    ownerReferences: [buildOwnerReference(OWNER)],
    generateName: "owner-",
    namespace: "owner-ns",
    labels: { app: "demo", tier: "web" },
  });
  assert.deepEqual(child.spec.template.metadata.labels, { app: "demo", tier: "web" });
});

Deno.test("adopt keeps the children's own name, namespace and labels unless forced", () => {
  const own = () => ({ metadata: { name: "c", namespace: "ns", labels: { app: "mine" } } });
  const kept: Json = own();
  adopt(kept, OWNER);
  assert.deepEqual(kept.metadata.name, "c");
  assert.deepEqual(kept.metadata.namespace, "ns");
  assert.deepEqual(kept.metadata.labels, { app: "mine", tier: "web" });

  const forced: Json = own();
  adopt(forced, OWNER, { forced: true, strict: true });
  assert.deepEqual(forced.metadata.name, "owner");
  assert.deepEqual(forced.metadata.namespace, "owner-ns");
  assert.deepEqual(forced.metadata.labels, { app: "demo", tier: "web" });
});

Deno.test("adopt by a cluster-scoped owner without labels", () => {
  const owner = { apiVersion: "v1", kind: "Namespace", metadata: { name: "team", uid: "u" } };
  const child: Json = {};
  adopt(child, owner);
  assert.deepEqual(child.metadata, {
    ownerReferences: [buildOwnerReference(owner)],
    generateName: "team-",
    labels: {},
  });
});

Deno.test("the owner defaults to the body being handled, through awaits", async () => {
  const child: Json = {};
  await currentBody.run(OWNER, async () => {
    await Promise.resolve();
    adopt(child);
  });
  assert.equal(child.metadata.ownerReferences[0].uid, "owner-uid");
  assert.equal(child.metadata.generateName, "owner-");
  assert.equal(child.metadata.namespace, "owner-ns");
  assert.deepEqual(child.metadata.labels, { app: "demo", tier: "web" });

  const each: Json[] = [{}, {}, {}, {}, {}];
  currentBody.run(OWNER, () => {
    appendOwnerReference(each[0]);
    label(each[1]);
    harmonizeNaming(each[2]);
    adjustNamespace(each[3]);
    removeOwnerReference(each[4]);
  });
  assert.equal(each[0].metadata.ownerReferences[0].uid, "owner-uid");
  assert.deepEqual(each[1].metadata.labels, { app: "demo", tier: "web" });
  assert.equal(each[2].metadata.generateName, "owner-");
  assert.equal(each[3].metadata.namespace, "owner-ns");
  assert.deepEqual(each[4], {});
});

Deno.test("an explicit owner wins over the body being handled", () => {
  const other = { metadata: { name: "other", uid: "other-uid" } };
  const child: Json = {};
  currentBody.run(OWNER, () => adopt(child, other));
  assert.equal(child.metadata.ownerReferences[0].uid, "other-uid");
  assert.equal(child.metadata.generateName, "other-");
  assert.equal("namespace" in child.metadata, false);
});

Deno.test("outside a handler, the owner must be explicit", () => {
  assert.throws(() => adopt({}), /owner must be set explicitly/);
  assert.throws(() => label({}), /owner must be set explicitly/);
  assert.throws(() => adjustNamespace({}), /owner must be set explicitly/);
  assert.throws(() => removeOwnerReference({}), /owner must be set explicitly/);
});

Deno.test("non-object items are rejected", () => {
  assert.throws(() => label(["text" as unknown as object], { a: "b" }), TypeError);
});
