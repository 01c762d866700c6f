/**
 * `kopf rbac` for admission handlers against the local control plane: the printed ClusterRole has
 * `create`/`patch`/`delete` on the two webhook configurations and nothing more for them, and an
 * operator running as a service account with exactly that role (through `kopf run`, with
 * `--webhook-server`/`--webhook-managed`) creates its configurations, answers the API server, and
 * removes them at SIGTERM without a single forbidden request.
 */
import assert from "node:assert/strict";
import { loadAll } from "js-yaml";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { testResource } from "../support/engine.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const c = await cluster();
const res = await testResource(c, "rbacadmissions");

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

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function exists(path: string): Promise<boolean> {
  try {
    await c.api("GET", path);
    return true;
  } catch (error) {
    if ((error as { status?: number }).status === 404) return false;
    throw error;
  }
}

Deno.test("kopf rbac: the webhook configurations' verbs, enough for a managed operator and no more", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kopf-adm-rbac-" });
  const ns = await c.namespace("adm-rbac");
  const name = `kopf-${ns}`;
  const managed = `${ns}.kopf.dev`;
  await Deno.writeTextFile(
    `${dir}/handlers.ts`,
    `import * as kopf from ${JSON.stringify(`${ROOT}mod.ts`)};
kopf.on.validate(${JSON.stringify(res.plural)}, function check_fn({ spec, warnings }) {
  warnings.push("checked by the service account's operator");
  if (spec.bad) throw new kopf.AdmissionError("bad", { code: 400 });
});
`,
  );
  const configs = ["validating", "mutating"].map((kind) =>
    `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${managed}`
  );
  try {
    const printed = await kopf(
      ["rbac", `${dir}/handlers.ts`, "-A", "--name", name, "--service-account-namespace", ns],
      c.kubeconfig,
    );
    assert.equal(printed.code, 0, printed.stderr);
    const docs = (loadAll(printed.stdout) as Obj[]).filter(Boolean);
    const rules: Obj[] = docs.find((d) => d.kind === "ClusterRole")!.rules;
    const webhookRules = rules.filter((r) => r.apiGroups.includes("admissionregistration.k8s.io"));
    assert.deepEqual(webhookRules, [{
      apiGroups: ["admissionregistration.k8s.io"],
      resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
      verbs: ["create", "patch", "delete"],
    }]);
    assert.equal(
      rules.some((r) => r.resources.includes(res.plural)),
      false,
      "admission handlers neither watch nor patch their objects",
    );
    await c.apply(printed.stdout);
    await waitFor(async () => {
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
          resourceAttributes: {
            verb: "create",
            group: "admissionregistration.k8s.io",
            resource: "mutatingwebhookconfigurations",
          },
        },
      });
      return review.status.allowed === true;
    }, { timeout: 30, message: "the authorizer to see the new ClusterRole" });
    const token = await c.api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    });
    const kubeconfig = `${dir}/sa-kubeconfig`;
    await Deno.writeTextFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: c.server, "certificate-authority": c.caFile } }],
        users: [{ name: "sa", user: { token: token.status.token } }],
        contexts: [{ name: "sa", context: { cluster: "c", user: "sa", namespace: ns } }],
        "current-context": "sa",
      }),
    );
    const runner = new KopfRunner([
      "run",
      "-A",
      "--standalone",
      "--verbose",
      "--webhook-server",
      `https://127.0.0.1:${freePort()}`,
      "--webhook-managed",
      managed,
      `${dir}/handlers.ts`,
    ], { env: { KUBECONFIG: kubeconfig }, cwd: ROOT, timeout: 30 });
    try {
      // Written by the service account's operator.
      await waitFor(() => exists(configs[0]), { timeout: 60, message: "the configuration" });
      const http = Deno.createHttpClient({ caCerts: [c.caPem] });
      const answer = await fetch(`${c.server}${res.path(ns)}`, {
        method: "POST",
        client: http,
        headers: { Authorization: `Bearer ${c.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          apiVersion: res.apiVersion,
          kind: res.kind,
          metadata: { name: "bad" },
          spec: { bad: true },
        }),
      });
      const body = await answer.json();
      http.close();
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.match(
        answer.headers.get("warning") ?? "",
        /checked by the service account's operator/,
      );
    } finally {
      await runner.stop();
    }
    assert.equal(runner.exitCode, 0, runner.output);
    assert.doesNotMatch(runner.output, /forbidden|(?<![,.:\d])403\b/i, runner.output);
    assert.equal(await exists(configs[0]), false, "removed at SIGTERM");
    assert.equal(await exists(configs[1]), false, "removed at SIGTERM");
  } finally {
    for (const path of configs) await c.api("DELETE", path).catch(() => {});
    for (const kind of ["clusterroles", "clusterrolebindings"]) {
      await c.api("DELETE", `/apis/rbac.authorization.k8s.io/v1/${kind}/${name}`).catch(() => {});
    }
    await c.deleteNamespace(ns);
    await Deno.remove(dir, { recursive: true });
  }
});
