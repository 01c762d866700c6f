import assert from "node:assert/strict";
import type { Resource } from "../../src/kube/resource.ts";
import { EVERYTHING, parseSelector, Selector } from "../../src/kube/selector.ts";

const ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"];

function res(
  partial: Partial<Resource> & Pick<Resource, "group" | "version" | "plural">,
): Resource {
  return {
    kind: "",
    singular: "",
    shortcuts: [],
    categories: [],
    namespaced: true,
    preferred: true,
    verbs: ALL_VERBS,
    subresources: [],
    ...partial,
  };
}

const KEX_V1 = res({
  group: "kopf.dev",
  version: "v1",
  plural: "kopfexamples",
  kind: "KopfExample",
  singular: "kopfexample",
  shortcuts: ["kex", "kexes"],
  categories: ["all", "kopf"],
});
const KEX_V2 = res({ ...KEX_V1, version: "v2", preferred: false });
const PODS = res({
  group: "",
  version: "v1",
  plural: "pods",
  kind: "Pod",
  singular: "pod",
  shortcuts: ["po"],
  categories: ["all"],
});
const METRIC_PODS = res({
  group: "metrics.k8s.io",
  version: "v1beta1",
  plural: "pods",
  kind: "PodMetrics",
  singular: "",
  verbs: ["get", "list"],
});
const EVENTS = res({
  group: "",
  version: "v1",
  plural: "events",
  kind: "Event",
  shortcuts: ["ev"],
});
const K8S_EVENTS = res({ group: "events.k8s.io", version: "v1", plural: "events", kind: "Event" });
const DEPLOYMENTS = res({
  group: "apps",
  version: "v1",
  plural: "deployments",
  kind: "Deployment",
});
const ALL = [KEX_V1, KEX_V2, PODS, METRIC_PODS, EVENTS, K8S_EVENTS, DEPLOYMENTS];

function fields(selector: Selector) {
  const { group, version, kind, plural, singular, shortcut, category, anyName, fn } = selector;
  return Object.fromEntries(
    Object.entries({ group, version, kind, plural, singular, shortcut, category, anyName, fn })
      .filter(([, v]) => v !== undefined),
  );
}

Deno.test("parseSelector() takes a bare name as any name in any group", () => {
  for (const name of ["kopfexamples", "KopfExample", "kopfexample", "kex"]) {
    const selector = parseSelector(name);
    assert.deepEqual(fields(selector), { anyName: name });
    assert.deepEqual(selector.select(ALL), [KEX_V1], name);
  }
});

Deno.test("parseSelector() splits name.group (kubectl style)", () => {
  assert.deepEqual(fields(parseSelector("kopfexamples.kopf.dev")), {
    group: "kopf.dev",
    anyName: "kopfexamples",
  });
  assert.deepEqual(parseSelector("kopfexamples.kopf.dev").select(ALL), [KEX_V1]);
});

Deno.test("parseSelector() splits name.version.group when the version looks like one", () => {
  assert.deepEqual(fields(parseSelector("kopfexamples.v1.kopf.dev")), {
    group: "kopf.dev",
    version: "v1",
    anyName: "kopfexamples",
  });
  assert.deepEqual(fields(parseSelector("kopfexamples.v2beta1.kopf.dev")), {
    group: "kopf.dev",
    version: "v2beta1",
    anyName: "kopfexamples",
  });
  // Only a name and a version: no group (any group).
  assert.deepEqual(fields(parseSelector("pods.v1")), { version: "v1", anyName: "pods" });
  // Not a conventional version: it is part of the group.
  assert.deepEqual(fields(parseSelector("things.foo1.example.com")), {
    group: "foo1.example.com",
    anyName: "things",
  });
  // A non-preferred version is matched when asked for explicitly.
  assert.deepEqual(parseSelector("kopfexamples.v2.kopf.dev").select(ALL), [KEX_V2]);
});

