import assert from "node:assert/strict";
import {
  inClusterTarget,
  netAddressOf,
  resolveApiTarget,
  resolvePath,
} from "../../src/cli/api_target.ts";
import { UsageError } from "../../src/cli/errors.ts";

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "kopf-cli-target-" });
}

function envOf(vars: Record<string, string>): (name: string) => string | undefined {
  return (name) => vars[name];
}

const CONFIG_A = `
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
- name: b
  cluster:
    server: https://api.example.test
    proxy-url: http://proxy.local:3128
users:
- name: token
  user:
    tokenFile: ../secrets/token
- name: cert
  user:
    client-certificate: /abs/client.crt
    client-key: client.key
contexts:
- name: ctx-a
  context: {cluster: a, user: token}
- name: ctx-b
  context: {cluster: b, user: cert}
current-context: ctx-a
`;

Deno.test("a kubeconfig gives the server, its address and the files it names", () => {
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/config`, CONFIG_A);
  const target = resolveApiTarget({ kubeconfig: `${dir}/config`, env: envOf({}) });
  assert.equal(target.source, "kubeconfig");
  assert.equal(target.server, "https://127.0.0.1:6443");
  assert.equal(target.netAddress, "127.0.0.1:6443");
  assert.equal(target.context, "ctx-a");
  assert.deepEqual(target.readPaths, [
    `${dir}/config`,
    `${dir}/pki/ca.crt`,
    `${resolvePath(dir, "../secrets/token")}`,
  ]);
  assert.deepEqual(target.envNames, []);

  const b = resolveApiTarget({ kubeconfig: `${dir}/config`, context: "ctx-b", env: envOf({}) });
  assert.equal(b.netAddress, "api.example.test:443");
  assert.deepEqual(b.extraNet, ["proxy.local:3128"]);
  assert.deepEqual(b.readPaths, [`${dir}/config`, "/abs/client.crt", `${dir}/client.key`]);
});

Deno.test("$KUBECONFIG lists merge: the first file to define a name or the context wins", () => {
  const dir = tempDir();
  Deno.writeTextFileSync(
    `${dir}/one`,
    `clusters: [{name: c, cluster: {server: "https://10.0.0.1:1111"}}]
users: [{name: u, user: {token: x}}]`,
  );
  Deno.writeTextFileSync(
    `${dir}/two`,
    `clusters: [{name: c, cluster: {server: "https://10.0.0.2:2222"}}]
contexts: [{name: k, context: {cluster: c, user: u}}]
current-context: k`,
  );
  const target = resolveApiTarget({
    env: envOf({ KUBECONFIG: `${dir}/missing:${dir}/one:${dir}/two` }),
  });
  assert.equal(target.server, "https://10.0.0.1:1111");
  assert.deepEqual(target.kubeconfigs, [`${dir}/one`, `${dir}/two`]);
  assert.deepEqual(target.envNames, ["KUBECONFIG"]);
});

Deno.test("an exec plugin is granted by its resolved path", () => {
  const dir = tempDir();
  Deno.mkdirSync(`${dir}/bin`);
  Deno.writeTextFileSync(`${dir}/bin/my-plugin`, "#!/bin/sh\n");
  Deno.chmodSync(`${dir}/bin/my-plugin`, 0o755);
  const config = (command: string) =>
    `clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: "${command}"}}}]
contexts: [{name: k, context: {cluster: c, user: u}}]
current-context: k`;
  Deno.writeTextFileSync(`${dir}/by-name`, config("my-plugin"));
  Deno.writeTextFileSync(`${dir}/by-path`, config("./bin/my-plugin"));
  const env = envOf({ PATH: `/nonexistent:${dir}/bin` });
  assert.deepEqual(
    resolveApiTarget({ kubeconfig: `${dir}/by-name`, env }).execCommands,
    [`${dir}/bin/my-plugin`],
  );
  assert.deepEqual(
    resolveApiTarget({ kubeconfig: `${dir}/by-path`, env }).execCommands,
    [`${dir}/bin/my-plugin`],
  );
  assert.throws(
    () => resolveApiTarget({ kubeconfig: `${dir}/by-name`, env: envOf({ PATH: "/nonexistent" }) }),
    (e) => e instanceof UsageError && /"my-plugin" .* not on \$PATH/.test(e.message),
  );
});

Deno.test("the in-cluster environment comes after $KUBECONFIG and before ~/.kube/config", () => {
  const home = tempDir();
  Deno.mkdirSync(`${home}/.kube`);
  Deno.writeTextFileSync(
    `${home}/.kube/config`,
    `clusters: [{name: c, cluster: {server: "https://home.test:8443"}}]
