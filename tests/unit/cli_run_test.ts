import assert from "node:assert/strict";
import {
  buildArgs,
  bundleRunCommand,
  entrySourceOf,
  planArtifact,
} from "../../src/cli/artifact.ts";
import { UsageError } from "../../src/cli/errors.ts";
import {
  childArgs,
  childEnv,
  DEFAULT_V8_FLAGS,
  planLaunch,
  printedCommand,
  resolveHandlers,
} from "../../src/cli/run.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

function fixture(): { dir: string; kubeconfig: string } {
  const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-plan-" });
  Deno.mkdirSync(`${dir}/app`);
  Deno.writeTextFileSync(`${dir}/app/handlers.ts`, "export {};\n");
  Deno.writeTextFileSync(`${dir}/ca.crt`, CA);
  const kubeconfig = `${dir}/kubeconfig`;
  Deno.writeTextFileSync(
    kubeconfig,
    `clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", certificate-authority: ca.crt}}]
users: [{name: u, user: {token: t}}, {name: other, user: {token: not-for-the-operator}}]
contexts: [{name: k, context: {cluster: c, user: u}}, {name: o, context: {cluster: c, user: other}}]
current-context: k
`,
  );
  return { dir, kubeconfig };
}

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

Deno.test("handler files resolve to file URLs; bad ones are UsageErrors", () => {
  const { dir } = fixture();
  const resolved = resolveHandlers(["app/handlers.ts", "https://example.test/h.ts"], [], dir);
  assert.deepEqual(resolved.imports, [
    `file://${dir}/app/handlers.ts`,
    "https://example.test/h.ts",
  ]);
  assert.deepEqual(resolved.localFiles, [`${dir}/app/handlers.ts`]);
  assert.deepEqual(resolved.remote, ["https://example.test/h.ts"]);
  assert.deepEqual(resolved.labels, ["app/handlers.ts", "https://example.test/h.ts"]);
  for (
    const [files, modules] of [
      [[], []],
      [["app/missing.ts"], []],
      [["app"], []],
      [[], ["./app/missing.ts"]],
      [[], ["not-in-the-import-map"]],
    ] as [string[], string[]][]
  ) {
    assert.throws(() => resolveHandlers(files, modules, dir), UsageError, JSON.stringify(files));
  }
});

Deno.test("-m modules resolve through the import map; npm/jsr need no grants", () => {
  const resolved = resolveHandlers([], ["js-yaml", "npm:commander@15"], ROOT);
  assert.deepEqual(resolved.imports, ["js-yaml", "npm:commander@15"]);
  assert.deepEqual(resolved.localFiles, []);
  assert.deepEqual(resolved.remote, []);
});

Deno.test("-m module files under the working directory are imported by URL and granted", () => {
  const { dir } = fixture();
  const resolved = resolveHandlers([], ["app.handlers", "./app/handlers.ts"], dir);
  assert.deepEqual(resolved.imports, [
    `file://${dir}/app/handlers.ts`,
    `file://${dir}/app/handlers.ts`,
  ]);
  assert.deepEqual(resolved.labels, ["app.handlers", "./app/handlers.ts"]);
  assert.deepEqual(resolved.localFiles, [`${dir}/app/handlers.ts`, `${dir}/app/handlers.ts`]);
});

Deno.test("the launch plan: the child's grants, its spec and its one-context kubeconfig", async () => {
  const { dir, kubeconfig } = fixture();
  const plan = await planLaunch({
    files: ["app/handlers.ts"],
    operator: { namespaces: ["ns1"], liveness: "http://127.0.0.1:8080/healthz" },
    logging: { format: "json" },
    denoFlags: ["--allow-net=127.0.0.1:9000"],
    env: (name) => ({ KUBECONFIG: kubeconfig } as Record<string, string>)[name],
    cwd: dir,
  });
  const args = childArgs(plan);
  assert.deepEqual(args.slice(0, 8), [
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1:6443,127.0.0.1:8080,127.0.0.1:9000",
    // The handler file itself; neither its directory, nor the kubeconfig, nor the CA file.
    `--allow-read=${dir}/app/handlers.ts`,
    "--allow-env=KOPF_SANDBOX_KUBECONFIG,POD_ID,POD_NAME,HOSTNAME",
    "--ignore-env",
    "--v8-flags=--optimize-for-size",
    new URL("../../src/cli/child.ts", import.meta.url).href,
  ]);
  assert.deepEqual(JSON.parse(args[8]), {
    imports: [`file://${dir}/app/handlers.ts`],
    labels: ["app/handlers.ts"],
    operator: { namespaces: ["ns1"], liveness: "http://127.0.0.1:8080/healthz" },
    logging: { format: "json" },
    expectedServer: "https://127.0.0.1:6443",
    watchStdin: true,
    kubeconfigVariable: "KOPF_SANDBOX_KUBECONFIG",
  });
  // The kubeconfig goes in the environment: the current context only, the CA inlined.
  const env = childEnv(plan);
  assert.deepEqual(Object.keys(env), ["KOPF_SANDBOX_KUBECONFIG"]);
  assert.deepEqual(JSON.parse(env.KOPF_SANDBOX_KUBECONFIG), {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "c",
      cluster: { server: "https://127.0.0.1:6443", "certificate-authority-data": btoa(CA) },
    }],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: [{ name: "k", context: { cluster: "c", user: "u" } }],
    "current-context": "k",
  });
  assert.ok(!args.join(" ").includes("not-for-the-operator"));
  assert.match(
    printedCommand(plan),
    /^KOPF_SANDBOX_KUBECONFIG='<kubeconfig of context k>' \S+ run --no-prompt .* '<spec>'$/,
  );
});

