/**
 * The operator process's contract, run in a real subprocess with real Deno permissions and a
 * stand-in for the framework's `run()` (the operator loop itself is tested elsewhere): exit codes,
 * one-line errors, traces only at debug level, signals, and imports inside the sandbox.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname;
const CHILD = new URL("../../src/cli/child.ts", import.meta.url).href;
const CONFIG = new URL("../../src/kube/config/mod.ts", import.meta.url).href;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a script that calls `runOperator(spec, { api })` with a fake API whose behaviour is given
 * as source text.
 */
async function runChild(
  options: {
    spec?: Record<string, unknown>;
    api?: string;
    flags?: string[];
    files?: Record<string, string>;
    onStart?: (child: Deno.ChildProcess) => Promise<void>;
    stdin?: "piped" | "null";
    env?: Record<string, string>;
  },
): Promise<Outcome & { dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-child-" });
  for (const [name, text] of Object.entries(options.files ?? {})) {
    await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const spec = {
    imports: [],
    operator: {},
    logging: { format: "plain" },
    ...options.spec,
  };
  const api = options.api ?? `{
    run: async ({ signal }) => { await new Promise((r) => signal.addEventListener("abort", r)); },
    countHandlers: () => 1,
    resolveServer: async () => "https://127.0.0.1:6443",
  }`;
  await Deno.writeTextFile(
    `${dir}/main.ts`,
    `import { runOperator } from ${JSON.stringify(CHILD)};
const spec = JSON.parse(${JSON.stringify(JSON.stringify(spec)).replaceAll("__DIR__", dir)});
Deno.exit(await runOperator(spec, { api: ${api} }));
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${ROOT}deno.json`,
      ...(options.flags ?? ["--no-prompt", "--allow-net=127.0.0.1:6443"])
        .map((f) => f.replaceAll("__DIR__", dir)),
      `${dir}/main.ts`,
    ],
    env: options.env,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.onStart) {
    const stderr = new Response(child.stderr).text();
    await options.onStart(child);
    return { dir, code: (await child.status).code, stdout: "", stderr: await stderr };
  }
  const out = await child.output();
  return {
    dir,
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("kopf: error:"));
}

Deno.test("a crash inside the operator: exit 1, the cause on one line, no trace", async () => {
  const out = await runChild({
    api: `{
      run: async () => { throw new TypeError("the watch exploded"); },
      countHandlers: () => 1,
      resolveServer: async () => "https://127.0.0.1:6443",
    }`,
  });
  assert.equal(out.code, 1, out.stderr);
  assert.deepEqual(out.stderr.trim().split("\n"), [
    // Neither -n nor -A: said in the command line's words, not kopf.run()'s options.
    "No --namespace or --all-namespaces is given: serving the whole cluster. " +
    "Pass -A/--all-namespaces to make it explicit, or -n NAMESPACE to serve one.",
    "kopf: error: the operator failed: the watch exploded",
  ]);
});

Deno.test("a crash under --verbose: the trace is logged at debug level", async () => {
  const out = await runChild({
    spec: { logging: { format: "plain", verbosity: "verbose" } },
    api: `{
      run: async () => { throw new TypeError("the watch exploded"); },
      countHandlers: () => 1,
      resolveServer: async () => "https://127.0.0.1:6443",
    }`,
  });
  assert.equal(out.code, 1);
  assert.match(out.stderr, /The operator failed: TypeError: the watch exploded\n\s+at /);
  assert.deepEqual(errorLines(out.stderr), [
    "kopf: error: the operator failed: the watch exploded",
  ]);
});

Deno.test("no handlers registered: exit 2", async () => {
  const out = await runChild({
    spec: { labels: ["empty.ts"] },
    api: `{ run: async () => {}, countHandlers: () => 0, resolveServer: async () => "" }`,
  });
  assert.equal(out.code, 2);
  assert.deepEqual(out.stderr.trim().split("\n"), [
    "kopf: error: no handlers were registered by empty.ts",
  ]);
});

