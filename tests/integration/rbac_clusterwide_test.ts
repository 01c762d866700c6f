/**
 * `kopf rbac -A` against the local control plane: a cluster-wide operator running as a service
 * account with exactly the printed ClusterRole works — results in status (the /status subresource),
 * a finalizer added and released, Events posted, an `on.event` handler on Pods — and with `list`
 * on Pods taken away it says which permission is missing, on one line.
 *
 * The operator is cluster-wide, so it serves a CRD of this test only (`rbacprobes.h10.kopf.dev`)
 * and Pods with a label of this test only: other tests' objects stay untouched.
 */
import assert from "node:assert/strict";
import { loadAll } from "js-yaml";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj, type TestCluster } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const GROUP = "h10.kopf.dev";
const PLURAL = "rbacprobes";

const CRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${PLURAL}.${GROUP}
spec:
  scope: Namespaced
  group: ${GROUP}
  names: { kind: RbacProbe, plural: ${PLURAL}, singular: rbacprobe }
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`;

function handlers(label: string): string {
  return `
import * as kopf from ${JSON.stringify(`${ROOT}mod.ts`)};
kopf.on.create(${JSON.stringify(GROUP)}, "v1", ${
    JSON.stringify(PLURAL)
  }, function create_fn({ body, name }) {
  kopf.info(body, { reason: "Probed", message: "created " + name });
  return { handled: name };
});
kopf.on.delete(${JSON.stringify(GROUP)}, "v1", ${
    JSON.stringify(PLURAL)
  }, function delete_fn({ logger }) {
  logger.info("Releasing the probe.");
});
kopf.on.event("", "v1", "pods", { labels: { ${JSON.stringify(label)}: "yes" } },
  function pod_seen({ name, logger }) { logger.info("Seen pod " + name); });
`;
}

async function kopf(args: string[], kubeconfig: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli.ts`, ...args],
    env: { KUBECONFIG: kubeconfig },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function serviceAccountKubeconfig(
  c: TestCluster,
  ns: string,
  name: string,
  dir: string,
): Promise<string> {
  // TokenRequest: a short-lived token of the service account, as a pod would get.
  const request = await c.api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds: 3600 },
  });
  const path = `${dir}/sa-kubeconfig`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: c.server, "certificate-authority": c.caFile } }],
      users: [{ name: "sa", user: { token: request.status.token } }],
      contexts: [{ name: "sa", context: { cluster: "c", user: "sa", namespace: ns } }],
      "current-context": "sa",
    }),
  );
  return path;
}

async function allowed(c: TestCluster, ns: string, sa: string, attrs: Obj): Promise<boolean> {
  const review = await c.api("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: `system:serviceaccount:${ns}:${sa}`,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"],
      resourceAttributes: attrs,
    },
  });
  return review.status.allowed === true;
}