Deno.test("parseSelector() takes group + name", () => {
  assert.deepEqual(fields(parseSelector("kopf.dev", "kopfexamples")), {
    group: "kopf.dev",
    anyName: "kopfexamples",
  });
  assert.deepEqual(parseSelector("kopf.dev", "kopfexamples").select(ALL), [KEX_V1]);
});

Deno.test("parseSelector() takes group/version + name and group, version, name", () => {
  const expected = { group: "kopf.dev", version: "v1", anyName: "kopfexamples" };
  assert.deepEqual(fields(parseSelector("kopf.dev/v1", "kopfexamples")), expected);
  assert.deepEqual(fields(parseSelector("kopf.dev", "v1", "kopfexamples")), expected);
  assert.deepEqual(parseSelector("kopf.dev", "v2", "kopfexamples").select(ALL), [KEX_V2]);
});

Deno.test("parseSelector() maps v1 and an empty group to the core group", () => {
  const expected = { group: "", version: "v1", anyName: "pods" };
  assert.deepEqual(fields(parseSelector("v1", "pods")), expected);
  assert.deepEqual(fields(parseSelector("", "v1", "pods")), expected);
  assert.deepEqual(parseSelector("v1", "pods").select(ALL), [PODS]);
  assert.deepEqual(parseSelector("", "v1", "pods").select(ALL), [PODS]);
});

Deno.test("parseSelector() takes the keyword object, alone or after group/version", () => {
  assert.deepEqual(fields(parseSelector({ group: "apps", kind: "Deployment" })), {
    group: "apps",
    kind: "Deployment",
  });
  assert.deepEqual(parseSelector({ kind: "Deployment" }).select(ALL), [DEPLOYMENTS]);
  assert.deepEqual(parseSelector({ plural: "kopfexamples" }).select(ALL), [KEX_V1]);
  assert.deepEqual(parseSelector({ singular: "kopfexample" }).select(ALL), [KEX_V1]);
  assert.deepEqual(parseSelector({ shortcut: "kexes" }).select(ALL), [KEX_V1]);
  assert.deepEqual(parseSelector({ category: "kopf" }).select(ALL), [KEX_V1]);
  assert.deepEqual(
    parseSelector({ group: "kopf.dev", version: "v2", plural: "kopfexamples" }).select(ALL),
    [KEX_V2],
  );
  // kind is exact: the plural does not match as a kind.
  assert.deepEqual(parseSelector({ kind: "kopfexamples" }).select(ALL), []);
});

Deno.test("EVERYTHING selects all preferred resources except both kinds of events", () => {
  const all = parseSelector(EVERYTHING);
  assert.equal(all.anyName, EVERYTHING);
  assert.equal(all.isSpecific, false);
  assert.deepEqual(all.match(ALL), [KEX_V1, PODS, METRIC_PODS, DEPLOYMENTS]);
  // select() additionally drops what cannot be watched (metrics pods have no watch verb).
  assert.deepEqual(all.select(ALL), [KEX_V1, PODS, DEPLOYMENTS]);
  assert.deepEqual(parseSelector("kopf.dev", EVERYTHING).select(ALL), [KEX_V1]);
  assert.deepEqual(parseSelector("kopf.dev/v2", EVERYTHING).select(ALL), [KEX_V2]);
  assert.deepEqual(parseSelector("v1", EVERYTHING).select(ALL), [PODS]);
});

Deno.test("a predicate selects any version, never events", () => {
  const selector = parseSelector((r) => r.plural === "kopfexamples" || r.plural === "events");
  assert.equal(selector.isSpecific, false);
  assert.deepEqual(selector.select(ALL), [KEX_V1, KEX_V2]);
  const withGroup = parseSelector((r) => r.plural === "events", { group: "events.k8s.io" });
  assert.deepEqual(withGroup.select(ALL), []);
});