Deno.test("--no-sandbox plans no grants: no module graph, no kubeconfig handed over", async () => {
  const { dir, kubeconfig } = fixture();
  const plan = await planLaunch({
    files: ["app/handlers.ts"],
    operator: { context: "o" },
    logging: {},
    sandbox: false,
    env: (name) => ({ KUBECONFIG: kubeconfig } as Record<string, string>)[name],
    cwd: dir,
  });
  assert.equal(plan.handoff, undefined);
  assert.deepEqual(plan.graph.files, []);
  assert.equal(plan.spec.kubeconfigVariable, undefined);
  assert.deepEqual(plan.spec.operator, { context: "o" });
});

Deno.test("the child is sized for memory (--optimize-for-size) unless --v8-flags is passed", async () => {
  const { dir, kubeconfig } = fixture();
  const argsWith = async (denoFlags: string[]) =>
    childArgs(
      await planLaunch({
        files: ["app/handlers.ts"],
        operator: {},
        logging: {},
        denoFlags,
        env: (name) => ({ KUBECONFIG: kubeconfig } as Record<string, string>)[name],
        cwd: dir,
      }),
    );
  const defaults = (await argsWith([])).filter((a) => a.startsWith("--v8-flags"));
  assert.deepEqual(defaults, [`--v8-flags=${DEFAULT_V8_FLAGS.join(",")}`]);
  const own = (await argsWith(["--v8-flags=--max-old-space-size=512"])).filter((a) =>
    a.startsWith("--v8-flags")
  );
  assert.deepEqual(own, ["--v8-flags=--max-old-space-size=512"]);
});

