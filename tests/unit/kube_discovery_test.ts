/**
 * Discovery's parsing, caching and suggestions over canned discovery documents (shaped like the
 * API server's). The integration tests run the same code against the real server.
 */
import assert from "node:assert/strict";
import {
  AGGREGATED_ACCEPT,
  Discovery,
  type DiscoveryTransport,
  editDistance,
  ResolveError,
} from "../../src/kube/discovery.ts";
import type { SleepingClock } from "../../src/kube/time.ts";
import { EVERYTHING, parseSelector } from "../../src/kube/selector.ts";

const VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"];

const AGGREGATED_CORE = {
  kind: "APIGroupDiscoveryList",
  apiVersion: "apidiscovery.k8s.io/v2",
  items: [{
    metadata: { creationTimestamp: null },
    versions: [{
      version: "v1",
      resources: [
        {
          resource: "pods",
          responseKind: { group: "", version: "v1", kind: "Pod" },
          scope: "Namespaced",
          singularResource: "pod",
          verbs: VERBS,
          shortNames: ["po"],
          categories: ["all"],
          subresources: [{ subresource: "status" }, { subresource: "log" }],
        },
        {
          resource: "namespaces",
          responseKind: { group: "", version: "v1", kind: "Namespace" },
          scope: "Cluster",
          singularResource: "namespace",
          verbs: VERBS,
          shortNames: ["ns"],
        },
        {
          resource: "bindings",
          responseKind: { group: "", version: "v1", kind: "Binding" },
          scope: "Namespaced",
          singularResource: "binding",
          verbs: ["create"],
        },
      ],
    }],
  }],
};

const AGGREGATED_GROUPS = {
  kind: "APIGroupDiscoveryList",
  apiVersion: "apidiscovery.k8s.io/v2",
  items: [{
    metadata: { name: "kopf.dev" },
    versions: [
      {
        version: "v1",
        resources: [{
          resource: "kopfexamples",
          responseKind: { group: "kopf.dev", version: "v1", kind: "KopfExample" },
          scope: "Namespaced",
          singularResource: "kopfexample",
          verbs: VERBS,
          shortNames: ["kex", "kexes"],
          categories: ["all"],
          subresources: [{ subresource: "status" }],
        }],
      },
      {
        version: "v1beta1",
        resources: [{
          resource: "kopfexamples",
          responseKind: { group: "kopf.dev", version: "v1beta1", kind: "KopfExample" },
          scope: "Namespaced",
          singularResource: "",
          verbs: VERBS,
        }],
      },
    ],
  }],
};

class FakeClock implements SleepingClock {
  time = 0;
  now = () => this.time;
  sleep = () => Promise.resolve();
}

/** Serves canned documents by path; counts requests; aggregated or legacy by flag. */
function transport(docs: Record<string, unknown>) {
  const requests: { path: string; accept?: string }[] = [];
  const t: DiscoveryTransport = {
    request<T>(_method: string, path: string, options?: { accept?: string }): Promise<T> {
      requests.push({ path, accept: options?.accept });
      if (!(path in docs)) return Promise.reject(new Error(`GET ${path}: 404`));
      return Promise.resolve(structuredClone(docs[path]) as T);
    },
  };
  return { t, requests, docs };
}

Deno.test("Discovery reads aggregated documents in two requests", async () => {
  const { t, requests } = transport({ "/api": AGGREGATED_CORE, "/apis": AGGREGATED_GROUPS });
  const discovery = new Discovery(t, { clock: new FakeClock() });
  const resources = await discovery.resources();
  assert.deepEqual(requests, [
    { path: "/api", accept: AGGREGATED_ACCEPT },
    { path: "/apis", accept: AGGREGATED_ACCEPT },
  ]);
  const pods = resources.find((r) => r.plural === "pods")!;
  assert.deepEqual(pods, {
    group: "",
    version: "v1",
    plural: "pods",
    kind: "Pod",
    singular: "pod",
    shortcuts: ["po"],
    categories: ["all"],
    namespaced: true,
    preferred: true,
    verbs: VERBS,
    subresources: ["status", "log"],
  });
  const kex = resources.filter((r) => r.plural === "kopfexamples");
  assert.deepEqual(kex.map((r) => [r.version, r.preferred, r.singular]), [
    ["v1", true, "kopfexample"],
    ["v1beta1", false, "kopfexample"], // empty singular falls back to the lower-cased kind
  ]);
  assert.equal(resources.find((r) => r.plural === "namespaces")!.namespaced, false);
  // Cached.
  await discovery.resources();
  assert.equal(requests.length, 2);
});

