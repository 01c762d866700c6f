// Kubeconfigs (src/kube/config/kubeconfig.ts): one-line errors naming the file and field for
// what client-node rejects and more, what a context resolves to, kubectl's merge, token files.

import assert from "node:assert/strict";
import { loadConfig, TokenFileCredentials } from "../../src/kube/config/mod.ts";
import {
  authHeader,
  CERT,
  configError,
  KEY,
  kubeconfig,
  tempDir,
  withEnv,
  write,
} from "../support/kubeconfig_fixtures.ts";

// ----- bad configurations --------------------------------------------------------------------

Deno.test("loadConfig() reports a missing file by name", async () => {
  const dir = await tempDir();
  const error = await configError(loadConfig({ kubeconfig: `${dir}/missing` }));
  assert.equal(error.message, `kubeconfig ${dir}/missing: cannot read the file: no such file`);
});

Deno.test("loadConfig() reports bad YAML with the file", async () => {
  const dir = await tempDir();
  const path = await write(dir, "config", "clusters: [\n  - name: x\n  bad: : :\n");
  const error = await configError(loadConfig({ kubeconfig: path }));
  assert.match(error.message, new RegExp(`^kubeconfig ${path}: invalid YAML: `));
  const list = await write(dir, "list", "- a\n- b\n");
  const notMapping = await configError(loadConfig({ kubeconfig: list }));
  assert.match(notMapping.message, /not a kubeconfig: the document is not a mapping/);
  const clusters = await write(dir, "clusters", "clusters: {a: 1}\n");
  assert.match(
    (await configError(loadConfig({ kubeconfig: clusters }))).message,
    /clusters: must be a list/,
  );
});

Deno.test("loadConfig() reports structural errors that client-node finds", async () => {
  const dir = await tempDir();
  const path = await write(
    dir,
    "config",
    kubeconfig({ cluster: "    certificate-authority-data: eA==" }),
  );
  const error = await configError(loadConfig({ kubeconfig: path }));
  assert.equal(error.message, `kubeconfig ${path}: clusters[0].cluster.server is missing`);
});

Deno.test("loadConfig() reports an unknown context and lists the known ones", async () => {
  const dir = await tempDir();
  const path = await write(
    dir,
    "config",
    kubeconfig({
      contexts: "- name: main\n  context: {cluster: local, user: admin}\n" +
        "- name: other\n  context: {cluster: local, user: admin}",
    }),
  );
  const error = await configError(loadConfig({ kubeconfig: path, context: "prod" }));
  assert.equal(
    error.message,
    `kubeconfig ${path}: contexts: context "prod" not found (contexts: main, other)`,
  );
  const current = await write(dir, "current", kubeconfig({ current: "gone" }));
  assert.equal(
    (await configError(loadConfig({ kubeconfig: current }))).message,
    `kubeconfig ${current}: current-context: context "gone" not found (contexts: main)`,
  );
});

Deno.test("loadConfig() reports a missing current-context", async () => {
  const dir = await tempDir();
  const path = await write(dir, "config", kubeconfig({ current: null }));
  const error = await configError(loadConfig({ kubeconfig: path }));
  assert.equal(
    error.message,
    `kubeconfig ${path}: current-context: no current-context is set and no context was chosen (contexts: main)`,
  );
  // Choosing a context explicitly works without one.
  const config = await loadConfig({ kubeconfig: path, context: "main" });
  assert.equal(config.context, "main");
});

Deno.test("loadConfig() reports a missing client certificate file with the field", async () => {
  const dir = await tempDir();
  const path = await write(
    dir,
    "config",
    kubeconfig({
      user: "    client-certificate: certs/admin.crt\n    client-key: certs/admin.key",
    }),
  );
  const error = await configError(loadConfig({ kubeconfig: path }));
  assert.equal(
    error.message,
    `kubeconfig ${path}: users[admin].client-certificate: cannot read ${dir}/certs/admin.crt: no such file`,
  );
  assert.equal(error.field, "users[admin].client-certificate");
});

