/**
 * The sandbox `kopf run` puts the operator in, observed from inside a handler file: the real
 * command line, which becomes the scoped `deno run` (execve) or, with `KOPF_LAUNCHER=spawn`,
 * starts it as a child; real permission checks. The handler files here act at import time and
 * exit, so these tests hold regardless of the operator loop.
 */
import assert from "node:assert/strict";
import { cluster } from "../support/cluster.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

function serve(body: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(body));
}

const MODES = ["exec", "spawn"] as const;

async function kopf(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = await child.output();
  return {
    pid: child.pid,
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("handlers reach only the API server and the hosts the user granted", async () => {
  const c = await cluster();
  const denied = serve("denied-server");
  const granted = serve("granted-server");
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-sandbox-" });
  const secret = await Deno.makeTempFile({ prefix: "kopf-cli-secret-" });
  try {
    await Deno.writeTextFile(
      `${dir}/handlers.ts`,
      `
async function attempt(what: string, action: () => Promise<string> | string) {
  try {
    console.log(what + ": ok: " + await action());
  } catch (error) {
    console.log(what + ": " + (error as Error).name);
  }
}
await attempt("other host", async () => await (await fetch("http://127.0.0.1:${denied.addr.port}/")).text());
await attempt("granted host", async () => await (await fetch("http://127.0.0.1:${granted.addr.port}/")).text());
await attempt("api server", async () => (await Deno.permissions.query({ name: "net", host: "${
        new URL(c.server).host
      }" })).state);
await attempt("own directory", () => Deno.readTextFileSync("${dir}/handlers.ts").length > 0 ? "read" : "");
await attempt("other file", () => Deno.readTextFileSync("${secret}"));
await attempt("write", () => { Deno.writeTextFileSync("${dir}/out.txt", "x"); return "written"; });
await attempt("env HOME", () => String(Deno.env.get("HOME")));
await attempt("env KUBECONFIG", () => Deno.env.get("KUBECONFIG") ? "visible" : "unset");
await attempt("run", async () => String((await new Deno.Command("true").output()).code));
console.log("pid: " + Deno.pid);
Deno.exit(0);
`,
    );
    const out = await kopf(
      ["run", `${dir}/handlers.ts`, "-A", `--allow-net=127.0.0.1:${granted.addr.port}`],
      { KUBECONFIG: c.kubeconfig, HOME: "/root" },
    );
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split("\n");
    // `kopf run` itself became the sandboxed operator.
    assert.equal(lines.pop(), `pid: ${out.pid}`);
    assert.deepEqual(lines, [
      "other host: NotCapable",
      "granted host: ok: granted-server",
      "api server: ok: granted",
      "own directory: ok: read",
      "other file: NotCapable",
      "write: NotCapable",
      "env HOME: ok: undefined",
      "env KUBECONFIG: ok: visible",
      "run: NotCapable",
    ]);
    // --no-sandbox runs the handlers in the launcher's own process, with its (here: all)
    // permissions: the same probes now succeed.
    const open = await kopf(["run", `${dir}/handlers.ts`, "-A", "--no-sandbox"], {
      KUBECONFIG: c.kubeconfig,
      HOME: "/root",
    });
    assert.equal(open.code, 0, open.stderr);
    const openLines = open.stdout.trim().split("\n");
    assert.ok(openLines.includes("other host: ok: denied-server"), open.stdout);
    assert.ok(openLines.includes("other file: ok: "), open.stdout);
    assert.ok(openLines.includes("env HOME: ok: /root"), open.stdout);
  } finally {
    await denied.shutdown();
    await granted.shutdown();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(secret);
  }
});

Deno.test("the operator's exit code is kopf run's, in either launcher mode", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-exit-" });
  try {
    await Deno.writeTextFile(`${dir}/handlers.ts`, "Deno.exit(7);\n");
    for (const mode of MODES) {
      const out = await kopf(["run", `${dir}/handlers.ts`, "-A"], {
        KUBECONFIG: c.kubeconfig,
        KOPF_LAUNCHER: mode,
      });
      assert.equal(out.code, 7, `${mode}: ${out.stderr}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM and SIGINT to kopf run reach the operator once, in either launcher mode", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-signal-" });
  try {
    // The handler takes over the signals (so the framework's own stop does not interfere) and
    // reports every one it gets.
    await Deno.writeTextFile(
      `${dir}/handlers.ts`,
      `
let count = 0;
for (const name of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(name, () => {
    count += 1;
    console.log("got " + name + " #" + count);
    setTimeout(() => Deno.exit(40 + count), 300);
  });
}
console.log("ready");
setInterval(() => {}, 1000);
await new Promise(() => {});
`,
    );
    for (const [mode, signal] of MODES.flatMap((m) => [[m, "SIGTERM"], [m, "SIGINT"]] as const)) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "run", `${dir}/handlers.ts`, "-A"],
        env: { KUBECONFIG: c.kubeconfig, KOPF_LAUNCHER: mode },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("ready\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      child.kill(signal);
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      const status = await child.status;
      assert.equal(seen, `ready\ngot ${signal} #1\n`, `${mode}: ${await stderr}`);
      assert.equal(status.code, 41, `${mode}: one signal arrived and the exit code passed through`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
