// Discovery against the real API server: aggregated and legacy documents, every selector form
// resolving kopfexamples, core-group preference, EVERYTHING, suggestions for unknown names, and
// refreshes after a new CRD appears.
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.ts";
import { Discovery, ResolveError } from "../../src/kube/discovery.ts";
import { resourceKey } from "../../src/kube/resource.ts";
import {
  EVERYTHING,
  parseSelector,
  type SelectorArg,
  type SelectorSpec,
} from "../../src/kube/selector.ts";
import { cluster } from "../support/cluster.ts";

const FORMS: (SelectorArg | SelectorSpec)[][] = [
  ["kopfexamples"],
  ["KopfExample"],
  ["kopfexample"],
  ["kex"],
  ["kopfexes"],
  ["kopfexamples.kopf.dev"],
  ["kopfexamples.v1.kopf.dev"],
  ["kopf.dev", "kopfexamples"],
  ["kopf.dev/v1", "kopfexamples"],
  ["kopf.dev", "v1", "kopfexamples"],
  [{ kind: "KopfExample" }],
  [{ plural: "kopfexamples" }],
  [{ singular: "kopfexample" }],
  [{ shortcut: "kexes" }],
  [{ group: "kopf.dev", version: "v1", plural: "kopfexamples" }],
  [(r) => r.group === "kopf.dev" && r.plural === "kopfexamples"],
];

async function setup() {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig });
  return { c, client, [Symbol.dispose]: () => client.close() };
}

for (const aggregated of [true, false]) {
  Deno.test(`discovery (${aggregated ? "aggregated" : "legacy"}) resolves kopfexamples by every name form`, async () => {
    using t = await setup();
    const discovery = new Discovery(t.client, { aggregated });
    for (const form of FORMS) {
      const found = await discovery.resolve(parseSelector(...form));
      assert.deepEqual(
        found.map(resourceKey),
        ["kopfexamples.v1.kopf.dev"],
        `form ${String(form)}`,
      );
    }
    const [kex] = await discovery.resolve(parseSelector("kopfexamples"));
    assert.equal(kex.kind, "KopfExample");
    assert.equal(kex.singular, "kopfexample");
    assert.equal(kex.namespaced, true);
    assert.equal(kex.preferred, true);
    assert.deepEqual([...kex.shortcuts].sort(), ["kex", "kexes", "kopfex", "kopfexes"]);
    assert.deepEqual(kex.subresources, ["status"]);
    for (const verb of ["list", "watch", "patch", "get", "create", "delete"]) {
      assert.ok(kex.verbs.includes(verb), verb);
    }
    if (aggregated) {
      assert.equal(discovery.fetches, 2, "aggregated discovery is two requests");
    } else {
      assert.ok(discovery.fetches > 10, `the legacy walk fetched ${discovery.fetches} documents`);
    }
    assert.equal(
      t.client.metrics.requests.GET,
      discovery.fetches,
      "everything after came from the cache",
    );
  });
}

Deno.test("aggregated and legacy discovery agree", async () => {
  using t = await setup();
  const key = (
    r: {
      group: string;
      version: string;
      plural: string;
      preferred: boolean;
      namespaced: boolean;
      kind: string;
      verbs: readonly string[];
      subresources: readonly string[];
    },
  ) =>
    `${resourceKey(r)} ${r.kind} ${r.preferred} ${r.namespaced} [${[...r.verbs].sort()}] [${
      [...r.subresources].sort()
    }]`;
  const aggregated = (await new Discovery(t.client).resources()).map(key).sort();
  const legacy = (await new Discovery(t.client, { aggregated: false }).resources()).map(key).sort();
  assert.ok(aggregated.length > 50, `${aggregated.length} resources`);
  assert.deepEqual(aggregated, legacy);
});

