/**
 * A user's own operator from `kopf init`, in a temporary directory outside this repository, as a
 * newcomer would take it: init → `deno task check` (fmt, lint, check) → `kopf run` against the
 * local plane → the generated test → `kopf bundle` → `kopf rbac` applied, and the operator run
 * under its ServiceAccount with a token from the TokenRequest API in a kubeconfig of its own.
 *
 * The framework is this checkout (`--framework`): JSR is unreachable here, and the JSR default is
 * the same import map with another address (tests/unit/cli_init_test.ts).
 */
import assert from "node:assert/strict";
import { cluster } from "../support/cluster.ts";
import { OperatorProcess } from "../support/operator_process.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
// A group of this test's own: the CRD is cluster-wide, other tests share the plane.
const GROUP = "init.e2e.kopf.dev";
const RESOURCE = `greetings.${GROUP}`;

async function run(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
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

function count(text: string, pattern: RegExp): number {
  return text.split("\n").filter((line) => pattern.test(line)).length;
}

/** Creates a Greeting, sees it greeted once, deletes it, sees the goodbye once; stops `op`. */
async function exercise(
  c: Awaited<ReturnType<typeof cluster>>,
  op: OperatorProcess,
  ns: string,
  name: string,
): Promise<void> {
  try {
    await op.waitForLog(/Watching greetings\.v1\.init\.e2e\.kopf\.dev/, 60);
    await c.api("POST", `/apis/${GROUP}/v1/namespaces/${ns}/greetings`, {
      apiVersion: `${GROUP}/v1`,
      kind: "Greeting",
      metadata: { name },
      spec: { name: "newcomer" },
    });
    await op.waitForLog(/Handler 'greet' succeeded/, 60);
    // The handler's result, stored in the status by the patch that follows its success.
    const greet = await waitFor(
      async () =>
        (await c.api("GET", `/apis/${GROUP}/v1/namespaces/${ns}/greetings/${name}`)).status
          ?.greet,
      { timeout: 30, message: "status.greet" },
    );
    assert.deepEqual(greet, { message: "Hello, newcomer!" });
    await c.api("DELETE", `/apis/${GROUP}/v1/namespaces/${ns}/greetings/${name}`);
    await op.waitForLog(/Deletion is processed: 1 succeeded; 0 failed/, 60);
    const status = await op.stop();
    const output = op.output();
    assert.equal(status.code, 0, output);
    // Exactly once each: the handler, its success, the goodbye.
    assert.equal(count(output, /Greeting: Hello, newcomer!/), 1, output);
    assert.equal(count(output, /Handler 'greet' succeeded/), 1, output);
    assert.equal(count(output, /Goodbye, newcomer\./), 1, output);
    assert.doesNotMatch(output, /WARNING|ERROR|kopf: error/, output);
  } finally {
    await op.stop();
  }
}

/**
 * Removes this test's CRD and whatever is left of it: objects that kept the operator's finalizer
 * when a run failed half-way (nothing serves them now), then the CRD, until it is gone.
 */
async function dropLeftovers(c: Awaited<ReturnType<typeof cluster>>): Promise<void> {
  const crd = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${RESOURCE}`;
  const exists = () => c.api("GET", crd).then(() => true, () => false);
  if (!await exists()) return;
  const list = await c.api("GET", `/apis/${GROUP}/v1/greetings`).catch(() => ({ items: [] }));
  for (const obj of list.items ?? []) {
    const path = `/apis/${GROUP}/v1/namespaces/${obj.metadata.namespace}/greetings/` +
      obj.metadata.name;
    await c.api("PATCH", path, { metadata: { finalizers: null } }, {
      contentType: "application/merge-patch+json",
    }).catch(() => {});
  }
  await c.api("DELETE", crd).catch(() => {});
  await waitFor(async () => !await exists(), { timeout: 60, message: "the CRD gone" });
}

Deno.test({
  name: "kopf init → check → run → its test → bundle → rbac under its ServiceAccount",
  // The operators stopped here leave nothing behind; the subprocesses' pipes are closed.
  sanitizeResources: false,
  async fn() {
    const c = await cluster();
    const tmp = await Deno.makeTempDir({ prefix: "kopf-init-e2e-" });
    assert.ok(!tmp.startsWith(ROOT), "outside the repository");
    const dir = `${tmp}/my-operator`;
    const env = { KUBECONFIG: c.kubeconfig };
    await dropLeftovers(c);
    const ns = await c.namespace("init-e2e");
    try {
      // 1. kopf init, with this checkout as the framework.
      const init = await run(
        ["run", "-A", CLI, "init", dir, "--framework", ROOT, "--group", GROUP],
        { cwd: tmp },
      );
      assert.equal(init.code, 0, init.stderr);
      for (
        const file of [
          "deno.json",
          "handlers.ts",
          "handlers_test.ts",
          "crd.yaml",
          "example.yaml",
          "Dockerfile",
          "deploy/deployment.yaml",
          "README.md",
        ]
      ) {
        assert.ok((await Deno.stat(`${dir}/${file}`)).isFile, file);
      }
      const again = await run(["run", "-A", CLI, "init", dir, "--framework", ROOT], { cwd: tmp });
      assert.equal(again.code, 2, "an existing project is not overwritten without --force");
      assert.match(again.stderr, /^kopf: error: .* already has deno\.json, .*--force/);

      // 2. Every generated file passes deno fmt --check, deno lint and deno check.
      const check = await run(["task", "check"], { cwd: dir });
      assert.equal(check.code, 0, check.stderr + check.stdout);

      // The Dockerfile's dependency step, without Docker: the lockfile the project's task writes
      // covers everything the image caches --frozen (the handlers and the command line).
      const lock = await run(["task", "lock"], { cwd: dir });
      assert.equal(lock.code, 0, lock.stderr);
      const dockerfile = await Deno.readTextFile(`${dir}/Dockerfile`);
      const cache = dockerfile.match(/^RUN (deno cache --frozen [^&]+) && (deno check .+)$/m);
      assert.ok(cache, dockerfile);
      for (const step of [cache[1], cache[2]]) {
        const frozen = await run(step.trim().split(" ").slice(1), { cwd: dir });
        assert.equal(frozen.code, 0, `${step}: ${frozen.stderr}`);
      }

      // 3. kopf run against the local plane (the project's task, with its import map).
      await c.applyCrd(`${dir}/crd.yaml`);
      await exercise(
        c,
        OperatorProcess.start({
          command: Deno.execPath(),
          args: ["task", "run", "-n", ns, "--standalone"],
          cwd: dir,
          env,
        }),
        ns,
        "by-kopf-run",
      );

      // 4. The generated test passes.
      const test = await run(["task", "test"], { cwd: dir, env: { ...env, TEST_NAMESPACE: ns } });
      assert.equal(test.code, 0, test.stderr + test.stdout);
      assert.match(test.stdout, /ok \| 1 passed \| 0 failed/);

      // 5. kopf bundle: one file of the operator only.
      const bundle = await run(["task", "bundle"], { cwd: dir, env });
      assert.equal(bundle.code, 0, bundle.stderr);
      const size = (await Deno.stat(`${dir}/dist/operator.js`)).size;
      assert.ok(size <= 3_000_000, `the bundle is ${size} bytes`);

      // 6. kopf rbac, applied; then the operator under its ServiceAccount only.
      const rbac = await run(["task", "rbac"], { cwd: dir, env });
      assert.equal(rbac.code, 0, rbac.stderr);
      await c.apply(rbac.stdout);
      const request = await c.api(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/my-operator/token",
        { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
      );
      const token: string = request.status.token;
      const saKubeconfig = `${tmp}/sa-kubeconfig`;
      await Deno.writeTextFile(
        saKubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{
            name: "plane",
            cluster: { server: c.server, "certificate-authority": c.caFile },
          }],
          users: [{ name: "my-operator", user: { token } }],
          contexts: [{ name: "sa", context: { cluster: "plane", user: "my-operator" } }],
          "current-context": "sa",
        }),
      );
      // The token is the ServiceAccount's, not an admin's: it may not read Secrets.
      const denied = await fetch(`${c.server}/api/v1/secrets`, {
        headers: { authorization: `Bearer ${token}` },
        client: Deno.createHttpClient({ caCerts: [c.caPem] }),
      });
      await denied.body?.cancel();
      assert.equal(denied.status, 403);
      await exercise(
        c,
        OperatorProcess.start({
          command: Deno.execPath(),
          args: ["task", "run", "-A", "--standalone", "--kubeconfig", saKubeconfig],
          cwd: dir,
          env: { KUBECONFIG: "" },
        }),
        ns,
        "by-service-account",
      );
    } finally {
      await dropLeftovers(c);
      await c.deleteNamespace(ns);
      for (const kind of ["clusterrolebindings", "clusterroles"]) {
        await c.api("DELETE", `/apis/rbac.authorization.k8s.io/v1/${kind}/my-operator`)
          .catch(() => {});
      }
      await c.api("DELETE", "/api/v1/namespaces/default/serviceaccounts/my-operator")
        .catch(() => {});
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
