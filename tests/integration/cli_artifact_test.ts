/**
 * Single-artifact operators against the local control plane: `kopf bundle` produces one file that
 * runs with the printed `deno run` command and its scoped permissions; `kopf compile` produces an
 * executable with the permissions baked in. `deno compile` needs Deno's `denort` runtime, which
 * cannot be downloaded here: the compile test runs only where DENORT_BIN points at one.
 */
import assert from "node:assert/strict";
import { cluster } from "../support/cluster.ts";
import { OperatorProcess } from "../support/operator_process.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
const MOD = `${ROOT}mod.ts`;

const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.error(
    "cli_artifact_test: SKIPPED `kopf compile`: DENORT_BIN is not set, and deno compile cannot " +
      "download denort on this machine (no route to dl.deno.land; no registry ships it)",
  );
}

// A loopback server the artifacts are not granted: their handler's fetch to it must fail.
const other = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  () => new Response("x"),
);
globalThis.addEventListener("unload", () => other.shutdown());

const HANDLERS = `
import * as kopf from ${JSON.stringify(MOD)};
kopf.on.create("kopfexamples", async function create_fn({ name }) {
  let other = "reached";
  try {
    await fetch("http://127.0.0.1:${other.addr.port}/");
  } catch (error) {
    other = (error as Error).name;
  }
  return { built: true, name, other };
});
`;

async function kopf(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function exercise(command: string, args: string[], env: Record<string, string>, ns: string) {
  const c = await cluster();
  const op = OperatorProcess.start({ command, args: [...args, "-n", ns, "--standalone"], env });
  try {
    await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`, {
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      metadata: { name: "built" },
      spec: {},
    });
    const result = await waitFor(
      async () =>
        (await c.api("GET", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/built`)).status
          ?.create_fn,
      { timeout: 60, message: "the handler's result" },
    ).catch((e) => {
      throw new Error(`${e.message}\n${op.output()}`);
    });
    assert.deepEqual(result, { built: true, name: "built", other: "NotCapable" });
    assert.equal((await op.stop()).code, 0, op.output());
  } finally {
    await op.stop();
  }
}

