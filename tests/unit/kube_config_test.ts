import assert from "node:assert/strict";
import { ExecCredentials, loadConfig, TokenFileCredentials } from "../../src/kube/config.ts";
import { ConfigError } from "../../src/kube/errors.ts";

const CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIBfake\n-----END PRIVATE KEY-----\n";
const PLUGIN = new URL("../support/exec_plugin.ts", import.meta.url).pathname;

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "kopf-config-test-" });
}

async function write(dir: string, name: string, text: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

/** A minimal valid kubeconfig with one cluster, user and context. */
function kubeconfig(options: {
  user?: string;
  cluster?: string;
  current?: string | null;
  contexts?: string;
} = {}): string {
  const current = options.current === null ? "" : `current-context: ${options.current ?? "main"}`;
  return `
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
${options.cluster ?? "    server: https://127.0.0.1:6443/"}
users:
- name: admin
  user:
${options.user ?? "    token: t0k3n"}
contexts:
${options.contexts ?? "- name: main\n  context: {cluster: local, user: admin, namespace: team-a}"}
${current}
`;
}

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${error}`);
    assert.ok(!error.message.includes("\n"), `not one line: ${error.message}`);
    return error;
  }
  assert.fail("no error was thrown");
}

const ENV_KEYS = ["KUBECONFIG", "HOME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"];

async function withEnv<T>(
  env: Record<string, string | undefined>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, Deno.env.get(k)]));
  try {
    for (const key of ENV_KEYS) {
      const value = key in env ? env[key] : saved[key];
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
    return await fn();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  }
}

async function authHeader(
  config: { credentials: { get(): Promise<{ headers: readonly (readonly [string, string])[] }> } },
) {
  const { headers } = await config.credentials.get();
  return headers.find(([k]) => k === "Authorization")?.[1];
}

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

// ----- good configurations -------------------------------------------------------------------

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

// ----- in-cluster ----------------------------------------------------------------------------

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

// ----- exec plugins --------------------------------------------------------------------------

function execUser(stateDir: string, extra = ""): string {
  return `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${Deno.execPath()}
      args: [run, --quiet, --allow-read, --allow-write, --allow-env, ${PLUGIN}, ${stateDir}]
      interactiveMode: Never
${extra}`;
}

async function runs(stateDir: string): Promise<number> {
  try {
    return (await Deno.readTextFile(`${stateDir}/runs`)).trim().split("\n").length;
  } catch {
    return 0;
  }
}

Deno.test("exec plugin credentials are cached and re-fetched after invalidate()", async () => {
  const dir = await tempDir();
  await write(dir, "tokens", "first\nsecond\n");
  const path = await write(dir, "config", kubeconfig({ user: execUser(dir) }));
  const config = await loadConfig({ kubeconfig: path });
  assert.ok(config.credentials instanceof ExecCredentials);
  assert.equal(await runs(dir), 0, "the plugin runs on first use, not at load");
  const [a, b] = await Promise.all([authHeader(config), authHeader(config)]);
  assert.equal(a, "Bearer first");
  assert.equal(b, "Bearer first");
  assert.equal(await runs(dir), 1, "concurrent callers share one run");
  assert.equal(await authHeader(config), "Bearer first");
  assert.equal(await runs(dir), 1);
  assert.equal(config.credentials.invalidate(), true);
  assert.equal(await authHeader(config), "Bearer second");
  assert.equal(await runs(dir), 2);
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
    kubeconfig({ user: execUser(dir, "      provideClusterInfo: true") }),
  );
  const config = await loadConfig({ kubeconfig: path });
  assert.equal(await authHeader(config), "Bearer first");
  // Already expired: the next request runs the plugin again.
  assert.equal(await authHeader(config), "Bearer second");
  assert.equal(await runs(dir), 2);
  const info = JSON.parse(await Deno.readTextFile(`${dir}/exec-info.json`));
  assert.equal(info.spec.cluster.server, "https://127.0.0.1:6443");
});

Deno.test("exec plugin failures are ConfigErrors naming the user and the command", async () => {
  const dir = await tempDir();
  await write(dir, "fail", "login expired, run `login`\n");
  const path = await write(dir, "config", kubeconfig({ user: execUser(dir) }));
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

// ----- client-node only for auth-provider users ----------------------------------------------

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
  const configTs = new URL("../../src/kube/config.ts", import.meta.url).href;
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
