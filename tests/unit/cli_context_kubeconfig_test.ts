import assert from "node:assert/strict";
import { resolveApiTarget } from "../../src/cli/api_target.ts";
import { contextKubeconfig, MAX_DOCUMENT_BYTES } from "../../src/cli/context_kubeconfig.ts";
import { UsageError } from "../../src/cli/errors.ts";
import { loadConfigFromDocument } from "../../src/kube/config/mod.ts";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIEkey\n-----END PRIVATE KEY-----\n";

function fixture(): string {
  const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-handoff-" });
  Deno.mkdirSync(`${dir}/pki`);
  Deno.mkdirSync(`${dir}/bin`);
  Deno.writeTextFileSync(`${dir}/pki/ca.crt`, CA);
  Deno.writeTextFileSync(`${dir}/pki/me.crt`, CERT);
  Deno.writeTextFileSync(`${dir}/pki/me.key`, KEY);
  Deno.writeTextFileSync(`${dir}/pki/token`, "rotating-token\n");
  Deno.writeTextFileSync(`${dir}/bin/plugin`, "#!/bin/sh\n");
  Deno.chmodSync(`${dir}/bin/plugin`, 0o755);
  Deno.writeTextFileSync(
    `${dir}/config`,
    `apiVersion: v1
kind: Config
clusters:
- name: here
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: pki/ca.crt, tls-server-name: api}
- name: elsewhere
  cluster: {server: "https://10.0.0.1:443"}
users:
- name: cert
  user: {client-certificate: pki/me.crt, client-key: pki/me.key, as: someone}
- name: token-file
  user: {tokenFile: pki/token}
- name: plugin
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/plugin, args: [get], env: [{name: A, value: b}]}
- name: admin
  user: {token: the-admin-token}
contexts:
- name: with-cert
  context: {cluster: here, user: cert, namespace: apps}
- name: with-token-file
  context: {cluster: here, user: token-file}
- name: with-plugin
  context: {cluster: here, user: plugin}
- name: admin
  context: {cluster: elsewhere, user: admin}
current-context: with-cert
`,
  );
  return dir;
}

Deno.test("one context: its cluster and user only, CA and client certificate inlined", async () => {
  const dir = fixture();
  const handoff = contextKubeconfig(resolveApiTarget({ kubeconfig: `${dir}/config` }));
  assert.equal(handoff.context, "with-cert");
  assert.deepEqual(handoff.readPaths, []);
  assert.deepEqual(handoff.execCommands, []);
  assert.deepEqual(handoff.inlined, [
    `${dir}/pki/ca.crt`,
    `${dir}/pki/me.crt`,
    `${dir}/pki/me.key`,
  ]);
  assert.deepEqual(JSON.parse(handoff.document), {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "here",
      cluster: {
        server: "https://127.0.0.1:6443",
        "tls-server-name": "api",
        "certificate-authority-data": btoa(CA),
      },
    }],
    users: [{
      name: "cert",
      user: { as: "someone", "client-certificate-data": btoa(CERT), "client-key-data": btoa(KEY) },
    }],
    contexts: [{
      name: "with-cert",
      context: { cluster: "here", user: "cert", namespace: "apps" },
    }],
    "current-context": "with-cert",
  });
  assert.ok(!handoff.document.includes("the-admin-token"));
  // The operator's client loads it as it would load the files.
  const config = await loadConfigFromDocument(handoff.document, { source: "handed over" });
  assert.equal(config.server, "https://127.0.0.1:6443");
  assert.equal(config.namespace, "apps");
  assert.equal(config.tls.caPem, CA);
  assert.equal(config.tls.certPem, CERT);
  assert.equal(config.tls.keyPem, KEY);
  assert.equal(config.credentials.kind, "client-certificate");
});

Deno.test("token files and exec plugins stay what they are, by absolute path", async () => {
  const dir = fixture();
  const tokenFile = contextKubeconfig(
    resolveApiTarget({ kubeconfig: `${dir}/config`, context: "with-token-file" }),
  );
  assert.deepEqual(tokenFile.readPaths, [`${dir}/pki/token`]);
  assert.deepEqual(JSON.parse(tokenFile.document).users, [
    { name: "token-file", user: { tokenFile: `${dir}/pki/token` } },
  ]);
  const config = await loadConfigFromDocument(tokenFile.document, { source: "handed over" });
  assert.equal(config.credentials.kind, "token-file");
  assert.deepEqual((await config.credentials.get()).headers, [
    ["Authorization", "Bearer rotating-token"],
  ]);

  const plugin = contextKubeconfig(
    resolveApiTarget({ kubeconfig: `${dir}/config`, context: "with-plugin" }),
  );
  assert.deepEqual(plugin.execCommands, [`${dir}/bin/plugin`]);
  assert.deepEqual(plugin.readPaths, []);
  assert.deepEqual(JSON.parse(plugin.document).users, [{
    name: "plugin",
    user: {
      exec: {
        apiVersion: "client.authentication.k8s.io/v1",
        command: `${dir}/bin/plugin`,
        args: ["get"],
        env: [{ name: "A", value: "b" }],
      },
    },
  }]);
});

Deno.test("an unreadable file is one line naming it, its field and its kubeconfig", () => {
  const dir = fixture();
  Deno.removeSync(`${dir}/pki/me.key`);
  assert.throws(
    () => contextKubeconfig(resolveApiTarget({ kubeconfig: `${dir}/config` })),
    (e) =>
      e instanceof UsageError &&
      e.message.startsWith(
        `cannot read ${dir}/pki/me.key, the client-key of user "cert" in ${dir}/config: `,
      ) && !e.message.includes("\n"),
  );
});

Deno.test("a document too large for an environment variable is refused", () => {
  const dir = fixture();
  Deno.writeTextFileSync(`${dir}/pki/ca.crt`, CA.repeat(MAX_DOCUMENT_BYTES / CA.length));
  assert.throws(
    () => contextKubeconfig(resolveApiTarget({ kubeconfig: `${dir}/config` })),
    (e) =>
      e instanceof UsageError &&
      /^the kubeconfig of context "with-cert" takes \d+ bytes with its files inlined/.test(
        e.message,
      ),
  );
});