contexts: [{name: k, context: {cluster: c}}]
current-context: k`,
  );
  const pod = envOf({
    KUBERNETES_SERVICE_HOST: "10.96.0.1",
    KUBERNETES_SERVICE_PORT: "443",
    HOME: home,
  });
  const inPod = resolveApiTarget({ env: pod, serviceAccountDir: "/sa" });
  assert.equal(inPod.source, "in-cluster");
  assert.equal(inPod.netAddress, "10.96.0.1:443");
  assert.deepEqual(inPod.readPaths, ["/sa"]);
  assert.deepEqual(inPod.envNames, ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]);

  const v6 = resolveApiTarget({
    env: envOf({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }),
  });
  assert.equal(v6.netAddress, "[fd00::1]:443");
  assert.equal(v6.server, "https://[fd00::1]:443");

  const atHome = resolveApiTarget({ env: envOf({ HOME: home }) });
  assert.equal(atHome.netAddress, "home.test:8443");
  assert.deepEqual(atHome.envNames, ["HOME"]);
  assert.deepEqual(atHome.readPaths, [`${home}/.kube/config`]);
});

Deno.test("unusable configurations are UsageErrors with one-line reasons", () => {
  const dir = tempDir();
  const write = (name: string, text: string) => {
    Deno.writeTextFileSync(`${dir}/${name}`, text);
    return `${dir}/${name}`;
  };
  const cases: [string, RegExp][] = [
    [write("nocurrent", "clusters: []\ncontexts: []\n"), /has no current context; pass --context/],
    [write("badyaml", "clusters: [\n"), /is not valid YAML/],
    [write("list", "- a\n- b\n"), /is not a YAML mapping/],
    [
      write("nocluster", "contexts: [{name: k, context: {cluster: gone}}]\ncurrent-context: k\n"),
      /cluster "gone" of context "k" is not in/,
    ],
    [
      write(
        "noserver",
        "clusters: [{name: c, cluster: {}}]\ncontexts: [{name: k, context: {cluster: c}}]\n" +
          "current-context: k\n",
      ),
      /has no server address/,
    ],
    [`${dir}/absent`, /does not exist/],
  ];
  for (const [path, pattern] of cases) {
    assert.throws(
      () => resolveApiTarget({ kubeconfig: path, env: envOf({}) }),
      (e) => e instanceof UsageError && pattern.test(e.message) && !e.message.includes("\n"),
      path,
    );
  }
  assert.throws(
    () => resolveApiTarget({ env: envOf({ HOME: dir }) }),
    (e) => e instanceof UsageError && /no cluster configured/.test(e.message),
  );
});

Deno.test("addresses: default ports, IPv6 brackets, HOST:PORT validation", () => {
  assert.equal(netAddressOf("https://k8s.test"), "k8s.test:443");
  assert.equal(netAddressOf("http://k8s.test"), "k8s.test:80");
  assert.equal(netAddressOf("https://[::1]:6443/"), "[::1]:6443");
  assert.throws(() => netAddressOf("not a url"), UsageError);
  assert.equal(inClusterTarget("10.0.0.1:443").server, "https://10.0.0.1:443");
  assert.throws(() => inClusterTarget("10.0.0.1"), UsageError);
  assert.equal(resolvePath("/a/b", "../c/./d"), "/a/c/d");
  assert.equal(resolvePath("/a/b", "/x"), "/x");
});