Deno.test("a specific selector prefers the core group over others", () => {
  // "pods" is served by core v1 and by metrics.k8s.io: core wins (as in kubectl).
  assert.deepEqual(parseSelector("pods").select(ALL), [PODS]);
  assert.deepEqual(parseSelector({ plural: "pods" }).match(ALL), [PODS]);
});

Deno.test("an ambiguous specific selector serves nothing", () => {
  const other = res({ ...KEX_V1, group: "zalando.org" });
  assert.deepEqual(parseSelector("kopfexamples").match([KEX_V1, other]), [KEX_V1, other]);
  assert.deepEqual(parseSelector("kopfexamples").select([KEX_V1, other]), []);
  assert.deepEqual(parseSelector("kopfexamples.kopf.dev").select([KEX_V1, other]), [KEX_V1]);
  // Categories are not specific: several resources are fine.
  const byCategory = parseSelector({ category: "all" });
  assert.deepEqual(byCategory.select([KEX_V1, other, PODS]), [KEX_V1, other, PODS]);
});

Deno.test("select() drops resources lacking list or watch", () => {
  const noWatch = res({ ...DEPLOYMENTS, verbs: ["get", "list"] });
  assert.deepEqual(parseSelector("deployments").select([noWatch]), []);
  assert.deepEqual(parseSelector("deployments").match([noWatch]), [noWatch]);
});

Deno.test("parseSelector() rejects ambiguous and empty specifications", () => {
  assert.throws(() => parseSelector(), /without a name/);
  assert.throws(() => parseSelector({ group: "kopf.dev" }), /without a name/);
  assert.throws(() => parseSelector("kopfexamples", { kind: "KopfExample" }), /Ambiguous/);
  assert.throws(() => parseSelector({ kind: "A", plural: "b" }), /Ambiguous.*kind="A", plural="b"/);
  assert.throws(() => parseSelector(() => true, { plural: "x" }), /Ambiguous/);
  assert.throws(() => parseSelector(""), /must not be an empty string/);
  assert.throws(() => parseSelector({ singular: "" }), /must not be an empty string/);
  assert.throws(() => parseSelector("a", "b", "c", "d"), /too many positional arguments/);
  assert.throws(() => parseSelector(() => true, "x"), /predicate/);
  assert.throws(() => parseSelector("kopf.dev", () => true), /predicate/);
  assert.throws(() => parseSelector(EVERYTHING, "pods"), /EVERYTHING can only be the last/);
  assert.throws(() => parseSelector({ plural: "x", name: "y" } as never), /unknown keyword "name"/);
  assert.throws(() => parseSelector({ plural: 5 } as never), /must be a string/);
  assert.throws(() => parseSelector({ plural: "x" }, "y" as never), /must be the last argument/);
  assert.throws(
    () => parseSelector("kopf.dev/v1", "kopfexamples", { version: "v2" }),
    /version "v2" contradicts "v1"/,
  );
  assert.throws(() => parseSelector(42 as never), /unsupported argument 42/);
});

Deno.test("Selector.toString() is readable", () => {
  assert.equal(parseSelector("kopfexamples").toString(), "kopfexamples");
  assert.equal(parseSelector("kopf.dev/v1", "kopfexamples").toString(), "kopf.dev/v1 kopfexamples");
  assert.equal(parseSelector("v1", "pods").toString(), "v1 pods");
  assert.equal(parseSelector({ kind: "Pod" }).toString(), "kind=Pod");
  assert.equal(parseSelector("apps", EVERYTHING).toString(), "apps EVERYTHING");
  assert.equal(
    parseSelector(function mine() {
      return true;
    }).toString(),
    "<predicate mine>",
  );
});

Deno.test("EVERYTHING is shared across module copies", () => {
  assert.equal(EVERYTHING, Symbol.for("kopf.EVERYTHING"));
});

Deno.test("Selector constructor validates already split specs", () => {
  assert.throws(() => new Selector({}), TypeError);
  assert.equal(new Selector({ plural: "pods" }).isSpecific, true);
});
