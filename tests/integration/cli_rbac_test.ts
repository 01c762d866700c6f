/**
 * `kopf rbac` against the local control plane (RBAC authorization on): an operator running as a
 * service account with exactly the printed RBAC works; with `patch` removed it reports the missing
 * permission.
 */
import assert from "node:assert/strict";
import { loadAll } from "js-yaml";
import { cluster, type Obj } from "../support/cluster.ts";
import { OperatorProcess } from "../support/operator_process.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
const MOD = `${ROOT}mod.ts`;

const HANDLERS = `
import * as kopf from ${JSON.stringify(MOD)};
kopf.on.create("kopfexamples", async function create_fn({ name }) {
  return { handled: name };
});
`;

async function kopf(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function setUp() {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const ns = await c.namespace("cli-rbac");
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-rbac-" });
  await Deno.writeTextFile(`${dir}/handlers.ts`, HANDLERS);
  const name = `kopf-${ns}`;
  const out = await kopf(["rbac", `${dir}/handlers.ts`, "-n", ns, "--name", name], {
    KUBECONFIG: c.kubeconfig,
  });
  assert.equal(out.code, 0, out.stderr);
  const docs = (loadAll(out.stdout) as Obj[]).filter(Boolean);
  return { c, ns, dir, name, docs, yaml: out.stdout };
}

async function tearDown(
  c: Awaited<ReturnType<typeof cluster>>,
  ns: string,
  name: string,
  dir: string,
) {
  for (const kind of ["clusterroles", "clusterrolebindings"]) {
    await c.api("DELETE", `/apis/rbac.authorization.k8s.io/v1/${kind}/${name}`).catch(() => {});
  }
  await c.deleteNamespace(ns);
  await Deno.remove(dir, { recursive: true });
}

Deno.test("kopf rbac prints the least ServiceAccount, Role and bindings for the handlers", async () => {
  const { c, ns, dir, name, docs, yaml } = await setUp();
  try {
    assert.deepEqual(
      docs.map((d) =>
        `${d.kind}/${d.metadata.name}${d.metadata.namespace ? "@" + d.metadata.namespace : ""}`
      ),
      [
        `ServiceAccount/${name}@${ns}`,
        `ClusterRole/${name}`,
        `ClusterRoleBinding/${name}`,
        `Role/${name}@${ns}`,
        `RoleBinding/${name}@${ns}`,
      ],
    );
    const role = docs[3];
    assert.deepEqual(role.rules, [
      {
        apiGroups: ["kopf.dev"],
        resources: ["kopfexamples"],
        verbs: ["get", "list", "watch", "patch"],
      },
      { apiGroups: ["kopf.dev"], resources: ["kopfexamples/status"], verbs: ["patch"] },
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
    ]);
    // Applied, it grants the service account exactly that (asked of the API server's authorizer).
    await c.apply(yaml);
    const can = async (verb: string, resource: string, group = "", subresource?: string) => {
      const review = await c.api("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: {
          user: `system:serviceaccount:${ns}:${name}`,
          groups: [
            "system:serviceaccounts",
            `system:serviceaccounts:${ns}`,
            "system:authenticated",
          ],
          resourceAttributes: { namespace: ns, verb, group, resource, subresource },
        },
      });
      return review.status.allowed === true;
    };
    // The authorizer learns of new roles through its informers: wait for the first grant.
    await waitFor(() => can("list", "kopfexamples", "kopf.dev"), {
      timeout: 30,
      message: "the RBAC authorizer to see the new role",
    });
    assert.equal(await can("get", "kopfexamples", "kopf.dev"), true);
    assert.equal(await can("watch", "kopfexamples", "kopf.dev"), true);
    assert.equal(await can("patch", "kopfexamples", "kopf.dev"), true);
    assert.equal(await can("patch", "kopfexamples", "kopf.dev", "status"), true);
    assert.equal(await can("create", "events"), true);
    assert.equal(await can("delete", "kopfexamples", "kopf.dev"), false);
    assert.equal(await can("get", "secrets"), false);
    assert.equal(await can("update", "kopfexamples", "kopf.dev"), false);
  } finally {
    await tearDown(c, ns, name, dir);
  }
});

async function saKubeconfig(
  c: Awaited<ReturnType<typeof cluster>>,
  ns: string,
  name: string,
  dir: string,
) {
  const request = await c.api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds: 3600 },
  });
  const path = `${dir}/sa-kubeconfig`;
  await Deno.writeTextFile(
    path,
    `apiVersion: v1
clusters: [{name: c, cluster: {server: "${c.server}", certificate-authority: "${c.caFile}"}}]
users: [{name: sa, user: {token: "${request.status.token}"}}]
contexts: [{name: sa, context: {cluster: c, user: sa, namespace: ${ns}}}]
current-context: sa
`,
  );
  return path;
}

Deno.test({
  name: "an operator with exactly that RBAC works; without patch it reports the missing permission",
  async fn() {
    const { c, ns, dir, name, yaml } = await setUp();
    try {
      await c.apply(yaml);
      const kubeconfig = await saKubeconfig(c, ns, name, dir);
      const args = ["run", "-A", CLI, "run", `${dir}/handlers.ts`, "-n", ns, "--standalone"];
      const op = OperatorProcess.start({
        command: Deno.execPath(),
        args,
        env: { KUBECONFIG: kubeconfig },
      });
      try {
        await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`, {
          apiVersion: "kopf.dev/v1",
          kind: "KopfExample",
          metadata: { name: "allowed" },
          spec: {},
        });
        await waitFor(
          async () =>
            (await c.api("GET", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/allowed`)).status
              ?.create_fn,
          { timeout: 60, message: "the handler's result" },
        ).catch((e) => {
          throw new Error(`${e.message}\n${op.output()}`);
        });
        assert.equal((await op.stop()).code, 0, op.output());
      } finally {
        await op.stop();
      }

      // The same role without `patch` on the served resource.
      await c.api("PATCH", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/${name}`, [
        { op: "replace", path: "/rules/0/verbs", value: ["list", "watch"] },
      ], { contentType: "application/json-patch+json" });
      const denied = OperatorProcess.start({
        command: Deno.execPath(),
        args,
        env: { KUBECONFIG: kubeconfig },
      });
      try {
        await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`, {
          apiVersion: "kopf.dev/v1",
          kind: "KopfExample",
          metadata: { name: "denied" },
          spec: {},
        });
        const line = await denied.waitForLog(/forbidden|(?<![,.:\d])403\b/i, 60);
        assert.match(line, /patch/i, line);
        assert.match(line, /kopfexamples/, line);
      } finally {
        await denied.stop();
      }
    } finally {
      await tearDown(c, ns, name, dir);
    }
  },
});