Deno.test("kopf rbac -A: a cluster-wide operator with exactly that ClusterRole works; without one verb it says which", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-rbac-" });
  await Deno.writeTextFile(`${dir}/crd.yaml`, CRD);
  await c.applyCrd(`${dir}/crd.yaml`);
  const ns = await c.namespace("rbac-cw");
  const label = `rbac-test-${ns}`;
  const name = `kopf-${ns}`;
  await Deno.writeTextFile(`${dir}/handlers.ts`, handlers(label));
  const probes = `/apis/${GROUP}/v1/namespaces/${ns}/${PLURAL}`;
  const role = `/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}`;
  try {
    const printed = await kopf(
      ["rbac", `${dir}/handlers.ts`, "-A", "--name", name, "--service-account-namespace", ns],
      c.kubeconfig,
    );
    assert.equal(printed.code, 0, printed.stderr);
    const docs = (loadAll(printed.stdout) as Obj[]).filter(Boolean);
    assert.deepEqual(docs.map((d) => d.kind), [
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
    ]);
    const rules: Obj[] = docs[1].rules;
    const verbsOf = (group: string, resource: string) =>
      rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource))
        .flatMap((r) => r.verbs).sort();
    assert.deepEqual(verbsOf(GROUP, PLURAL), ["get", "list", "patch", "watch"]);
    assert.deepEqual(verbsOf(GROUP, `${PLURAL}/status`), ["patch"]);
    assert.deepEqual(verbsOf("", "pods"), ["list", "watch"], "on.event handlers only read");
    assert.deepEqual(verbsOf("", "events"), ["create", "patch"]);
    await c.apply(printed.stdout);
    await waitFor(() => allowed(c, ns, name, { verb: "watch", resource: "pods" }), {
      timeout: 30,
      message: "the authorizer to see the new ClusterRole",
    });
    assert.equal(await allowed(c, ns, name, { verb: "delete", resource: "pods" }), false);
    assert.equal(await allowed(c, ns, name, { verb: "get", resource: "secrets" }), false);

    const kubeconfig = await serviceAccountKubeconfig(c, ns, name, dir);
    const args = ["run", "-A", "--standalone", `${dir}/handlers.ts`];
    const env = { KUBECONFIG: kubeconfig };

    // With exactly the printed RBAC: everything the handlers need works.
    const runner = new KopfRunner(args, { env, cwd: ROOT, timeout: 30 });
    try {
      await c.api("POST", probes, {
        apiVersion: `${GROUP}/v1`,
        kind: "RbacProbe",
        metadata: { name: "probe" },
      });
      const status = await waitFor(
        async () => (await c.api("GET", `${probes}/probe`)).status?.create_fn,
        { timeout: 60, message: "the result in status" },
      );
      assert.deepEqual(status, { handled: "probe" });
      const events = await waitFor(async () => {
        const items: Obj[] = (await c.api("GET", `/api/v1/namespaces/${ns}/events`)).items;
        return items.find((e) => e.reason === "Probed");
      }, { timeout: 30, message: "the Event" });
      assert.equal(events.message, "created probe");
      await c.api("POST", `/api/v1/namespaces/${ns}/pods`, {
        metadata: { name: "labelled", labels: { [label]: "yes" } },
        spec: { containers: [{ name: "main", image: "busybox" }] },
      });
      await runner.waitForOutput(`Seen pod labelled`, { timeout: 60 });
      await c.api("DELETE", `${probes}/probe`);
      await waitFor(async () => {
        try {
          await c.api("GET", `${probes}/probe`);
          return false;
        } catch (error) {
          return (error as { status?: number }).status === 404;
        }
      }, { timeout: 60, message: "the probe to go (finalizer released)" });
      await runner.waitForOutput("Releasing the probe.", { timeout: 10 });
    } finally {
      await runner.stop();
    }
    assert.equal(runner.exitCode, 0, runner.output);
    // Not a timestamp's milliseconds (",403"): a status code.
    assert.doesNotMatch(runner.output, /forbidden|(?<![,.:\d])403\b/i, runner.output);

    // Without `list` on pods: the operator says what it misses, in one line.
    const withoutList = rules.map((r) =>
      r.resources.includes("pods")
        ? { ...r, verbs: r.verbs.filter((v: string) => v !== "list") }
        : r
    );
    await c.api("PATCH", role, [{ op: "replace", path: "/rules", value: withoutList }], {
      contentType: "application/json-patch+json",
    });
    await waitFor(async () => !(await allowed(c, ns, name, { verb: "list", resource: "pods" })), {
      timeout: 30,
      message: "the authorizer to see the narrowed ClusterRole",
    });
    const denied = new KopfRunner(args, { env, cwd: ROOT, timeout: 30, reraise: false });
    try {
      const line = await denied.waitForOutput(/forbidden|(?<![,.:\d])403\b/i, { timeout: 60 });
      assert.match(line, /\blist\b/i, line);
      assert.match(line, /\bpods\b/, line);
      assert.doesNotMatch(line, /\n/);
    } finally {
      await denied.stop();
    }
  } finally {
    await c.api("DELETE", role).catch(() => {});
    await c.api("DELETE", `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}`)
      .catch(() => {});
    await c.deleteNamespace(ns);
    await Deno.remove(dir, { recursive: true });
  }
});
