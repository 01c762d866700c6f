/**
 * Bad input to `kopf run`, through the real command line in a subprocess: each must end with one
 * line on stderr (`kopf: error: …`), exit code 2, and no stack trace. None of these reach a
 * cluster, so the kubeconfig points at an address nothing listens on.
 */
import assert from "node:assert/strict";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function kopf(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: options.env,
    cwd: options.cwd,
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

const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-bad-" });
const kubeconfig = `${dir}/kubeconfig`;
Deno.writeTextFileSync(
  kubeconfig,
  `apiVersion: v1
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: k, context: {cluster: c, user: u}}]
current-context: k
`,
);
Deno.writeTextFileSync(`${dir}/nocontext`, "apiVersion: v1\nclusters: []\ncontexts: []\n");
Deno.writeTextFileSync(`${dir}/handlers.ts`, "export {};\n");
Deno.writeTextFileSync(`${dir}/broken.ts`, "export function (\n");
const env = { KUBECONFIG: kubeconfig };

function assertOneLineError(
  out: { code: number; stderr: string },
  pattern: RegExp,
): void {
  assert.equal(out.code, 2, out.stderr);
  const lines = out.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${out.stderr}`);
  assert.match(lines[0], /^kopf: error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(out.stderr, /\n\s+at /, "no stack trace");
}

Deno.test("a handler file that does not exist", async () => {
  assertOneLineError(
    await kopf(["run", `${dir}/missing.ts`, "-A"], { env }),
    /handler file not found: .*missing\.ts$/,
  );
});

Deno.test("a handler file that fails to compile: its place, with and without the type check", async () => {
  assertOneLineError(
    await kopf(["run", "broken.ts", "-A"], { env, cwd: dir }),
    /^kopf: error: broken\.ts:1:\d+: SyntaxError: .* \(deno check; --no-check skips it\)$/,
  );
  assertOneLineError(
    await kopf(["run", "--no-check", "broken.ts", "-A"], { env, cwd: dir }),
    /^kopf: error: broken\.ts:1:\d+ failed to compile: SyntaxError: /,
  );
});

Deno.test("handlers that do not type-check: one line per error, with file:line:column", async () => {
  // The mistake of the issue: a misspelt field of the handler context, which runs as undefined.
  const framework = new URL("../../mod.ts", import.meta.url).href;
  Deno.writeTextFileSync(
    `${dir}/typo.ts`,
    `import * as kopf from ${JSON.stringify(framework)};\n\n` +
      `kopf.on.create("kopfexamples.kopf.dev", function created({ nmae, logger }) {\n` +
      "  logger.info(`created ${nmae}`);\n});\n" +
      `export const count: number = "one";\n`,
  );
  const out = await kopf(["run", "typo.ts", "-A"], { env, cwd: dir });
  assert.equal(out.code, 2, out.stderr);
  assert.deepEqual(out.stderr.trimEnd().split("\n"), [
    "kopf: error: deno check found 2 errors in the handler files (--no-check skips it):",
    "kopf: error: typo.ts:3:60: TS2339 Property 'nmae' does not exist on type " +
    "'ChangingContext<JsonObject, JsonObject, unknown>'.",
    "kopf: error: typo.ts:6:14: TS2322 Type 'string' is not assignable to type 'number'.",
  ]);
  // Unchecked, it starts (and here fails to reach the unreachable cluster, not to compile).
  const unchecked = await kopf(["run", "--no-check", "typo.ts", "-A", "--standalone"], {
    env,
    cwd: dir,
  });
  assert.doesNotMatch(unchecked.stderr, /TS2339|deno check/, unchecked.stderr);
});

Deno.test("a handler file that registers nothing", async () => {
  assertOneLineError(
    await kopf(["run", "handlers.ts", "-A"], { env, cwd: dir }),
    /^kopf: error: no handlers were registered by handlers\.ts$/,
  );
});

Deno.test("a kubeconfig without a current context", async () => {
  assertOneLineError(
    await kopf(["run", "handlers.ts", "-A", "--kubeconfig", `${dir}/nocontext`], { cwd: dir }),
    /has no current context; pass --context NAME$/,
  );
  assertOneLineError(
    await kopf(["run", "handlers.ts", "-A"], { env: { KUBECONFIG: `${dir}/nocontext` }, cwd: dir }),
    /has no current context/,
  );
});

Deno.test("-n and -A together", async () => {
  assertOneLineError(
    await kopf(["run", "handlers.ts", "-n", "default", "-A"], { env, cwd: dir }),
    /--namespace and --all-namespaces cannot be used together$/,
  );
});

Deno.test("an unknown flag, an unknown command, a missing value", async () => {
  assertOneLineError(
    await kopf(["run", "handlers.ts", "--frobnicate"], { env, cwd: dir }),
    /unknown option '--frobnicate'/,
  );
  assertOneLineError(await kopf(["walk"], { env }), /unknown command 'walk'/);
  assertOneLineError(
    await kopf(["run", "handlers.ts", "-n"], { env, cwd: dir }),
    /argument missing/,
  );
  assertOneLineError(
    await kopf(["run", "handlers.ts", "--log-format", "xml"], { env, cwd: dir }),
    /Allowed choices are full, plain, json/,
  );
});

Deno.test("an unknown KOPF_LAUNCHER", async () => {
  assertOneLineError(
    await kopf(["run", "handlers.ts", "-A"], {
      env: { ...env, KOPF_LAUNCHER: "fork" },
      cwd: dir,
    }),
    /KOPF_LAUNCHER must be "exec" or "spawn", not "fork"$/,
  );
});

Deno.test("help and version are complete and exit 0", async () => {
  const version = await kopf(["--version"]);
  assert.equal(version.code, 0);
  const { default: denoJson } = await import("../../deno.json", { with: { type: "json" } });
  assert.equal(version.stdout.trim(), denoJson.version);
  const top = await kopf(["--help"]);
  assert.equal(top.code, 0);
  for (const command of ["run", "bundle", "compile", "init"]) {
    assert.match(top.stdout, new RegExp(`\\n  ${command} `));
  }
  const run = await kopf(["run", "--help"]);
  assert.equal(run.code, 0);
  for (
    const flag of [
      "--module",
      "--namespace",
      "--all-namespaces",
      "--context",
      "--kubeconfig",
      "--liveness",
      "--standalone",
      "--priority",
      "--dev",
      "--verbose",
      "--debug",
      "--quiet",
      "--log-format",
      "--allow-net",
      "--deno-flag",
      "--no-sandbox",
      "--no-check",
    ]
  ) assert.match(run.stdout, new RegExp(`${flag}\\b`), flag);
  const init = await kopf(["init", "--help"]);
  assert.equal(init.code, 0);
  for (const flag of ["--framework", "--name", "--group", "--force"]) {
    assert.match(init.stdout, new RegExp(`${flag}\\b`), `init ${flag}`);
  }
  const bundleHelp = await kopf(["bundle", "--help"]);
  assert.match(bundleHelp.stdout, /--sourcemap \[kind\]/);
  for (const command of ["bundle", "compile"]) {
    const help = await kopf([command, "--help"]);
    assert.equal(help.code, 0);
    for (const flag of ["--output", "--server", "--in-cluster", "--allow-net"]) {
      assert.match(help.stdout, new RegExp(`${flag}\\b`), `${command} ${flag}`);
    }
  }
  const bare = await kopf([]);
  assert.equal(bare.code, 2, "a missing command is bad input");
  assert.match(bare.stderr, /Usage: kopf/);
});