Deno.test("core resources resolve by core forms; EVERYTHING leaves events out", async () => {
  using t = await setup();
  const discovery = new Discovery(t.client);
  for (
    const form of [["pods"], ["v1", "pods"], ["", "v1", "pods"], ["po"], [{
      kind: "Pod",
    }]] as (SelectorArg | SelectorSpec)[][]
  ) {
    assert.deepEqual((await discovery.resolve(parseSelector(...form))).map(resourceKey), [
      "pods.v1",
    ], String(form));
  }
  const all = (await discovery.resolve(parseSelector(EVERYTHING))).map(resourceKey);
  assert.ok(all.includes("kopfexamples.v1.kopf.dev"));
  assert.ok(all.includes("configmaps.v1"));
  assert.ok(!all.includes("events.v1"));
  assert.ok(!all.some((key) => key.startsWith("events.") && key.endsWith("events.k8s.io")));
  // Unwatchable resources (only create) are not served for watching.
  assert.ok(!all.includes("bindings.v1"));
  assert.ok(!all.includes("selfsubjectreviews.v1.authentication.k8s.io"));
  const apps = (await discovery.resolve(parseSelector("apps", EVERYTHING))).map(resourceKey);
  assert.ok(apps.includes("deployments.v1.apps"));
  assert.ok(apps.every((key) => key.endsWith(".apps")));
});

Deno.test("unknown names fail with close suggestions", async () => {
  using t = await setup();
  const discovery = new Discovery(t.client);
  const error = await discovery.resolve(parseSelector("kopfexampel")).catch((e) => e);
  assert.ok(error instanceof ResolveError, String(error));
  assert.equal(error.kind, "unknown");
  assert.ok(error.candidates.includes("kopfexamples.kopf.dev"), error.message);
  assert.match(
    error.message,
    /^No resource matches kopfexampel \(did you mean: .*kopfexamples\.kopf\.dev/,
  );
  const configmap = await discovery.resolve(parseSelector("configmap5")).catch((e) => e);
  assert.ok(configmap.candidates.includes("configmaps"), configmap.message);
});

Deno.test("a CRD created after discovery is found by refresh on a miss and by invalidate()", async () => {
  using t = await setup();
  const { c } = t;
  const suffix = crypto.randomUUID().slice(0, 8);
  const plural = `lateprobes${suffix}`;
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.kopf.dev` },
    spec: {
      group: "kopf.dev",
      scope: "Namespaced",
      names: { kind: `LateProbe${suffix}`, plural, singular: `lateprobe${suffix}` },
      versions: [{
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
        },
      }],
    },
  };
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/crd.yaml`, JSON.stringify(crd));
  const discovery = new Discovery(t.client, { missRefreshMs: 60_000 });
  try {
    await discovery.resources();
    const fetched = discovery.fetches;
    // The cache was just filled: a miss does not refresh within the interval.
    await assert.rejects(discovery.resolve(parseSelector(plural)), ResolveError);
    assert.equal(discovery.fetches, fetched);
    await c.applyCrd(`${dir}/crd.yaml`);
    await assert.rejects(discovery.resolve(parseSelector(plural)), ResolveError);
    discovery.invalidate();
    assert.deepEqual((await discovery.resolve(parseSelector(plural))).map(resourceKey), [
      `${plural}.v1.kopf.dev`,
    ]);
    assert.equal(discovery.fetches, fetched + 2);
    // With a zero interval a miss refreshes by itself.
    const eager = new Discovery(t.client, { missRefreshMs: 0 });
    await eager.resources();
    const other = `${plural}x`;
    await Deno.writeTextFile(
      `${dir}/crd2.yaml`,
      JSON.stringify({
        ...crd,
        metadata: { name: `${other}.kopf.dev` },
        spec: {
          ...crd.spec,
          names: { kind: `LateProbeX${suffix}`, plural: other, singular: `lateprobex${suffix}` },
        },
      }),
    );
    await c.applyCrd(`${dir}/crd2.yaml`);
    assert.deepEqual((await eager.resolve(parseSelector(other))).map(resourceKey), [
      `${other}.v1.kopf.dev`,
    ]);
  } finally {
    for (const name of [plural, `${plural}x`]) {
      await c.api(
        "DELETE",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}.kopf.dev`,
      )
        .catch(() => {});
    }
  }
});