Deno.test("loadConfig() reports a missing CA file, bad CA data, and a key without a cert", async () => {
  const dir = await tempDir();
  const ca = await write(
    dir,
    "ca",
    kubeconfig({
      cluster: "    server: https://x:1\n    certificate-authority: /nonexistent/ca.crt",
    }),
  );
  assert.equal(
    (await configError(loadConfig({ kubeconfig: ca }))).message,
    `kubeconfig ${ca}: clusters[local].certificate-authority: cannot read /nonexistent/ca.crt: no such file`,
  );
  const data = await write(
    dir,
    "data",
    kubeconfig({
      cluster: "    server: https://x:1\n    certificate-authority-data: '!!notbase64'",
    }),
  );
  assert.match(
    (await configError(loadConfig({ kubeconfig: data }))).message,
    /clusters\[local\]\.certificate-authority-data: is not valid base64$/,
  );
  const notPem = await write(
    dir,
    "notpem",
    kubeconfig({
      cluster: `    server: https://x:1\n    certificate-authority-data: ${btoa("hello")}`,
    }),
  );
  assert.match(
    (await configError(loadConfig({ kubeconfig: notPem }))).message,
    /certificate-authority-data: holds no PEM CERTIFICATE$/,
  );
  await write(dir, "only.key", KEY);
  const half = await write(dir, "half", kubeconfig({ user: "    client-key: only.key" }));
  assert.match(
    (await configError(loadConfig({ kubeconfig: half }))).message,
    /users\[admin\]: a client certificate needs both client-certificate and client-key$/,
  );
});

Deno.test("loadConfig() reports contexts pointing at unknown clusters or users", async () => {
  const dir = await tempDir();
  const cluster = await write(
    dir,
    "c",
    kubeconfig({ contexts: "- name: main\n  context: {cluster: elsewhere, user: admin}" }),
  );
  assert.equal(
    (await configError(loadConfig({ kubeconfig: cluster }))).message,
    `kubeconfig ${cluster}: contexts[main].cluster: cluster "elsewhere" not found (clusters: local)`,
  );
  const user = await write(
    dir,
    "u",
    kubeconfig({ contexts: "- name: main\n  context: {cluster: local, user: nobody}" }),
  );
  assert.equal(
    (await configError(loadConfig({ kubeconfig: user }))).message,
    `kubeconfig ${user}: contexts[main].user: user "nobody" not found (users: admin)`,
  );
});

Deno.test("loadConfig() rejects servers that are not http(s) URLs", async () => {
  const dir = await tempDir();
  const path = await write(dir, "config", kubeconfig({ cluster: "    server: ftp://x" }));
  assert.match(
    (await configError(loadConfig({ kubeconfig: path }))).message,
    /clusters\[local\]\.server: unsupported scheme ftp: in ftp:\/\/x$/,
  );
});

Deno.test("loadConfig() reads server, namespace, token and CA", async () => {
  const dir = await tempDir();
  await write(dir, "ca.crt", CERT);
  const path = await write(
    dir,
    "config",
    kubeconfig({
      cluster: "    server: https://127.0.0.1:6443/\n    certificate-authority: ca.crt",
    }),
  );
  const config = await loadConfig({ kubeconfig: path });
  assert.equal(config.server, "https://127.0.0.1:6443");
  assert.equal(config.namespace, "team-a");
  assert.equal(config.context, "main");
  assert.equal(config.source, path);
  assert.equal(config.tls.caPem, CERT);
  assert.equal(config.credentials.kind, "token");
  assert.equal(await authHeader(config), "Bearer t0k3n");
  assert.equal(config.credentials.invalidate(), false);
});

Deno.test("loadConfig() reads client certificates from files and data", async () => {
  const dir = await tempDir();
  await write(dir, "admin.crt", CERT);
  await write(dir, "admin.key", KEY);
  const files = await write(
    dir,
    "files",
    kubeconfig({ user: "    client-certificate: admin.crt\n    client-key: admin.key" }),
  );
  const fromFiles = await loadConfig({ kubeconfig: files });
  assert.equal(fromFiles.tls.certPem, CERT);
  assert.equal(fromFiles.tls.keyPem, KEY);
  assert.equal(fromFiles.credentials.kind, "client-certificate");
  assert.equal(await authHeader(fromFiles), undefined);
  const data = await write(
    dir,
    "data",
    kubeconfig({
      user: `    client-certificate-data: ${btoa(CERT)}\n    client-key-data: ${btoa(KEY)}`,
    }),
  );
  const fromData = await loadConfig({ kubeconfig: data });
  assert.equal(fromData.tls.certPem, CERT);
  assert.equal(fromData.tls.keyPem, KEY);
});

