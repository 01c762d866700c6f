// The in-cluster configuration (src/kube/config/in_cluster.ts): the service account's files and
// the service environment variables, found with or without `inCluster: true`.

import assert from "node:assert/strict";
import { loadConfig } from "../../src/kube/config/mod.ts";
import {
  authHeader,
  CERT,
  configError,
  tempDir,
  withEnv,
  write,
} from "../support/kubeconfig_fixtures.ts";

async function serviceAccountRoot(files: Record<string, string>): Promise<string> {
  const root = await tempDir();
  const dir = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await write(dir, name, text);
  return root;
}

Deno.test("loadConfig() uses the service account in a cluster", async () => {
  const root = await serviceAccountRoot({
    token: "sa-token\n",
    "ca.crt": CERT,
    namespace: "ops\n",
  });
  const config = await withEnv(
    { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" },
    () => loadConfig({ inCluster: true, inClusterRoot: root }),
  );
  assert.equal(config.server, "https://10.0.0.1:443");
  assert.equal(config.source, "in-cluster");
  assert.equal(config.namespace, "ops");
  assert.equal(config.tls.caPem, CERT);
  assert.equal(config.credentials.kind, "token-file");
  assert.equal(await authHeader(config), "Bearer sa-token");

  // Without KUBECONFIG, the in-cluster environment is detected on its own (IPv6 bracketed).
  const detected = await withEnv(
    { KUBECONFIG: undefined, KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443" },
    () => loadConfig({ inClusterRoot: root }),
  );
  assert.equal(detected.server, "https://[fd00::1]:6443");
});

Deno.test("loadConfig() in a cluster reports missing service-account files", async () => {
  const noToken = await serviceAccountRoot({ "ca.crt": CERT });
  const error = await withEnv(
    { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" },
    () => configError(loadConfig({ inCluster: true, inClusterRoot: noToken })),
  );
  assert.match(
    error.message,
    /^in-cluster config: token: cannot read token file .*\/serviceaccount\/token: no such file$/,
  );
  const noCa = await serviceAccountRoot({ token: "x" });
  const caError = await withEnv(
    { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" },
    () => configError(loadConfig({ inCluster: true, inClusterRoot: noCa })),
  );
  assert.match(
    caError.message,
    /^in-cluster config: ca\.crt: cannot read .*ca\.crt: no such file$/,
  );
  const noEnv = await withEnv(
    { KUBERNETES_SERVICE_HOST: undefined, KUBERNETES_SERVICE_PORT: undefined },
    () => configError(loadConfig({ inCluster: true, inClusterRoot: noCa })),
  );
  assert.equal(
    noEnv.message,
    "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set",
  );
});