Deno.test({
  name: "kopf bundle: one file that runs with the printed scoped `deno run` command",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-bundle");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-bundle-" });
    try {
      await Deno.mkdir(`${dir}/src`);
      await Deno.writeTextFile(`${dir}/src/handlers.ts`, HANDLERS);
      const out = await kopf(
        ["bundle", `${dir}/src/handlers.ts`, "-o", `${dir}/dist/operator.js`],
        { KUBECONFIG: c.kubeconfig },
      );
      assert.equal(out.code, 0, out.stderr);
      // Only what the operator imports: client-node stays out (a run-time import from Deno's
      // cache for the few who need it), and no source map unless --sourcemap asks for one.
      const code = await Deno.readTextFile(`${dir}/dist/operator.js`);
      assert.ok(code.length <= 3_000_000, `the bundle is ${code.length} bytes`);
      assert.doesNotMatch(code, /sourceMappingURL/);
      assert.equal(
        code.match(/import\("npm:@kubernetes\/client-node@[^"]*"\)/g)?.length,
        1,
        "client-node is left out, imported at run time",
      );
      assert.doesNotMatch(code, /class KubeConfig\b/);
      const printed = out.stdout.trim();
      assert.match(printed, /^deno run --no-prompt --allow-net=127\.0\.0\.1:\d+ /);
      assert.ok(printed.endsWith(`${dir}/dist/operator.js [-n NAMESPACE | -A]`), printed);
      assert.doesNotMatch(
        printed,
        new RegExp(`--allow-read=[^ ]*${dir}/src`),
        "handlers are inside",
      );
      // Run exactly the printed command (it has no quoted words).
      const words = printed.replace(/ \[-n NAMESPACE \| -A\]$/, "").split(" ");
      assert.equal(words[0], "deno");
      await exercise(Deno.execPath(), words.slice(1), { KUBECONFIG: c.kubeconfig }, ns);
    } finally {
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bundles keep handler ids: named handlers match kopf run, anonymous ones are refused", async () => {
  // Handler ids key the state kept on objects: an operator must not lose it when it is bundled.
  // Anonymous handlers get `lambda:<file>:<line>` ids, which a bundle cannot reproduce.
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-ids-" });
  try {
    await Deno.mkdir(`${dir}/src`);
    const write = (body: string) =>
      Deno.writeTextFile(
        `${dir}/src/handlers.ts`,
        `import * as kopf from ${JSON.stringify(MOD)};
${body}
kopf.on.startup(async function report() {
  console.log("ids: " + kopf.defaultRegistry().handlers.map((h) => h.id).join(","));
  Deno.exit(0);
});
`,
      );
    const env = { KUBECONFIG: c.kubeconfig };
    await write(`kopf.on.create("kopfexamples", async function create_fn() {});
kopf.on.update("kopfexamples", { id: "on-update" }, async () => {});
const resumeFn = async () => {};
kopf.on.resume("kopfexamples", resumeFn);`);
    const run = await kopf(["run", `${dir}/src/handlers.ts`, "-A"], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), "ids: create_fn,on-update,resumeFn,report");
    const built = await kopf(["bundle", `${dir}/src/handlers.ts`, "-o", `${dir}/dist/op.js`], env);
    assert.equal(built.code, 0, built.stderr);
    const words = built.stdout.trim().replace(/ \[-n NAMESPACE \| -A\]$/, "").split(" ");
    const bundled = await new Deno.Command(Deno.execPath(), {
      args: [...words.slice(1), "-A"],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(
      new TextDecoder().decode(bundled.stdout).trim(),
      run.stdout.trim(),
      new TextDecoder().decode(bundled.stderr),
    );

    await write(`kopf.on.update("kopfexamples", async () => {});`);
    const refused = await kopf(
      ["bundle", `${dir}/src/handlers.ts`, "-o", `${dir}/dist/op2.js`],
      env,
    );
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /^kopf: error: anonymous handlers get their ids from the file and line, which a bundle does not keep: lambda:handlers\.ts:2; name the functions or pass \{ id: "…" \}\n$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "kopf compile: an executable with the scoped permissions baked in (needs DENORT_BIN)",
  ignore: !denort,
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-compile");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-compile-" });
    try {
      await Deno.writeTextFile(`${dir}/handlers.ts`, HANDLERS);
      const out = await kopf(
        ["compile", `${dir}/handlers.ts`, "-o", `${dir}/my-operator`],
        { KUBECONFIG: c.kubeconfig, DENORT_BIN: denort! },
      );
      assert.equal(out.code, 0, out.stderr);
      await exercise(`${dir}/my-operator`, [], { KUBECONFIG: c.kubeconfig }, ns);
    } finally {
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "kopf bundle: client-node, left out of the bundle, loads at run time for those who use it",
  async fn() {
    // kopf.loginViaClient is one of the two users of client-node (auth providers are the other):
    // the bundle imports it from Deno's cache, in the same scoped sandbox.
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-bundle-login");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-bundle-login-" });
    try {
      await Deno.writeTextFile(
        `${dir}/handlers.ts`,
        `import * as kopf from ${JSON.stringify(MOD)};\n` +
          "kopf.on.login(kopf.loginViaClient);\n" +
          `kopf.on.create("kopfexamples", function created({ logger }) {\n` +
          `  logger.info("created");\n});\n`,
      );
      const out = await kopf(
        ["bundle", `${dir}/handlers.ts`, "-o", `${dir}/operator.js`],
        { KUBECONFIG: c.kubeconfig },
      );
      assert.equal(out.code, 0, out.stderr);
      const code = await Deno.readTextFile(`${dir}/operator.js`);
      assert.doesNotMatch(code, /class KubeConfig\b/, "client-node is not in the bundle");
      const words = out.stdout.trim().replace(/ \[-n NAMESPACE \| -A\]$/, "").split(" ");
      const op = OperatorProcess.start({
        command: Deno.execPath(),
        args: [...words.slice(1), "-n", ns],
        env: { KUBECONFIG: c.kubeconfig },
      });
      try {
        await op.waitForLog(/Activity 'loginViaClient' succeeded/, 60);
        await op.waitForLog(/Watching kopfexamples\.v1\.kopf\.dev in namespace /, 60);
        assert.equal((await op.stop()).code, 0, op.output());
        assert.doesNotMatch(op.output(), /NotCapable|ERROR/, op.output());
      } finally {
        await op.stop();
      }
    } finally {
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