Deno.test("Discovery falls back to the legacy walk", async () => {
  const { t, requests } = transport({
    "/api": { kind: "APIVersions", versions: ["v1"] },
    "/api/v1": {
      kind: "APIResourceList",
      groupVersion: "v1",
      resources: [
        {
          name: "pods",
          singularName: "pod",
          namespaced: true,
          kind: "Pod",
          verbs: VERBS,
          shortNames: ["po"],
        },
        {
          name: "pods/status",
          singularName: "",
          namespaced: true,
          kind: "Pod",
          verbs: ["get", "patch"],
        },
      ],
    },
    "/apis": {
      kind: "APIGroupList",
      groups: [
        {
          name: "kopf.dev",
          versions: [{ groupVersion: "kopf.dev/v1", version: "v1" }, {
            groupVersion: "kopf.dev/v1beta1",
            version: "v1beta1",
          }],
          preferredVersion: { groupVersion: "kopf.dev/v1", version: "v1" },
        },
        {
          name: "metrics.k8s.io",
          versions: [{ groupVersion: "metrics.k8s.io/v1beta1", version: "v1beta1" }],
        },
      ],
    },
    "/apis/kopf.dev/v1": {
      resources: [{
        name: "kopfexamples",
        singularName: "kopfexample",
        namespaced: true,
        kind: "KopfExample",
        verbs: VERBS,
      }],
    },
    "/apis/kopf.dev/v1beta1": {
      resources: [{
        name: "kopfexamples",
        singularName: "kopfexample",
        namespaced: true,
        kind: "KopfExample",
        verbs: VERBS,
      }],
    },
    // /apis/metrics.k8s.io/v1beta1 is missing (a broken aggregated API): skipped, not fatal.
  });
  const discovery = new Discovery(t, { clock: new FakeClock() });
  const resources = await discovery.resources();
  assert.deepEqual(
    resources.map((r) => `${r.plural}.${r.version}.${r.group}:${r.preferred}:${r.subresources}`)
      .sort(),
    [
      "kopfexamples.v1.kopf.dev:true:",
      "kopfexamples.v1beta1.kopf.dev:false:",
      "pods.v1.:true:status",
    ],
  );
  assert.equal(requests[0].accept, AGGREGATED_ACCEPT, "aggregated is tried first");
  assert.deepEqual(requests.slice(1).map((r) => r.path).sort(), [
    "/api/v1",
    "/apis",
    "/apis/kopf.dev/v1",
    "/apis/kopf.dev/v1beta1",
    "/apis/metrics.k8s.io/v1beta1",
  ]);
});

Deno.test("resolve() applies the selector rules", async () => {
  const { t } = transport({ "/api": AGGREGATED_CORE, "/apis": AGGREGATED_GROUPS });
  const discovery = new Discovery(t, { clock: new FakeClock() });
  for (
    const args of [["kopfexamples"], ["KopfExample"], ["kex"], ["kopfexamples.kopf.dev"], [
      "kopf.dev",
      "kopfexamples",
    ]]
  ) {
    const found = await discovery.resolve(parseSelector(...args));
    assert.deepEqual(
      found.map((r) => `${r.plural}.${r.version}`),
      ["kopfexamples.v1"],
      String(args),
    );
  }
  const v1beta1 = await discovery.resolve(parseSelector("kopf.dev/v1beta1", "kopfexamples"));
  assert.deepEqual(v1beta1.map((r) => r.version), ["v1beta1"]);
  const everything = await discovery.resolve(parseSelector(EVERYTHING));
  assert.deepEqual(everything.map((r) => r.plural).sort(), ["kopfexamples", "namespaces", "pods"]);
  // Not watchable: dropped for watching, returned for other uses.
  assert.deepEqual(await discovery.resolve(parseSelector("bindings")), []);
  assert.equal(
    (await discovery.resolve(parseSelector("bindings"), { watchable: false })).length,
    1,
  );
});

