/**
 * Kopf's documented behaviour at the edges, through the real command line (`kopf run`, via
 * `KopfRunner`) or an embedding program, against the local control plane — each test names the
 * section of Kopf's docs it follows:
 *
 * - docs/loading.rst, "Loading and importing": `kopf run -m package1.module1`.
 * - docs/probing.rst, "Health-checks": the endpoint's answers to other paths and methods.
 * - docs/testing.rst, "Background runner": the runner's exception, exit code and output.
 * - docs/authentication.rst, "Piggybacking": `login_with_kubeconfig` and `login_via_client` in a
 *   login handler, in `kopf run`'s sandbox; the client library is loaded only when used.
 * - docs/configuration.rst, "Logging formats and levels", for an embedded operator
 *   (docs/embedding.rst) with `kopf.configure()`.
 *
 * The handler files are written per test into a temporary project that imports the framework by
 * its file URL.
 */
import assert from "node:assert/strict";
import { KopfRunner, KopfRunnerError } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const MOD = new URL("../../mod.ts", import.meta.url).href;
const OBJ = `${ROOT}examples/obj.yaml`;
const NAME = "kopf-example-1";
const MERGE = { contentType: "application/merge-patch+json" };

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);

/** A temporary project directory with these files (paths relative to it). */
async function project(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kopf-parity-" });
  for (const [path, text] of Object.entries(files)) {
    const slash = path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${dir}/${path.slice(0, slash)}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, `import * as kopf from "${MOD}";\n${text}`);
  }
  return dir;
}

function runner(cwd: string, ...args: string[]): KopfRunner {
  return new KopfRunner(["run", "--verbose", "--standalone", ...args], {
    env: { KUBECONFIG: c.kubeconfig },
    cwd,
    timeout: 30,
  });
}

const kexPath = (ns: string, name = NAME) =>
  `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/${name}`;

async function get(path: string): Promise<Obj | null> {
  try {
    return await c.api("GET", path);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return null;
    throw error;
  }
}