Deno.test("a client that resolves another server than the granted one is refused", async () => {
  const out = await runChild({
    spec: { expectedServer: "https://127.0.0.1:6443" },
    api: `{
      run: async () => { throw new Error("must not run"); },
      countHandlers: () => 1,
      resolveServer: async () => "http://localhost:8080",
    }`,
  });
  assert.equal(out.code, 2);
  assert.deepEqual(out.stderr.trim().split("\n"), [
    "kopf: error: the operator's client resolved the API server http://localhost:8080, but the " +
    "launcher granted access to https://127.0.0.1:6443; refusing to start",
  ]);
});

Deno.test("a server this process may not reach is refused before running", async () => {
  const out = await runChild({
    flags: ["--no-prompt", "--allow-net=127.0.0.1:1"],
    api: `{
      run: async () => { throw new Error("must not run"); },
      countHandlers: () => 1,
      resolveServer: async () => "https://127.0.0.1:6443/",
    }`,
  });
  assert.equal(out.code, 2);
  assert.match(
    out.stderr,
    /^kopf: error: the API server https:\/\/127\.0\.0\.1:6443\/ is not among the hosts this operator may reach \(run it with --allow-net=127\.0\.0\.1:6443\)\n$/,
  );
});

Deno.test("SIGTERM stops the operator gracefully: exit 0 and Kopf's log line", async () => {
  const out = await runChild({
    api: `{
      run: async ({ signal }) => {
        console.log("running");
        await new Promise((r) => signal.addEventListener("abort", r));
        console.log("stopped");
      },
      countHandlers: () => 1,
      resolveServer: async () => "https://127.0.0.1:6443",
    }`,
    onStart: async (child) => {
      // Wait for "running" on stdout before signalling.
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("running")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      child.kill("SIGTERM");
      while (!(await reader.read()).done) { /* drain */ }
    },
  });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /Signal SIGTERM is received\. Operator is stopping\./);
});

Deno.test("handler files: syntax errors, runtime errors, and reads outside the sandbox", async () => {
  const out = await runChild({
    spec: { imports: ["file://__DIR__/broken.ts"], labels: ["broken.ts"] },
    files: { "broken.ts": "export const x = ;\n" },
    flags: ["--no-prompt", "--allow-net=127.0.0.1:6443", "--allow-read=/nonexistent"],
  });
  assert.equal(out.code, 2);
  assert.equal(errorLines(out.stderr).length, 1, out.stderr);
  assert.match(out.stderr, /^kopf: error: broken\.ts (failed to compile|cannot be loaded)/);

  const granted = await runChild({
    spec: { imports: ["file://__DIR__/broken.ts"], labels: ["broken.ts"] },
    files: { "broken.ts": "export const x = ;\n" },
    flags: ["--no-prompt", "--allow-net=127.0.0.1:6443", "--allow-read"],
  });
  assert.equal(granted.code, 2);
  // With its place, at the default level: the file as typed, the line and the column.
  assert.match(
    granted.stderr,
    /^kopf: error: broken\.ts:1:18 failed to compile: SyntaxError: .*\n$/,
  );

  const throwing = await runChild({
    spec: { imports: ["file://__DIR__/throws.ts"], labels: ["throws.ts"] },
    files: { "throws.ts": "throw new Error('config missing');\n" },
    flags: ["--no-prompt", "--allow-net=127.0.0.1:6443", "--allow-read"],
  });
  assert.equal(throwing.code, 2);
  assert.equal(
    throwing.stderr,
    "kopf: error: throws.ts failed while being imported: config missing\n",
  );

  const outside = await runChild({
    spec: { imports: ["file://__DIR__/h/handler.ts"], labels: ["h/handler.ts"] },
    files: { "lib.ts": "export const x = 1;\n", "h/handler.ts": `import "../lib.ts";\n` },
    flags: ["--no-prompt", "--allow-net=127.0.0.1:6443", "--allow-read=__DIR__/h"],
  });
  assert.equal(outside.code, 2, outside.stderr);
  assert.equal(
    outside.stderr,
    `kopf: error: h/handler.ts cannot be loaded in the sandbox: Requires read access to ` +
      `"${outside.dir}/lib.ts", run again with the --allow-read flag; ` +
      `grant it with --allow-read=${outside.dir}/lib.ts\n`,
  );
});

