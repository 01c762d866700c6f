/**
 * A kubeconfig exec credential plugin for tests.
 *
 * Usage in a kubeconfig: `command: <deno>`, `args: [run, --allow-read, --allow-write,
 * <this file>, <state dir>]`. On every run it appends a line to `<state dir>/runs` (so tests
 * can count invocations) and prints an `ExecCredential` whose token is line N of
 * `<state dir>/tokens` for run N (the last line once the lines run out). If
 * `<state dir>/expires-in` holds a number of seconds, the credential carries that expiry.
 * If `<state dir>/fail` exists, it prints its content to stderr and exits with code 3.
 *
 * @module
 */

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: exec_plugin.ts <state dir>");
  Deno.exit(2);
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

const failure = await readOptional(`${dir}/fail`);
if (failure !== undefined) {
  console.error(failure.trim() || "the plugin was told to fail");
  Deno.exit(3);
}

await Deno.writeTextFile(`${dir}/runs`, `${new Date().toISOString()}\n`, { append: true });
const runs = (await Deno.readTextFile(`${dir}/runs`)).trim().split("\n").length;
const tokens = ((await readOptional(`${dir}/tokens`)) ?? "").trim().split("\n").filter((t) => t);
const token = tokens[Math.min(runs, tokens.length) - 1];
const expiresIn = await readOptional(`${dir}/expires-in`);
const info = JSON.parse(Deno.env.get("KUBERNETES_EXEC_INFO") ?? "{}");
await Deno.writeTextFile(`${dir}/exec-info.json`, JSON.stringify(info));

console.log(JSON.stringify({
  apiVersion: info.apiVersion ?? "client.authentication.k8s.io/v1",
  kind: "ExecCredential",
  status: {
    token,
    ...(expiresIn
      ? { expirationTimestamp: new Date(Date.now() + Number(expiresIn) * 1000).toISOString() }
      : {}),
  },
}));
