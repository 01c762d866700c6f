// The client-node bridge (src/kube/config/auth_provider.ts): auth-provider users get their
// tokens from client-node, and client-node is imported for them only.

import assert from "node:assert/strict";
import { loadConfig } from "../../src/kube/config/mod.ts";
import { authHeader, kubeconfig, tempDir, write } from "../support/kubeconfig_fixtures.ts";

Deno.test("auth-provider users are delegated to client-node (OIDC id-token)", async () => {
  const dir = await tempDir();
  const b64url = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "");
  const idToken = `${b64url({ alg: "none" })}.${b64url({ exp: 4102444800 })}.sig`;
  const path = await write(
    dir,
    "config",
    kubeconfig({
      user: "    auth-provider:\n      name: oidc\n      config:\n" +
        `        id-token: ${idToken}\n        client-id: kubectl`,
    }),
  );
  const config = await loadConfig({ kubeconfig: path });
  assert.equal(config.credentials.kind, "auth-provider");
  assert.equal(await authHeader(config), `Bearer ${idToken}`);
});

Deno.test("plain kubeconfigs load without importing client-node", async () => {
  // client-node's dependencies enumerate the environment at import, which a scoped
  // --allow-env refuses without --ignore-env: a child that loads a token kubeconfig under
  // such a grant succeeds only if client-node is never imported.
  const dir = await tempDir();
  const path = await write(dir, "config", kubeconfig());
  const configTs = new URL("../../src/kube/config/mod.ts", import.meta.url).href;
  // `deno eval` has every permission: the probe is a script run with scoped grants.
  const probe = await write(
    dir,
    "probe.ts",
    `const { loadConfig } = await import(${JSON.stringify(configTs)});
     const c = await loadConfig({ kubeconfig: ${JSON.stringify(path)} });
     console.log(c.server, c.credentials.kind);`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
      "--no-prompt",
      `--allow-read=${dir}`,
      "--allow-env=KUBECONFIG,HOME",
      probe,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(said, "https://127.0.0.1:6443 token");
});
