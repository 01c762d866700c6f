// Kopf's login helpers against the real API server, following Kopf's docs/authentication.rst:
// "Piggybacking" (`login_with_kubeconfig`, `login_with_service_account`, `login_via_client` called
// from a `@kopf.on.login()` handler, returning a `kopf.ConnectionInfo`) and "Credentials
// lifecycle" (a 401 invalidates the credentials and the login handlers run again).
//
// The kubeconfigs are the local plane's (a token user, a client-certificate user) and one whose
// user is an exec credential plugin (tests/support/exec_plugin.ts) handing out the plane's token.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import { createObject, getObject, startOperator, testResource } from "../support/engine.ts";
import { execPluginRuns, execPluginUser, withEnv } from "../support/kubeconfig_fixtures.ts";
import { waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "piggybacks");

/** A kubeconfig for the plane whose user is the exec plugin keeping its state in `stateDir`. */
async function execKubeconfig(stateDir: string, tokens: string[]): Promise<string> {
  await Deno.writeTextFile(`${stateDir}/tokens`, tokens.join("\n") + "\n");
  await Deno.writeTextFile(`${stateDir}/expires-in`, "3600");
  const path = `${stateDir}/kubeconfig`;
  await Deno.writeTextFile(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: plane
  cluster:
    server: ${c.server}
    certificate-authority: ${c.caFile}
users:
- name: plugin
  user:
${execPluginUser(stateDir)}
contexts:
- name: main
  context: {cluster: plane, user: plugin, namespace: team-a}
current-context: main
`,
  );
  return path;
}

Deno.test("loginWithKubeconfig: the current context's server, CA, token and namespace", async () => {
  const info = await kopf.loginWithKubeconfig({ kubeconfig: c.kubeconfig });
  assert.ok(info instanceof kopf.ConnectionInfo);
  assert.deepEqual({ ...info }, {
    server: c.server,
    caData: c.caPem,
    insecure: undefined,
    certificateData: undefined,
    privateKeyData: undefined,
    scheme: "Bearer",
    token: c.token,
    defaultNamespace: "default",
    proxyUrl: undefined,
    priority: 10,
  });
  const cert = await kopf.loginWithKubeconfig({ kubeconfig: c.kubeconfig, context: "ktest-cert" });
  assert.equal(cert?.token, undefined);
  assert.equal(cert?.certificateData, await Deno.readTextFile(c.certFile));
  assert.equal(cert?.privateKeyData, await Deno.readTextFile(c.keyFile));
});

Deno.test("loginWithKubeconfig: null without KUBECONFIG and ~/.kube/config, as Kopf's None", async () => {
  const home = await Deno.makeTempDir();
  const info = await withEnv(
    { KUBECONFIG: undefined, HOME: home },
    () => kopf.loginWithKubeconfig(),
  );
  assert.equal(info, null);
  // From KUBECONFIG when it is set.
  const fromEnv = await withEnv(
    { KUBECONFIG: c.kubeconfig, HOME: home },
    () => kopf.loginWithKubeconfig(),
  );
  assert.equal(fromEnv?.token, c.token);
});

Deno.test("loginWithServiceAccount: null outside a pod", async () => {
  const info = await withEnv(
    { KUBERNETES_SERVICE_HOST: undefined, KUBERNETES_SERVICE_PORT: undefined },
    () => kopf.loginWithServiceAccount(),
  );
  assert.equal(info, null);
});

Deno.test("loginWithKubeconfig in a login handler: an exec plugin's token, refreshed after a 401", async () => {
  const ns = await c.namespace("piggyback-exec");
  const state = await Deno.makeTempDir({ prefix: "kopf-piggyback-" });
  // The plugin's first token is rejected by the API server; the second is the plane's own.
  const kubeconfig = await execKubeconfig(state, ["not-a-valid-token", c.token]);
  const registry = new kopf.Registry();
  const logins: kopf.ConnectionInfo[] = [];
  registry.on.login({ id: "kubeconfig" }, async (ctx) => {
    const info = await kopf.loginWithKubeconfig({ ...ctx, kubeconfig });
    logins.push(info!);
    return info;
  });
  let handled = 0;
  registry.on.create(res.plural, { id: "created" }, () => {
    handled++;
    return "done";
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "pb1");
    await waitFor(async () => (await getObject(c, res, ns, "pb1"))?.status?.created === "done", {
      message: "the handler's result, written with the login handler's credentials",
    });
    assert.equal(handled, 1);
    // The first credentials got a 401: the login handler ran again, and the plugin with it.
    assert.deepEqual(logins.map((info) => info.token), ["not-a-valid-token", c.token]);
    assert.equal(await execPluginRuns(state), 2);
    const expires = (logins[1].expiration as Date).getTime() - Date.now();
    assert.ok(expires > 3500_000 && expires <= 3600_000, `expires in ${expires} ms`);
    assert.equal(logins[1].defaultNamespace, "team-a");
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("loginViaClient: client-node's configuration as a ConnectionInfo that logs in", async () => {
  const ns = await c.namespace("piggyback-client");
  const info = await withEnv({ KUBECONFIG: c.kubeconfig }, () => kopf.loginViaClient());
  assert.equal(info.server, c.server);
  assert.equal(info.token, c.token);
  assert.equal(info.scheme, "Bearer");
  assert.equal(info.caData, c.caPem);
  assert.equal(info.defaultNamespace, "default");
  assert.equal(info.priority, 10);
  const registry = new kopf.Registry();
  let logins = 0;
  registry.on.login({ id: "client" }, async () => {
    logins++;
    return await withEnv({ KUBECONFIG: c.kubeconfig }, () => kopf.loginViaClient());
  });
  registry.on.create(res.plural, { id: "created" }, () => "done");
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "pb2");
    await waitFor(async () => (await getObject(c, res, ns, "pb2"))?.status?.created === "done", {
      message: "the handler's result",
    });
    assert.equal(logins, 1);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a user that impersonates is refused in one line, not logged in as someone else", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/kubeconfig`;
  const text = await Deno.readTextFile(c.kubeconfig);
  await Deno.writeTextFile(path, text.replace(/(\n {4}token: .*)/, "$1\n    as: someone-else"));
  await assert.rejects(
    () => kopf.loginWithKubeconfig({ kubeconfig: path }),
    (error: Error) =>
      error instanceof kopf.PermanentError && !error.message.includes("\n") &&
      error.message ===
        "kopf.loginWithKubeconfig(): the user's credentials send Impersonate-User: " +
          "someone-else, which a ConnectionInfo cannot carry; run without a login handler to " +
          "use the configuration as it is",
  );
});
