// KubeClient's configuration and authentication against the real API server: token, client
// certificate, exec plugin, token files, re-authentication after 401, in-cluster style setup,
// TLS options, and an unreachable server.
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.ts";
import { ExecCredentials, loadConfig } from "../../src/kube/config/mod.ts";
import { ApiError, ConnectionError } from "../../src/kube/errors.ts";
import { cluster, type TestCluster } from "../support/cluster.ts";
import { execPluginRuns, execPluginUser } from "../support/kubeconfig_fixtures.ts";

const FAST_RETRIES = { retries: 2, backoff: { initialMs: 10, factor: 2, maxMs: 50 } };

/** Who the API server thinks we are (a SelfSubjectReview needs no RBAC). */
async function whoAmI(client: KubeClient): Promise<{ username: string; groups: string[] }> {
  const review = await client.request<
    { status: { userInfo: { username: string; groups: string[] } } }
  >(
    "POST",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    { body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } },
  );
  return review.status.userInfo;
}

/** A kubeconfig for the test cluster with one user stanza (YAML lines under `user:`). */
async function kubeconfigWith(
  c: TestCluster,
  userLines: string,
  clusterLines = "",
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kopf-client-auth-" });
  const path = `${dir}/kubeconfig`;
  await Deno.writeTextFile(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${c.server}
${clusterLines || `    certificate-authority: ${c.caFile}`}
users:
- name: tester
  user:
${userLines}
contexts:
- name: test
  context: {cluster: test, user: tester, namespace: default}
current-context: test
`,
  );
  return path;
}

Deno.test("token auth from the test kubeconfig", async () => {
  const c = await cluster();
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig });
  try {
    assert.equal(client.config.credentials.kind, "token");
    assert.equal(client.namespace, "default");
    const ns = await client.request<{ metadata: { name: string } }>(
      "GET",
      "/api/v1/namespaces/default",
    );
    assert.equal(ns.metadata.name, "default");
    const me = await whoAmI(client);
    assert.equal(me.username, "kube-admin");
    assert.ok(me.groups.includes("system:masters"));
  } finally {
    client.close();
  }
});

Deno.test("client certificate auth (context ktest-cert)", async () => {
  const c = await cluster();
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig, context: "ktest-cert" });
  try {
    assert.equal(client.config.credentials.kind, "client-certificate");
    assert.equal((await client.config.credentials.get()).headers.length, 0, "no token is sent");
    const me = await whoAmI(client);
    assert.equal(me.username, "kube-admin");
    assert.ok(me.groups.includes("system:masters"), JSON.stringify(me));
  } finally {
    client.close();
  }
});

Deno.test("exec plugin auth runs the plugin once and reuses its token", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-exec-" });
  await Deno.writeTextFile(`${dir}/tokens`, `${c.token}\n`);
  const client = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(c, execPluginUser(dir)),
  });
  try {
    assert.ok(client.config.credentials instanceof ExecCredentials);
    await Promise.all([1, 2, 3].map(() => client.request("GET", "/api/v1/namespaces/default")));
    assert.equal((await whoAmI(client)).username, "kube-admin");
    assert.equal(await execPluginRuns(dir), 1);
    assert.equal(client.metrics.reauthentications, 0);
  } finally {
    client.close();
  }
});

Deno.test("a rejected exec token (401) re-runs the plugin once and the request succeeds", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-exec-" });
  await Deno.writeTextFile(`${dir}/tokens`, `expired-token\n${c.token}\n`);
  const client = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(c, execPluginUser(dir)),
  });
  try {
    const ns = await client.request<{ metadata: { name: string } }>(
      "GET",
      "/api/v1/namespaces/default",
    );
    assert.equal(ns.metadata.name, "default");
    assert.equal(await execPluginRuns(dir), 2);
    assert.equal(client.metrics.reauthentications, 1);
    assert.deepEqual(client.metrics.responses, { 200: 1, 401: 1 });
  } finally {
    client.close();
  }
});

Deno.test("a token that stays bad fails with 401 after one reload", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-exec-" });
  await Deno.writeTextFile(`${dir}/tokens`, "bad-1\nbad-2\nbad-3\n");
  const client = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(c, execPluginUser(dir)),
  });
  try {
    const error = await client.request("GET", "/api/v1/namespaces/default").catch((e) => e);
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, 401);
    assert.equal(error.message, "GET namespaces default: 401 Unauthorized: Unauthorized");
    assert.equal(await execPluginRuns(dir), 2);
  } finally {
    client.close();
  }
});

Deno.test("a rotated token file is re-read after a 401", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-token-file-" });
  await Deno.writeTextFile(`${dir}/token`, "old-rotated-away\n");
  const client = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(c, `    token-file: ${dir}/token`),
    tokenRefreshMs: 3_600_000, // only the 401 makes it re-read
  });
  try {
    assert.equal(client.config.credentials.kind, "token-file");
    await Deno.writeTextFile(`${dir}/token`, `${c.token}\n`);
    assert.equal((await whoAmI(client)).username, "kube-admin");
    assert.equal(client.metrics.reauthentications, 1);
  } finally {
    client.close();
  }
});

Deno.test("in-cluster style: service host/port from the environment, token and CA from files", async () => {
  const c = await cluster();
  const root = await Deno.makeTempDir({ prefix: "kopf-in-cluster-" });
  const dir = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/token`, c.token);
  await Deno.writeTextFile(`${dir}/ca.crt`, c.caPem);
  await Deno.writeTextFile(`${dir}/namespace`, "kube-system");
  const url = new URL(c.server);
  const saved = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"].map((
    k,
  ) => [k, Deno.env.get(k)]);
  Deno.env.set("KUBERNETES_SERVICE_HOST", url.hostname);
  Deno.env.set("KUBERNETES_SERVICE_PORT", url.port);
  let client: KubeClient | undefined;
  try {
    client = await KubeClient.connect({ inCluster: true, inClusterRoot: root });
    assert.equal(client.server, c.server);
    assert.equal(client.namespace, "kube-system");
    assert.equal((await whoAmI(client)).username, "kube-admin");
  } finally {
    client?.close();
    for (const [key, value] of saved) {
      if (value === undefined) Deno.env.delete(key!);
      else Deno.env.set(key!, value);
    }
  }
});