Deno.test("when the launcher dies (its stdin pipe closes), the operator stops", async () => {
  const out = await runChild({
    spec: { watchStdin: true },
    stdin: "piped",
    api: `{
      run: async ({ signal }) => {
        console.log("running");
        await new Promise((r) => signal.addEventListener("abort", r));
      },
      countHandlers: () => 1,
      resolveServer: async () => "https://127.0.0.1:6443",
    }`,
    onStart: async (child) => {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("running")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      await child.stdin.close();
      while (!(await reader.read()).done) { /* drain */ }
    },
  });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /The launcher is gone\. Operator is stopping\./);
});

Deno.test("the handed-over kubeconfig: taken from the environment before handlers load, used by the client", async () => {
  const kubeconfig = JSON.stringify({
    clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:6443" } }],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: [{ name: "k", context: { cluster: "c", user: "u" } }],
    "current-context": "k",
  });
  const out = await runChild({
    spec: {
      imports: ["file://__DIR__/handler.ts"],
      operator: { kubeconfig: "/nonexistent/kubeconfig", context: "gone" },
      kubeconfigVariable: "KOPF_SANDBOX_KUBECONFIG",
    },
    files: {
      "handler.ts": `import { sandboxKubeconfig } from ${JSON.stringify(CONFIG)};
console.log("handler sees: " + Deno.env.get("KOPF_SANDBOX_KUBECONFIG"));
console.log("kopf.sandboxKubeconfig() at import: " + (sandboxKubeconfig() === ${
        JSON.stringify(kubeconfig)
      }));
const out = await new Deno.Command("env").output();
console.log("its programs see: " + new TextDecoder().decode(out.stdout).includes("KOPF_SANDBOX"));
`,
    },
    flags: [
      "--no-prompt",
      "--allow-net=127.0.0.1:6443",
      "--allow-read=__DIR__/handler.ts",
      "--allow-env=KOPF_SANDBOX_KUBECONFIG",
      "--ignore-env",
      "--allow-run=env",
    ],
    env: { KOPF_SANDBOX_KUBECONFIG: kubeconfig },
    api: `{
      run: async () => {},
      countHandlers: () => 1,
      resolveServer: async (options) => {
        const { loadConfig } = await import(${JSON.stringify(CONFIG)});
        const config = await loadConfig(options);
        console.log("options: " + JSON.stringify(options) + ", context: " + config.context +
          ", credentials: " + config.credentials.kind + ", source: " + config.source);
        return config.server;
      },
    }`,
  });
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(out.stdout.trim().split("\n"), [
    "handler sees: undefined",
    "kopf.sandboxKubeconfig() at import: true",
    "its programs see: false",
    // --kubeconfig and --context were resolved by the launcher into the document.
    "options: {}, context: k, credentials: token, source: $KOPF_SANDBOX_KUBECONFIG (from kopf run)",
  ]);

  const missing = await runChild({
    spec: { kubeconfigVariable: "KOPF_SANDBOX_KUBECONFIG" },
    flags: ["--no-prompt", "--allow-net=127.0.0.1:6443", "--allow-env=KOPF_SANDBOX_KUBECONFIG"],
  });
  assert.equal(missing.code, 2);
  assert.equal(
    missing.stderr,
    "kopf: error: the kubeconfig from the launcher is missing: $KOPF_SANDBOX_KUBECONFIG is not " +
      "set (this module is started by `kopf run`)\n",
  );
});