function count(output: string, text: string): number {
  return output.split(text).length - 1;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function cleanup(ns: string): Promise<void> {
  await c.api("PATCH", kexPath(ns), { metadata: { finalizers: null } }, MERGE).catch(() => {});
  await c.deleteNamespace(ns);
}

Deno.test("loading.rst: kopf run -m takes Kopf's dotted module names and relative paths", async () => {
  const ns = await c.namespace("parity-m");
  const dir = await project({
    "ops/handlers.ts": `kopf.on.create("kopfexamples", function create_fn() { return "ops"; });`,
    "other.ts": `kopf.on.create("kopfexamples", function other_fn() { return "other"; });`,
  });
  const operator = runner(dir, "-n", ns, "-m", "ops.handlers", "-m", "./other.ts");
  try {
    await c.apply(OBJ, { namespace: ns });
    await waitFor(async () => {
      const status = (await get(kexPath(ns)))?.status;
      return status?.create_fn === "ops" && status?.other_fn === "other";
    }, { timeout: 60, message: "both modules' handlers to have run" });
    assert.equal(await operator.stop(), 0, operator.output.slice(-3000));
    assert.equal(operator.exception, null);
    assert.equal(count(operator.output, "Handler 'create_fn' succeeded."), 1);
    assert.equal(count(operator.output, "Handler 'other_fn' succeeded."), 1);
  } finally {
    await operator.stop();
    await cleanup(ns);
  }
  // A name that is neither mapped nor a module file: one line, exit 2.
  const missing = runner(dir, "-n", ns, "-m", "ops.nothing");
  assert.equal(await missing.wait(), 2);
  assert.match(
    missing.stderr,
    /^kopf: error: -m ops\.nothing: not in the import map of .*deno\.json, and no module file matches it in .* \(tried ops\.nothing, .*\)\n$/,
  );
});

Deno.test("probing.rst: the health endpoint answers other paths with 404 and methods with 405", async () => {
  const ns = await c.namespace("parity-probe");
  const port = freePort();
  const dir = await project({
    "handlers.ts": `kopf.on.probe(function alive() { return "yes"; });`,
  });
  const url = `http://127.0.0.1:${port}`;
  const operator = runner(dir, "-n", ns, "--liveness", `${url}/healthz`, "handlers.ts");
  try {
    const live = await waitFor(
      async () => await fetch(`${url}/healthz`).catch(() => null),
      { timeout: 60, message: "the health endpoint" },
    );
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { alive: "yes" });
    // What Kopf's aiohttp endpoint answers (checked against kopf 1.45.2's server).
    const answers: string[] = [];
    for (
      const [method, path] of [
        ["GET", "/other"],
        ["PUT", "/other"],
        ["GET", "/healthz/"],
        ["POST", "/healthz"],
        ["DELETE", "/healthz"],
        ["HEAD", "/healthz"],
      ]
    ) {
      const response = await fetch(`${url}${path}`, { method });
      const body = await response.text();
      answers.push(
        `${method} ${path}: ${response.status} ${response.headers.get("content-type")} ` +
          `allow=${response.headers.get("allow")} ${JSON.stringify(body)}`,
      );
    }
    assert.deepEqual(answers, [
      'GET /other: 404 text/plain; charset=utf-8 allow=null "404: Not Found"',
      'PUT /other: 404 text/plain; charset=utf-8 allow=null "404: Not Found"',
      'GET /healthz/: 404 text/plain; charset=utf-8 allow=null "404: Not Found"',
      'POST /healthz: 405 text/plain; charset=utf-8 allow=GET,HEAD "405: Method Not Allowed"',
      'DELETE /healthz: 405 text/plain; charset=utf-8 allow=GET,HEAD "405: Method Not Allowed"',
      'HEAD /healthz: 200 application/json; charset=utf-8 allow=null ""',
    ]);
    assert.equal(await operator.stop(), 0, operator.output.slice(-3000));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("testing.rst: the runner has the operator's exception, exit code and output", async () => {
  const ns = await c.namespace("parity-runner");
  const dir = await project({
    "handlers.ts": `kopf.on.startup(function refuse() {
  throw new kopf.PermanentError("the startup is refused");
});`,
  });
  const failing = runner(dir, "-n", ns, "handlers.ts");
  try {
    assert.equal(await failing.wait(), 1);
    const exception = failing.exception!;
    assert.equal(exception.name, "ActivityError");
    assert.equal(exception.message, "Activity 'startup' failed: refuse: the startup is refused");
    assert.match(exception.stack!, /^ActivityError: Activity 'startup' failed/);
    assert.match(exception.stack!, /\n {4}at .*activities\.ts:\d+:\d+/);
    // The report is for the runner, not a part of the output.
    assert.doesNotMatch(failing.output, /kopf-exception/);
    assert.match(failing.stderr, /kopf: error: the operator failed: Activity 'startup' failed/);
    // With reraise (the default), leaving the scope throws, with the exception as the cause.
    let thrown: unknown;
    try {
      await using scoped = runner(dir, "-n", ns, "handlers.ts");
      await scoped.wait();
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof KopfRunnerError);
    assert.equal(thrown.exitCode, 1);
    assert.equal((thrown.cause as Error).name, "ActivityError");
  } finally {
    await failing.stop();
    await c.deleteNamespace(ns);
  }
});

/** The lines where Deno resolves @kubernetes/client-node's package: it is being loaded. */
function clientNodeLoads(output: string): number {
  return count(output, "Resolved package folder of @kubernetes/client-node@");
}

Deno.test("authentication.rst: loginWithKubeconfig and loginViaClient log in inside kopf run's sandbox", async () => {
  for (const helper of ["loginWithKubeconfig", "loginViaClient"]) {
    const ns = await c.namespace("parity-login");
    const dir = await project({
      "handlers.ts": `kopf.on.login(kopf.${helper});
kopf.on.create("kopfexamples", function create_fn() { return "logged in"; });`,
    });
    // Deno's debug log says when it loads an npm package: the evidence of what is imported.
    const operator = runner(dir, "-n", ns, "--deno-flag=--log-level=debug", "handlers.ts");
    try {
      await c.apply(OBJ, { namespace: ns });
      await waitFor(
        async () => (await get(kexPath(ns)))?.status?.create_fn === "logged in",
        { timeout: 60, message: `the handler, with the credentials of ${helper}` },
      );
      assert.equal(await operator.stop(), 0, operator.output.slice(-3000));
      const out = operator.output;
      assert.equal(count(out, `Activity '${helper}' succeeded.`), 1, helper);
      assert.equal(count(out, "Initial authentication has finished."), 1);
      assert.equal(count(out, "Handler 'create_fn' succeeded."), 1);
      // client-node is imported by loginViaClient only; never by an operator that does not call it.
      assert.equal(clientNodeLoads(out), helper === "loginViaClient" ? 1 : 0, helper);
    } finally {
      await operator.stop();
      await cleanup(ns);
    }
  }
});

Deno.test("configuration.rst: kopf.configure() gives an embedded operator Kopf's log formats", async () => {
  const program = `import * as kopf from "${MOD}";
const [mode, ns, kubeconfig] = Deno.args;
if (mode === "plain") kopf.configure({ verbose: true, logFormat: "plain", logPrefix: true });
else if (mode === "json") kopf.configure({ logFormat: "json", logRefkey: "k8s-obj" });
else kopf.configure();
const stop = new AbortController();
kopf.on.create("kopfexamples", function create_fn() {
  setTimeout(() => stop.abort(), 500);
  return "configured";
});
await kopf.run({ namespaces: [ns], kubeconfig, signal: stop.signal });
`;
  const file = `${await Deno.makeTempDir({ prefix: "kopf-parity-" })}/app.ts`;
  await Deno.writeTextFile(file, program);
  const lines: Record<string, string[]> = {};
  for (const mode of ["plain", "json", "default"]) {
    const ns = await c.namespace("parity-configure");
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `--config=${ROOT}deno.json`, file, mode, ns, c.kubeconfig],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await c.apply(OBJ, { namespace: ns });
      const output = await child.output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      lines[mode] = stderr.trimEnd().split("\n");
    } finally {
      await cleanup(ns);
    }
  }
  const succeeded = (mode: string) =>
    lines[mode].filter((line) => line.includes("Handler 'create_fn' succeeded."));
  // plain, verbose, prefixed: `[namespace/name] message`, debug records included.
  assert.equal(succeeded("plain").length, 1, lines.plain.join("\n"));
  assert.match(
    succeeded("plain")[0],
    /^\[parity-configure-\w+\/kopf-example-1\] Handler 'create_fn' succeeded\.$/,
  );
  assert.ok(lines.plain.some((line) => line.endsWith("Handler 'create_fn' is invoked.")));
  // json with the reference under the chosen key; INFO and above by default.
  const json = succeeded("json").map((line) => JSON.parse(line));
  assert.equal(json.length, 1, lines.json.join("\n"));
  assert.equal(json[0].message, "Handler 'create_fn' succeeded.");
  assert.equal(json[0].severity, "info");
  assert.equal(json[0].logger, "kopf.objects");
  assert.equal(json[0]["k8s-obj"].name, "kopf-example-1");
  assert.ok(lines.json.every((line) => JSON.parse(line).severity !== "debug"));
  // Kopf's configure() defaults: the full format, INFO, and no prefix.
  assert.equal(succeeded("default").length, 1, lines.default.join("\n"));
  assert.match(
    succeeded("default")[0],
    /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] kopf\.objects +\[INFO +\] Handler 'create_fn' succeeded\.$/,
  );
  assert.ok(!lines.default.some((line) => line.includes("[DEBUG")));
});