Deno.test("insecure-skip-tls-verify and tls-server-name go through node:https and work", async () => {
  const c = await cluster();
  const skip = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(
      c,
      `    token: ${c.token}`,
      "    insecure-skip-tls-verify: true",
    ),
  });
  // The serving certificate has the SAN "kubernetes", not the IP we dial: verify against it.
  const named = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(
      c,
      `    token: ${c.token}`,
      `    certificate-authority: ${c.caFile}\n    tls-server-name: kubernetes`,
    ),
  });
  const wrongName = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(
      c,
      `    token: ${c.token}`,
      `    certificate-authority: ${c.caFile}\n    tls-server-name: not-the-server.example`,
    ),
    ...FAST_RETRIES,
  });
  try {
    assert.equal((await whoAmI(skip)).username, "kube-admin");
    assert.equal((await whoAmI(named)).username, "kube-admin");
    const error = await wrongName.request("GET", "/api").catch((e) => e);
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.attempts, 1, "a certificate that does not verify is not retried");
  } finally {
    skip.close();
    named.close();
    wrongName.close();
  }
});

Deno.test("a server certificate from another CA is a ConnectionError, not retried", async () => {
  const c = await cluster();
  const other = await Deno.makeTempDir({ prefix: "kopf-other-ca-" });
  const made = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=other-ca",
      "-keyout",
      `${other}/ca.key`,
      "-out",
      `${other}/ca.crt`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
    ],
    stderr: "null",
  }).output();
  assert.ok(made.success);
  const client = await KubeClient.connect({
    kubeconfig: await kubeconfigWith(
      c,
      `    token: ${c.token}`,
      `    certificate-authority: ${other}/ca.crt`,
    ),
    ...FAST_RETRIES,
  });
  try {
    const error = await client.request("GET", "/api").catch((e) => e);
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.attempts, 1);
    assert.match(
      error.message,
      /cannot connect to 127\.0\.0\.1:\d+: .*(certificate|UnknownIssuer)/i,
    );
  } finally {
    client.close();
  }
});

Deno.test("an unreachable server fails after retries with the host and the cause", async () => {
  const c = await cluster();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const dir = await Deno.makeTempDir({ prefix: "kopf-unreachable-" });
  const path = `${dir}/kubeconfig`;
  const text = (await Deno.readTextFile(await kubeconfigWith(c, `    token: ${c.token}`)))
    .replace(c.server, `https://127.0.0.1:${port}`);
  await Deno.writeTextFile(path, text);
  const config = await loadConfig({ kubeconfig: path });
  const client = new KubeClient(config, FAST_RETRIES);
  try {
    const error = await client.request("GET", "/api/v1/namespaces").catch((e) => e);
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.host, `127.0.0.1:${port}`);
    assert.equal(error.attempts, 3);
    assert.match(
      error.message,
      new RegExp(
        `^GET https://127\\.0\\.0\\.1:${port}/api/v1/namespaces: cannot connect to 127\\.0\\.0\\.1:${port} \\(after 3 attempts\\): .*Connection refused`,
      ),
    );
  } finally {
    client.close();
  }
});
