/**
 * The sandbox `kopf run` puts the operator in, observed from inside a handler file: the real
 * command line, which becomes the scoped `deno run` (execve) or, with `KOPF_LAUNCHER=spawn`,
 * starts it as a child; real permission checks by Deno, real credentials checked by the real
 * kube-apiserver (RBAC on). Most handler files here act at import time and exit; the credential
 * tests run the operator until it has handled an object.
 *
 * The leaks of issue 12 (defect 5) are reproduced first with the grants the launcher used to
 * make — the handler file's directory, the kubeconfig file — given explicitly with
 * `--allow-read`, then shown closed under the grants it makes now.
 */
import assert from "node:assert/strict";
import { cluster, type Obj, type TestCluster } from "../support/cluster.ts";
import { OperatorProcess } from "../support/operator_process.ts";
import { sleep, waitFor } from "../support/wait.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const MOD = new URL("../../mod.ts", import.meta.url).pathname;
const EXEC_PLUGIN = new URL("../support/exec_plugin.ts", import.meta.url).pathname;

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
      // The operator gets its kubeconfig from the launcher, not by finding files.
      "env KUBECONFIG: ok: unset",
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

/** The probes a handler makes at import time, as source: each prints `what: ok: …` or the error. */
const PROBES = `
async function attempt(what: string, action: () => unknown) {
  try {
    console.log(what + ": ok: " + String(await action()).trim());
  } catch (error) {
    // A denied import is a TypeError that says why.
    const denied = (error as Error).name === "TypeError" &&
        /^Requires read access/.test((error as Error).message)
      ? " (read denied)"
      : "";
    console.log(what + ": " + (error as Error).name + denied);
  }
}
`;

Deno.test("leaks (a) symlink and (b) neighbouring secret.json: open under a directory grant, closed now", async () => {
  const c = await cluster();
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "kopf-cli-graph-" }));
  try {
    for (const sub of ["app", "shared", "outside"]) await Deno.mkdir(`${root}/${sub}`);
    await Deno.writeTextFile(`${root}/outside/secret.json`, `{"secret": "outside"}`);
    await Deno.writeTextFile(`${root}/secret.json`, `{"secret": "above"}`);
    await Deno.writeTextFile(`${root}/app/secret.json`, `{"secret": "neighbour"}`);
    await Deno.symlink("../outside/secret.json", `${root}/app/leak.json`);
    await Deno.writeTextFile(`${root}/shared/lib.ts`, `export const greet = () => "shared lib";\n`);
    await Deno.symlink("../shared/lib.ts", `${root}/app/lib.ts`);
    await Deno.writeTextFile(
      `${root}/app/handlers.ts`,
      `import { greet } from "./lib.ts";
${PROBES}
const here = (path: string) => new URL(path, import.meta.url);
const json = async (path: string) =>
  JSON.stringify((await import(here(path).href, { with: { type: "json" } })).default);
await attempt("import through a symlink", () => greet());
await attempt("own file", () => Deno.readTextFileSync(here("./handlers.ts")).length > 0);
await attempt("symlink to outside", () => Deno.readTextFileSync(here("./leak.json")));
await attempt("neighbour read", () => Deno.readTextFileSync(here("./secret.json")));
await attempt("neighbour import", () => json("./secret" + ".json"));
await attempt("above read", () => Deno.readTextFileSync(here("../secret.json")));
await attempt("above import", () => json("../secret" + ".json"));
Deno.exit(0);
`,
    );
    const handlers = `${root}/app/handlers.ts`;
    // Before: the read grant the launcher used to make for a handler file, its directory.
    const before = await kopf(["run", handlers, "-A", `--allow-read=${root}/app`], {
      KUBECONFIG: c.kubeconfig,
    });
    assert.equal(before.code, 0, before.stderr);
    assert.deepEqual(before.stdout.trim().split("\n"), [
      "import through a symlink: ok: shared lib",
      "own file: ok: true",
      `symlink to outside: ok: {"secret": "outside"}`, // (a)
      `neighbour read: ok: {"secret": "neighbour"}`, // (b)
      `neighbour import: ok: {"secret":"neighbour"}`, // (b)
      "above read: NotCapable",
      "above import: TypeError (read denied)",
    ]);
    // Now: the module graph, file by file.
    for (const mode of MODES) {
      const after = await kopf(["run", handlers, "-A", "-v"], {
        KUBECONFIG: c.kubeconfig,
        KOPF_LAUNCHER: mode,
      });
      assert.equal(after.code, 0, after.stderr);
      assert.deepEqual(after.stdout.trim().split("\n"), [
        "import through a symlink: ok: shared lib",
        "own file: ok: true",
        "symlink to outside: NotCapable",
        "neighbour read: NotCapable",
        "neighbour import: TypeError (read denied)",
        "above read: NotCapable",
        "above import: TypeError (read denied)",
      ], `${mode}: ${after.stderr}`);
      // Exactly these grants: the handler file, the symlink it imports and the symlink's target.
      const reads = after.stderr.match(/ --allow-read=(\S+) /)?.[1].split(",");
      assert.deepEqual(reads, [`${handlers}`, `${root}/app/lib.ts`, `${root}/shared/lib.ts`]);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** A kubeconfig as JSON (which is YAML): one cluster, the given users and contexts. */
function kubeconfigOf(
  c: TestCluster,
  current: string,
  users: Record<string, Obj>,
  cluster: Obj = { "certificate-authority": c.caFile },
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "local", cluster: { server: c.server, ...cluster } }],
    users: Object.entries(users).map(([name, user]) => ({ name, user })),
    contexts: Object.keys(users).map((name) => ({
      name,
      context: { cluster: "local", user: name },
    })),
    "current-context": current,
  });
}