Deno.test("artifacts: a static entry, no handler-directory grant, the config to build with", () => {
  const { dir, kubeconfig } = fixture();
  const plan = planArtifact({
    kind: "bundle",
    files: ["app/handlers.ts"],
    output: "out/operator.js",
    kubeconfig,
    liveness: "http://0.0.0.0:8080/healthz",
    cwd: dir,
    env: () => undefined,
  });
  assert.equal(plan.output, `${dir}/out/operator.js`);
  assert.equal(plan.config, `${ROOT}/deno.json`, "no deno.json above the handlers: the package's");
  assert.match(
    plan.entrySource,
    new RegExp(`^  \\(\\) => import\\("file://${dir}/app/handlers.ts"\\),$`, "m"),
  );
  assert.match(
    plan.entrySource,
    /embeddedMain\(Deno\.args, \{"name":"operator","labels":\["app\/handlers\.ts"\]\}, \[$/m,
  );
  assert.deepEqual(bundleRunCommand(plan), [
    "deno",
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1:6443,0.0.0.0:8080",
    `--allow-read=${kubeconfig},${dir}/ca.crt`,
    "--allow-env=POD_ID,POD_NAME,HOSTNAME",
    "--ignore-env",
    "--v8-flags=--optimize-for-size",
    `${dir}/out/operator.js`,
  ]);
  assert.deepEqual(buildArgs(plan, "bundle", "/tmp/entry.ts"), [
    "bundle",
    "--platform=deno",
    "--keep-names",
    "--external=npm:@kubernetes/client-node*",
    `--config=${ROOT}/deno.json`,
    `--output=${dir}/out/operator.js`,
    "/tmp/entry.ts",
  ]);
  assert.ok(
    buildArgs(plan, "bundle", "/tmp/entry.ts", undefined, "linked").includes("--sourcemap=linked"),
    "a source map only when asked for",
  );

  Deno.writeTextFileSync(`${dir}/deno.json`, "{}");
  const own = planArtifact({
    kind: "compile",
    files: ["app/handlers.ts"],
    output: "op",
    kubeconfig,
    cwd: dir,
  });
  assert.equal(own.config, `${dir}/deno.json`, "the deno.json above the handler files wins");
});

Deno.test("in-cluster artifacts: the service address from the build environment or --server", () => {
  const { dir } = fixture();
  const fromEnv = planArtifact({
    kind: "compile",
    files: ["app/handlers.ts"],
    output: "op",
    inCluster: true,
    cwd: dir,
    env: (name) =>
      ({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" } as Record<
        string,
        string
      >)[name],
  });
  const args = buildArgs(fromEnv, "compile", "/tmp/entry.ts", "x86_64-unknown-linux-gnu");
  assert.deepEqual(args.slice(0, 6), [
    "compile",
    "--no-prompt",
    "--allow-net=10.96.0.1:443",
    "--allow-read=/var/run/secrets/kubernetes.io/serviceaccount",
    "--allow-env=KUBERNETES_SERVICE_HOST,KUBERNETES_SERVICE_PORT,POD_ID,POD_NAME,HOSTNAME",
    "--ignore-env",
  ]);
  assert.ok(args.includes("--target=x86_64-unknown-linux-gnu"));
  assert.ok(args.includes("--v8-flags=--optimize-for-size"), "baked into the executable");
  const given = planArtifact({
    kind: "compile",
    files: ["app/handlers.ts"],
    output: "op",
    inCluster: true,
    server: "[fd00::1]:6443",
    cwd: dir,
    env: () => undefined,
  });
  assert.equal(given.target.netAddress, "[fd00::1]:6443");
  assert.throws(
    () =>
      planArtifact({
        kind: "compile",
        files: ["app/handlers.ts"],
        output: "op",
        inCluster: true,
        cwd: dir,
        env: () => undefined,
      }),
    (e) => e instanceof UsageError && /--in-cluster needs the API address/.test(e.message),
  );
});

Deno.test("the generated entry hands literal import() loaders to the command line", () => {
  const source = entrySourceOf(["file:///a/h1.ts", "npm:x"], ["h1.ts", "x"], "op");
  const lines = source.split("\n");
  assert.match(lines[1], /^import \{ embeddedMain \} from "file:\/\/.*\/src\/cli\/embedded\.ts";$/);
  assert.equal(
    lines[3],
    `Deno.exit(await embeddedMain(Deno.args, {"name":"op","labels":["h1.ts","x"]}, [`,
  );
  assert.equal(lines[4], `  () => import("file:///a/h1.ts"),`);
  assert.equal(lines[5], `  () => import("npm:x"),`);
  assert.equal(lines[6], "]));");
});

Deno.test("--unstable-worker-options among the Deno flags tells the operator Workers may get permissions", async () => {
  const { dir, kubeconfig } = fixture();
  const specWith = async (denoFlags: string[]) =>
    (await planLaunch({
      files: ["app/handlers.ts"],
      operator: {},
      logging: {},
      denoFlags,
      env: (name) => ({ KUBECONFIG: kubeconfig } as Record<string, string>)[name],
      cwd: dir,
    })).spec.workerOptions;
  assert.equal(await specWith([]), undefined);
  assert.equal(await specWith(["--unstable-worker-options"]), true);
});

Deno.test("the client-node import a bundle leaves out is deno.json's, and matches the external", async () => {
  // A literal npm: specifier (see auth_provider.ts): it must stay the version deno.json locks.
  const source = await Deno.readTextFile(
    new URL("../../src/kube/config/auth_provider.ts", import.meta.url),
  );
  const specifiers = [...source.matchAll(/import\("(npm:@kubernetes\/client-node[^"]*)"\)/g)]
    .map((m) => m[1]);
  const { default: denoJson } = await import("../../deno.json", { with: { type: "json" } });
  assert.deepEqual(specifiers, [denoJson.imports["@kubernetes/client-node"]]);
  const { BUNDLE_EXTERNALS } = await import("../../src/cli/artifact.ts");
  const pattern = new RegExp(`^${
    BUNDLE_EXTERNALS[0].replace(/[.^$+?()[\]{}|\\/]/g, "\\$&")
      .replace("*", ".*")
  }$`);
  assert.match(specifiers[0], pattern);
});