Deno.test("loadConfig() passes TLS options and impersonation through", async () => {
  const dir = await tempDir();
  const path = await write(
    dir,
    "config",
    kubeconfig({
      cluster: "    server: https://10.0.0.1:443\n    insecure-skip-tls-verify: true\n" +
        "    tls-server-name: kubernetes\n    proxy-url: socks5://127.0.0.1:1080",
      user: "    username: me\n    password: pässword\n    as: alice\n    as-groups: [dev, ops]",
    }),
  );
  const config = await loadConfig({ kubeconfig: path });
  assert.equal(config.tls.insecureSkipTlsVerify, true);
  assert.equal(config.tls.tlsServerName, "kubernetes");
  assert.equal(config.tls.proxyUrl, "socks5://127.0.0.1:1080");
  assert.equal(config.credentials.kind, "basic");
  const { headers } = await config.credentials.get();
  assert.deepEqual(headers, [
    ["Impersonate-User", "alice"],
    ["Impersonate-Group", "dev"],
    ["Impersonate-Group", "ops"],
    [
      "Authorization",
      `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode("me:pässword")))}`,
    ],
  ]);
});

Deno.test("loadConfig() merges several files: the first definition wins", async () => {
  const dir = await tempDir();
  const first = await write(
    dir,
    "first",
    `
clusters:
- name: shared
  cluster: {server: "https://first:1"}
users:
- name: u
  user: {token: first-token}
contexts:
- name: a
  context: {cluster: shared, user: u}
`,
  );
  const second = await write(
    dir,
    "second",
    `
clusters:
- name: shared
  cluster: {server: "https://second:2"}
- name: extra
  cluster: {server: "https://extra:3"}
users:
- name: u
  user: {token: second-token}
contexts:
- name: b
  context: {cluster: extra, user: u, namespace: bee}
current-context: b
`,
  );
  const merged = await loadConfig({ kubeconfig: [first, second] });
  // current-context comes from the first file that sets one (the second here).
  assert.equal(merged.context, "b");
  assert.equal(merged.server, "https://extra:3");
  assert.equal(merged.namespace, "bee");
  assert.equal(await authHeader(merged), "Bearer first-token");
  const a = await loadConfig({ kubeconfig: [first, second], context: "a" });
  assert.equal(a.server, "https://first:1");
  assert.equal(a.source, `${first}:${second}`);

  // The same through KUBECONFIG, with a missing entry skipped like kubectl does.
  const viaEnv = await withEnv(
    { KUBECONFIG: `${dir}/missing:${first}:${second}` },
    () => loadConfig({ context: "a" }),
  );
  assert.equal(viaEnv.server, "https://first:1");
});

Deno.test("loadConfig() re-reads token files, relative to the kubeconfig", async () => {
  const dir = await tempDir();
  await Deno.mkdir(`${dir}/secrets`);
  await write(dir, "secrets/token", "first\n");
  const path = await write(dir, "config", kubeconfig({ user: "    token-file: secrets/token" }));
  const config = await loadConfig({ kubeconfig: path, tokenRefreshMs: 3_600_000 });
  assert.ok(config.credentials instanceof TokenFileCredentials);
  assert.equal(await authHeader(config), "Bearer first");
  await write(dir, "secrets/token", "second\n");
  // Cached until the refresh interval — or a 401.
  assert.equal(await authHeader(config), "Bearer first");
  assert.equal(config.credentials.invalidate(), true);
  assert.equal(await authHeader(config), "Bearer second");
  // A token file that is gone keeps the last token (rotation in progress).
  await Deno.remove(`${dir}/secrets/token`);
  config.credentials.invalidate();
  assert.equal(await authHeader(config), "Bearer second");

  const missing = await write(dir, "missing", kubeconfig({ user: "    token-file: nope" }));
  assert.equal(
    (await configError(loadConfig({ kubeconfig: missing }))).message,
    `kubeconfig ${missing}: users[admin].token-file: cannot read token file ${dir}/nope: no such file`,
  );
});