/** A handler file that probes `probes` at import time and then handles kopfexamples. */
function operatorHandlers(probes: string): string {
  return `import * as kopf from ${JSON.stringify(MOD)};
${PROBES}
${probes}
kopf.on.create("kopfexamples", function create_fn({ name, logger }) {
  logger.info("handling " + name);
  return { handled: name };
});
`;
}

function startOperator(dir: string, ns: string, env: Record<string, string>, args: string[] = []) {
  return OperatorProcess.start({
    command: Deno.execPath(),
    args: [
      "run",
      "-A",
      CLI,
      "run",
      `${dir}/handlers.ts`,
      "-n",
      ns,
      "--standalone",
      "--log-format=plain",
      ...args,
    ],
    env,
  });
}

/** Creates an object and waits until the operator has handled it; asserts one handler call. */
async function handleOne(c: TestCluster, op: OperatorProcess, ns: string, name: string) {
  await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`, {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name },
    spec: {},
  });
  const result = await waitFor(
    async () =>
      (await c.api("GET", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/${name}`)).status
        ?.create_fn,
    { timeout: 60, message: `the handler's result on ${name}` },
  ).catch((e) => {
    throw new Error(`${e.message}\n${op.output()}`);
  });
  assert.deepEqual(result, { handled: name });
  const calls = op.output().split("\n").filter((line) =>
    line === `[${ns}/${name}] handling ${name}`
  );
  assert.equal(calls.length, 1, op.output());
}

function probeLines(op: OperatorProcess): string[] {
  return op.output().split("\n").filter((line) => line.startsWith("probe "));
}

async function serviceAccountToken(c: TestCluster, ns: string, name: string): Promise<string> {
  const request = await c.api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds: 3600 },
  });
  return request.status.token;
}

