/**
 * What a newcomer sees from `kopf run` at the default log level, through the real command line
 * and its sandbox, against the local control plane: the line naming what is watched, close names
 * for a misspelt resource, a WARNING with host and cause for each failed connection attempt, and
 * a kubeconfig with `insecure-skip-tls-verify: true` working with no `--allow-sys`.
 */
import assert from "node:assert/strict";
import { cluster } from "../support/cluster.ts";
import { OperatorProcess } from "../support/operator_process.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
const MOD = `${ROOT}mod.ts`;

const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-newcomer-" });
const handlers = `${dir}/handlers.ts`;
Deno.writeTextFileSync(
  handlers,
  `import * as kopf from ${JSON.stringify(MOD)};\n` +
    `kopf.on.create("kopfexamples", function created({ name, logger }) {\n` +
    "  logger.info(`created ${name}`);\n});\n",
);
const typo = `${dir}/typo.ts`;
Deno.writeTextFileSync(
  typo,
  `import * as kopf from ${JSON.stringify(MOD)};\n` +
    `kopf.on.create("kopfexampels", function created({ name, logger }) {\n` +
    "  logger.info(`created ${name}`);\n});\n",
);

function kopfRun(args: string[], env: Record<string, string>): OperatorProcess {
  return OperatorProcess.start({
    command: Deno.execPath(),
    args: ["run", "-A", CLI, "run", "--standalone", ...args],
    env,
  });
}

Deno.test("the default level says what is watched, and suggests names for a misspelt resource", async () => {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const ns = await c.namespace("newcomer");
  const op = kopfRun([handlers, "-n", ns], { KUBECONFIG: c.kubeconfig });
  try {
    const line = await op.waitForLog(/Watching /, 60);
    assert.match(line, /\[INFO {4}\] Watching kopfexamples\.v1\.kopf\.dev in namespace newcomer-/);
    assert.equal((await op.stop()).code, 0, op.output());
  } finally {
    await op.stop();
  }
  const misspelt = kopfRun([typo, "-n", ns], { KUBECONFIG: c.kubeconfig });
  try {
    const line = await misspelt.waitForLog(/Unresolved resources/, 60);
    assert.match(
      line,
      /\[WARNING \] Unresolved resources cannot be served \(try creating their CRDs\): kopfexampels \(did you mean: kopfexamples[^)]*\?\)$/,
    );
    await misspelt.stop();
  } finally {
    await misspelt.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("each failed connection attempt is a WARNING with the host and the cause", async () => {
  // Nothing listens on this port: a real refused connection, no fault injection needed.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const kubeconfig = `${dir}/refused`;
  Deno.writeTextFileSync(
    kubeconfig,
    `apiVersion: v1
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: k, context: {cluster: c, user: u}}]
current-context: k
`,
  );
  const op = kopfRun([handlers, "-A"], { KUBECONFIG: kubeconfig });
  try {
    // Two attempts within seconds, each said at once (not a minute later, at the last retry).
    for (const attempt of [1, 2]) {
      const line = await op.waitForLog(new RegExp(`retry ${attempt}/\\d+ in \\d+ ms\\.$`), 30);
      assert.match(
        line,
        new RegExp(`\\[WARNING \\] GET .*: cannot connect to 127\\.0\\.0\\.1:${port}: .+; retry`),
      );
    }
    assert.doesNotMatch(op.output(), /NotCapable|Requires .* access/);
  } finally {
    await op.stop();
  }
});

Deno.test("insecure-skip-tls-verify works in the sandbox, without --allow-sys", async () => {
  const c = await cluster();
  const kubeconfig = `${dir}/skip-verify`;
  Deno.writeTextFileSync(
    kubeconfig,
    `apiVersion: v1
clusters: [{name: c, cluster: {server: "${c.server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: ${c.token}}}]
contexts: [{name: k, context: {cluster: c, user: u}}]
current-context: k
`,
  );
  await c.applyCrd(c.kopfExampleCrd);
  const op = kopfRun([handlers, "-A"], { KUBECONFIG: kubeconfig });
  try {
    await op.waitForLog(/Watching kopfexamples\.v1\.kopf\.dev in all namespaces/, 60);
    assert.doesNotMatch(op.output(), /Requires sys access|NotCapable|WARNING|ERROR/, op.output());
    assert.equal((await op.stop()).code, 0, op.output());
  } finally {
    await op.stop();
  }
});
