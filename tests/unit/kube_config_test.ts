// Where loadConfig() looks (src/kube/config/mod.ts): never at localhost:8080 when nothing is
// configured, and only at the files in KUBECONFIG that exist.

import assert from "node:assert/strict";
import { loadConfig } from "../../src/kube/config/mod.ts";
import { configError, tempDir, withEnv } from "../support/kubeconfig_fixtures.ts";

Deno.test("loadConfig() never falls back to localhost:8080 when nothing is configured", async () => {
  const home = await tempDir(); // no .kube/config inside
  const error = await withEnv(
    {
      KUBECONFIG: undefined,
      HOME: home,
      KUBERNETES_SERVICE_HOST: undefined,
      KUBERNETES_SERVICE_PORT: undefined,
    },
    () => configError(loadConfig()),
  );
  assert.equal(
    error.message,
    `no cluster configuration found: KUBECONFIG is not set, ${home}/.kube/config does not exist, ` +
      "and KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set (not in a cluster)",
  );
});

Deno.test("loadConfig() fails when no file listed in KUBECONFIG exists", async () => {
  const dir = await tempDir();
  const error = await withEnv(
    { KUBECONFIG: `${dir}/a:${dir}/b` },
    () => configError(loadConfig()),
  );
  assert.match(error.message, /none of the files in KUBECONFIG exists/);
});