Deno.test({
  name: "leak (c) another user's credentials: usable under a kubeconfig grant, out of reach now",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-creds");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-creds-" });
    const sa = `kopf-${ns}`;
    try {
      // The operator's own user: a service account with the least RBAC `kopf rbac` prints.
      await Deno.writeTextFile(`${dir}/handlers.ts`, operatorHandlers(""));
      const rbac = await kopf(["rbac", `${dir}/handlers.ts`, "-n", ns, "--name", sa], {
        KUBECONFIG: c.kubeconfig,
      });
      assert.equal(rbac.code, 0, rbac.stderr);
      await c.apply(rbac.stdout);
      const kubeconfig = `${dir}/kubeconfig`;
      await Deno.writeTextFile(
        kubeconfig,
        kubeconfigOf(c, "operator", {
          operator: { token: await serviceAccountToken(c, ns, sa) },
          // Not the operator's: a cluster admin's client certificate, inline as kubeconfigs have it.
          "admin-cert": {
            "client-certificate-data": btoa(await Deno.readTextFile(c.certFile)),
            "client-key-data": btoa(await Deno.readTextFile(c.keyFile)),
          },
        }, { "certificate-authority-data": btoa(c.caPem) }),
      );
      // What a handler would do with a readable kubeconfig: take the other user's certificate.
      await Deno.writeTextFile(
        `${dir}/handlers.ts`,
        operatorHandlers(`
async function useAdminCertificate(): Promise<string> {
  const doc = JSON.parse(Deno.readTextFileSync(${JSON.stringify(kubeconfig)}));
  const admin = doc.users.find((u: { name: string }) => u.name === "admin-cert").user;
  const client = Deno.createHttpClient({
    caCerts: [atob(doc.clusters[0].cluster["certificate-authority-data"])],
    cert: atob(admin["client-certificate-data"]),
    key: atob(admin["client-key-data"]),
  });
  const response = await fetch(${
          JSON.stringify(c.server)
        } + "/api/v1/namespaces/kube-system/secrets", { client });
  await response.body?.cancel();
  return "HTTP " + response.status;
}
async function useOwnCredentials(): Promise<string> {
  const doc = JSON.parse(kopf.sandboxKubeconfig()!);
  const client = Deno.createHttpClient({
    caCerts: [atob(doc.clusters[0].cluster["certificate-authority-data"])],
  });
  const response = await fetch(${
          JSON.stringify(c.server)
        } + "/api/v1/namespaces/kube-system/secrets", {
    client,
    headers: { Authorization: "Bearer " + doc.users[0].user.token },
  });
  await response.body?.cancel();
  return doc.users.map((u: { name: string }) => u.name).join(",") + ": HTTP " + response.status;
}
await attempt("probe kube-system secrets as admin-cert", useAdminCertificate);
await attempt("probe kube-system secrets as kopf.sandboxKubeconfig()", useOwnCredentials);
await attempt("probe env KUBECONFIG", () => Deno.env.get("KUBECONFIG") ?? "unset");
await attempt("probe env KOPF_SANDBOX_KUBECONFIG", () => Deno.env.get("KOPF_SANDBOX_KUBECONFIG") ?? "unset");
`),
      );

      // Before: the grants the launcher used to make for a kubeconfig (the file, $KUBECONFIG).
      const before = startOperator(dir, ns, { KUBECONFIG: kubeconfig }, [
        `--allow-read=${kubeconfig}`,
        "--allow-env=KUBECONFIG",
      ]);
      try {
        await before.waitForLog(/^probe env KOPF_SANDBOX_KUBECONFIG: /, 60);
        assert.deepEqual(probeLines(before), [
          "probe kube-system secrets as admin-cert: ok: HTTP 200",
          // What handlers are given for clients of their own: the operator's user, and no other.
          "probe kube-system secrets as kopf.sandboxKubeconfig(): ok: operator: HTTP 403",
          `probe env KUBECONFIG: ok: ${kubeconfig}`,
          "probe env KOPF_SANDBOX_KUBECONFIG: ok: unset",
        ]);
      } finally {
        assert.equal((await before.stop()).code, 0, before.output());
      }

      // Now: the same handler cannot reach the kubeconfig, and the operator still works with
      // the one user it was given.
      const op = startOperator(dir, ns, { KUBECONFIG: kubeconfig });
      try {
        await op.waitForLog(/^probe env KOPF_SANDBOX_KUBECONFIG: /, 60);
        assert.deepEqual(probeLines(op), [
          "probe kube-system secrets as admin-cert: NotCapable",
          "probe kube-system secrets as kopf.sandboxKubeconfig(): ok: operator: HTTP 403",
          "probe env KUBECONFIG: ok: unset",
          "probe env KOPF_SANDBOX_KUBECONFIG: ok: unset",
        ]);
        // Only writes are counted: the operator's start-up makes none.
        const m0 = await c.metrics();
        await handleOne(c, op, ns, "handled");
        await sleep(2000); // writes after the result is visible would still count: settle
        const delta = (await c.metrics()).since(m0);
        assert.equal(
          delta.count({ verb: "PATCH", resource: "kopfexamples" }),
          2,
          `one create handler returning a value: 2 writes\n${delta}`,
        );
        assert.equal((await op.stop()).code, 0, op.output());
      } finally {
        await op.stop();
      }
    } finally {
      for (const kind of ["clusterroles", "clusterrolebindings"]) {
        await c.api("DELETE", `/apis/rbac.authorization.k8s.io/v1/${kind}/${sa}`).catch(() => {});
      }
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the current context's credentials work: client certificate, token file, exec plugin",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-ctx-" });
    try {
      await Deno.writeTextFile(`${dir}/token`, c.token);
      const state = `${dir}/plugin-state`;
      await Deno.mkdir(state);
      await Deno.writeTextFile(`${state}/tokens`, `${c.token}\n`);
      // The repository's exec plugin, behind a script: the operator may run this one program.
      const plugin = `${dir}/kube-plugin`;
      await Deno.writeTextFile(
        plugin,
        `#!/bin/sh\nexec "${Deno.execPath()}" run --allow-read=${state} --allow-write=${state} ` +
          `--allow-env=KUBERNETES_EXEC_INFO "${EXEC_PLUGIN}" "${state}"\n`,
      );
      await Deno.chmod(plugin, 0o755);
      const other = { token: "the-other-users-token" };
      const cases: { kind: string; user: Obj; probes: string[]; env?: Record<string, string> }[] = [
        {
          kind: "client certificate",
          user: { "client-certificate": c.certFile, "client-key": c.keyFile },
          probes: [
            "probe CA file: NotCapable",
            "probe certificate file: NotCapable",
            "probe key file: NotCapable",
          ],
        },
        {
          kind: "token file",
          user: { tokenFile: `${dir}/token` },
          // It rotates, so the client re-reads it: the one credential file the operator reads.
          probes: ["probe token file: ok: " + c.token],
          // The spawned child gets the kubeconfig through its environment, too.
          env: { KOPF_LAUNCHER: "spawn" },
        },
        {
          kind: "exec plugin",
          user: {
            exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin },
          },
          probes: ["probe plugin state: NotCapable"],
        },
      ];
      for (const { kind, user, probes, env } of cases) {
        const ns = await c.namespace("cli-ctx");
        const kubeconfig = `${dir}/kubeconfig-${ns}`;
        await Deno.writeTextFile(kubeconfig, kubeconfigOf(c, "mine", { mine: user, other }));
        await Deno.writeTextFile(
          `${dir}/handlers.ts`,
          operatorHandlers(`
await attempt("probe kubeconfig", () => Deno.readTextFileSync(${JSON.stringify(kubeconfig)}));
${
            {
              "client certificate": `
await attempt("probe CA file", () => Deno.readTextFileSync(${JSON.stringify(c.caFile)}));
await attempt("probe certificate file", () => Deno.readTextFileSync(${JSON.stringify(c.certFile)}));
await attempt("probe key file", () => Deno.readTextFileSync(${JSON.stringify(c.keyFile)}));`,
              "token file": `
await attempt("probe token file", () => Deno.readTextFileSync(${JSON.stringify(`${dir}/token`)}));`,
              "exec plugin": `
await attempt("probe plugin state", () => Deno.readTextFileSync(${
                JSON.stringify(`${state}/tokens`)
              }));`,
            }[kind]
          }
await attempt("probe done", () => "");
`),
        );
        const op = startOperator(dir, ns, { KUBECONFIG: kubeconfig, ...env }, ["-v"]);
        try {
          await op.waitForLog(/^probe done: /, 60);
          assert.deepEqual(probeLines(op), [
            "probe kubeconfig: NotCapable",
            ...probes,
            "probe done: ok: ",
          ], kind);
          await handleOne(c, op, ns, "handled");
          const launched = op.output().split("\n").find((l) => l.startsWith("kopf: KOPF_SANDBOX"));
          assert.ok(launched, op.output());
          // The other user's token goes nowhere near the operator's command line.
          assert.ok(!launched.includes(other.token), launched);
          assert.equal((await op.stop()).code, 0, `${kind}: ${op.output()}`);
        } finally {
          await op.stop();
          await c.deleteNamespace(ns);
        }
        if (kind === "exec plugin") {
          // Run once for the operator's first request; its token then served every request.
          const runs = (await Deno.readTextFile(`${state}/runs`)).trim().split("\n");
          assert.equal(runs.length, 1);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
