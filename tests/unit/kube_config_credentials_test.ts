// Credential sources (src/kube/config/credentials.ts): token files re-read after the refresh
// interval; exec plugins run once per credential, re-run on expiry and after invalidate().

import assert from "node:assert/strict";
import { ExecCredentials, loadConfig, TokenFileCredentials } from "../../src/kube/config/mod.ts";
import {
  authHeader,
  configError,
  execPluginRuns,
  execPluginUser,
  kubeconfig,
  tempDir,
  write,
} from "../support/kubeconfig_fixtures.ts";

Deno.test("loadConfig() refreshes token files after the refresh interval", async () => {
  let now = 0;
  const dir = await tempDir();
  const path = await write(dir, "token", "one");
  const credentials = new TokenFileCredentials({
    path,
    refreshMs: 60_000,
    now: () => now,
    source: "test",
    field: "token",
  });
  assert.deepEqual((await credentials.get()).headers, [["Authorization", "Bearer one"]]);
  await write(dir, "token", "two");
  now += 59_999;
  assert.deepEqual((await credentials.get()).headers, [["Authorization", "Bearer one"]]);
  now += 1;
  assert.deepEqual((await credentials.get()).headers, [["Authorization", "Bearer two"]]);
});

Deno.test("exec plugin credentials are cached and re-fetched after invalidate()", async () => {
  const dir = await tempDir();
  await write(dir, "tokens", "first\nsecond\n");
  const path = await write(dir, "config", kubeconfig({ user: execPluginUser(dir) }));
  const config = await loadConfig({ kubeconfig: path });
  assert.ok(config.credentials instanceof ExecCredentials);
  assert.equal(await execPluginRuns(dir), 0, "the plugin runs on first use, not at load");
  const [a, b] = await Promise.all([authHeader(config), authHeader(config)]);
  assert.equal(a, "Bearer first");
  assert.equal(b, "Bearer first");
  assert.equal(await execPluginRuns(dir), 1, "concurrent callers share one run");
  assert.equal(await authHeader(config), "Bearer first");
  assert.equal(await execPluginRuns(dir), 1);
  assert.equal(config.credentials.invalidate(), true);
  assert.equal(await authHeader(config), "Bearer second");
  assert.equal(await execPluginRuns(dir), 2);
  const info = JSON.parse(await Deno.readTextFile(`${dir}/exec-info.json`));
  assert.deepEqual(info, {
    apiVersion: "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    spec: { interactive: false },
  });
});

Deno.test("exec plugin credentials expire at expirationTimestamp", async () => {
  const dir = await tempDir();
  await write(dir, "tokens", "first\nsecond\n");
  await write(dir, "expires-in", "-1");
  const path = await write(
    dir,
    "config",
    kubeconfig({ user: execPluginUser(dir, "      provideClusterInfo: true") }),
  );
  const config = await loadConfig({ kubeconfig: path });
  assert.equal(await authHeader(config), "Bearer first");
  // Already expired: the next request runs the plugin again.
  assert.equal(await authHeader(config), "Bearer second");
  assert.equal(await execPluginRuns(dir), 2);
  const info = JSON.parse(await Deno.readTextFile(`${dir}/exec-info.json`));
  assert.equal(info.spec.cluster.server, "https://127.0.0.1:6443");
});

Deno.test("exec plugin failures are ConfigErrors naming the user and the command", async () => {
  const dir = await tempDir();
  await write(dir, "fail", "login expired, run `login`\n");
  const path = await write(dir, "config", kubeconfig({ user: execPluginUser(dir) }));
  const config = await loadConfig({ kubeconfig: path });
  const error = await configError(config.credentials.get());
  assert.equal(
    error.message,
    `kubeconfig ${path}: users[admin].exec: exec plugin "${Deno.execPath()}" exited with code 3: login expired, run \`login\``,
  );
  const missing = await write(
    dir,
    "missing",
    kubeconfig({
      user: "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n" +
        "      command: ./no-such-plugin\n      installHint: install it from example.com",
    }),
  );
  const notFound = await configError((await loadConfig({ kubeconfig: missing })).credentials.get());
  assert.equal(
    notFound.message,
    `kubeconfig ${missing}: users[admin].exec: exec plugin "${dir}/no-such-plugin" not found (install it from example.com)`,
  );
});
