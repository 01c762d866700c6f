import assert from "node:assert/strict";
import { load } from "js-yaml";
import {
  isPlainNamespace,
  rbacManifests,
  type RbacResource,
  toYamlStream,
} from "../../src/cli/rbac.ts";

const examples: RbacResource = {
  group: "kopf.dev",
  plural: "kopfexamples",
  namespaced: true,
  patch: true,
  status: true,
};
const watchedPods: RbacResource = {
  group: "",
  plural: "pods",
  namespaced: true,
  patch: false,
  status: true,
};
const clusterThing: RbacResource = {
  group: "example.test",
  plural: "things",
  namespaced: false,
  patch: true,
  status: false,
};

const kinds = (docs: Record<string, unknown>[]) =>
  docs.map((d) =>
    `${d.kind}${
      (d.metadata as { namespace?: string }).namespace
        ? "@" + (d.metadata as { namespace?: string }).namespace
        : ""
    }`
  );

Deno.test("named namespaces: a Role per namespace, cluster-scoped grants in a ClusterRole", () => {
  const docs = rbacManifests([examples, watchedPods, clusterThing], { namespaces: ["ns1", "ns2"] });
  assert.deepEqual(kinds(docs), [
    "ServiceAccount@ns1",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role@ns1",
    "RoleBinding@ns1",
    "Role@ns2",
    "RoleBinding@ns2",
  ]);
  assert.deepEqual(docs[1].rules, [
    {
      apiGroups: ["apiextensions.k8s.io"],
      resources: ["customresourcedefinitions"],
      verbs: ["list", "watch"],
    },
    {
      apiGroups: ["example.test"],
      resources: ["things"],
      verbs: ["get", "list", "watch", "patch"],
    },
  ]);
  assert.deepEqual(docs[3].rules, [
    {
      apiGroups: ["kopf.dev"],
      resources: ["kopfexamples"],
      verbs: ["get", "list", "watch", "patch"],
    },
    { apiGroups: ["kopf.dev"], resources: ["kopfexamples/status"], verbs: ["patch"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] },
    { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
  ]);
  assert.deepEqual(docs[4].subjects, [{
    kind: "ServiceAccount",
    name: "kopf-operator",
    namespace: "ns1",
  }]);
});

Deno.test("cluster-wide and namespace globs: everything in one ClusterRole", () => {
  const all = rbacManifests([examples], { name: "my-op", serviceAccountNamespace: "ops" });
  assert.deepEqual(kinds(all), ["ServiceAccount@ops", "ClusterRole", "ClusterRoleBinding"]);
  assert.deepEqual(all[1].rules.map((r: { resources: string[] }) => r.resources[0]), [
    "customresourcedefinitions",
    "kopfexamples",
    "kopfexamples/status",
    "events",
  ]);
  const globs = rbacManifests([examples], { namespaces: ["team-*", "!team-x"] });
  assert.deepEqual(kinds(globs), ["ServiceAccount@default", "ClusterRole", "ClusterRoleBinding"]);
  assert.ok(
    globs[1].rules.some((r: { resources: string[] }) => r.resources[0] === "namespaces"),
    "patterns need to watch namespaces",
  );
});

Deno.test("the YAML stream parses back to the same manifests", () => {
  const docs = rbacManifests([examples], { namespaces: ["default"] });
  const text = toYamlStream(docs);
  assert.ok(text.startsWith("---\n"));
  const back = text.split(/^---\n/m).filter(Boolean).map((part) => load(part));
  assert.deepEqual(back, docs);
  assert.equal(isPlainNamespace("default"), true);
  assert.equal(isPlainNamespace("team-*"), false);
  assert.equal(isPlainNamespace("!x"), false);
});

Deno.test("with a metrics URL: a Service for its port with prometheus.io annotations", () => {
  const docs = rbacManifests([examples], {
    name: "my-op",
    serviceAccountNamespace: "ops",
    metrics: "http://0.0.0.0:9090/metrics",
  });
  assert.deepEqual(kinds(docs), [
    "ServiceAccount@ops",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service@ops",
  ]);
  const service = docs[3];
  assert.equal(service.metadata.name, "my-op-metrics");
  assert.deepEqual(service.metadata.annotations, {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": "9090",
    "prometheus.io/path": "/metrics",
  });
  assert.deepEqual(service.spec.selector, { "app.kubernetes.io/name": "my-op" });
  assert.deepEqual(service.spec.ports, [{
    name: "metrics",
    port: 9090,
    targetPort: 9090,
    protocol: "TCP",
  }]);
});