Deno.test("resolve() suggests close names for unknown ones", async () => {
  const { t } = transport({ "/api": AGGREGATED_CORE, "/apis": AGGREGATED_GROUPS });
  const discovery = new Discovery(t, { clock: new FakeClock() });
  const error = await discovery.resolve(parseSelector("kopfexampels")).catch((e) => e);
  assert.ok(error instanceof ResolveError);
  assert.equal(error.kind, "unknown");
  assert.deepEqual(error.candidates, ["kopfexamples.kopf.dev"]);
  assert.equal(
    error.message,
    "No resource matches kopfexampels (did you mean: kopfexamples.kopf.dev?)",
  );
  const wrongGroup = await discovery.resolve(parseSelector("kopfexamples.kopf.io")).catch((e) => e);
  assert.deepEqual(wrongGroup.candidates, ["kopfexamples.kopf.dev"]);
  const nothingClose = await discovery.resolve(parseSelector("zzzzzzzzzz")).catch((e) => e);
  assert.equal(nothingClose.message, "No resource matches zzzzzzzzzz");
  const pod = await discovery.resolve(parseSelector({ kind: "Pods" })).catch((e) => e);
  assert.deepEqual(pod.candidates, ["pods"]);
});

Deno.test("resolve() rejects ambiguous names, listing the candidates", async () => {
  const groups = structuredClone(AGGREGATED_GROUPS);
  const copy = structuredClone(groups.items[0]);
  copy.metadata.name = "zalando.org";
  groups.items.push(copy);
  const { t } = transport({ "/api": AGGREGATED_CORE, "/apis": groups });
  const discovery = new Discovery(t, { clock: new FakeClock() });
  const error = await discovery.resolve(parseSelector("kopfexamples")).catch((e) => e);
  assert.ok(error instanceof ResolveError);
  assert.equal(error.kind, "ambiguous");
  assert.deepEqual(error.candidates, ["kopfexamples.v1.kopf.dev", "kopfexamples.v1.zalando.org"]);
  assert.match(
    error.message,
    /is ambiguous: it matches kopfexamples.v1.kopf.dev, kopfexamples.v1.zalando.org/,
  );
  assert.equal((await discovery.resolve(parseSelector("kopfexamples.zalando.org"))).length, 1);
});

Deno.test("a miss refreshes discovery at most once per interval; invalidate() forces it", async () => {
  const clock = new FakeClock();
  const { t, requests, docs } = transport({
    "/api": AGGREGATED_CORE,
    "/apis": { kind: "APIGroupDiscoveryList", items: [] },
  });
  const discovery = new Discovery(t, { clock, missRefreshMs: 10_000 });
  await discovery.resources();
  assert.equal(requests.length, 2);
  clock.time += 10_000;
  // The CRD appears; the miss refreshes.
  docs["/apis"] = AGGREGATED_GROUPS;
  assert.equal((await discovery.resolve(parseSelector("kex"))).length, 1);
  assert.equal(requests.length, 4);
  // Misses within the interval do not refresh again.
  for (let i = 0; i < 5; i++) {
    await assert.rejects(discovery.resolve(parseSelector("nothing")), ResolveError);
  }
  assert.equal(requests.length, 4);
  clock.time += 10_000;
  await assert.rejects(discovery.resolve(parseSelector("nothing")), ResolveError);
  assert.equal(requests.length, 6);
  // invalidate(): the next lookup refetches even if it would hit.
  discovery.invalidate();
  await discovery.resolve(parseSelector("pods"));
  assert.equal(requests.length, 8);
  // Concurrent refreshes share one fetch.
  await Promise.all([discovery.refresh(), discovery.refresh(), discovery.refresh()]);
  assert.equal(requests.length, 10);
});

Deno.test("editDistance()", () => {
  assert.equal(editDistance("", ""), 0);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("pods", "pod"), 1);
  assert.equal(editDistance("abc", ""), 3);
});
