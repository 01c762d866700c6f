/**
 * A real operator through `kopf run` against the local control plane, in the scoped sandbox:
 * `kopf run` becomes the operator process (execve; one process, signals deliverable, no stray
 * descriptors), handlers work, a handler's fetch to another loopback port is denied (NotCapable)
 * while the operator keeps working, a host the user granted works, an exec credential plugin
 * runs, and SIGTERM or SIGINT stops the operator with exit code 0. Without `--allow-ffi` (or with
 * `KOPF_LAUNCHER=spawn`) the launcher runs the operator as a child instead, and that works too.
 */
import assert from "node:assert/strict";
import { cluster, type Obj } from "../support/cluster.ts";
import { OperatorProcess } from "../support/operator_process.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
const MOD = `${ROOT}mod.ts`;

function serve(body: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(body));
}

function handlersSource(deniedPort: number, grantedPort: number): string {
  return `
import * as kopf from ${JSON.stringify(MOD)};

async function probe(url: string): Promise<string> {
  try {
    return await (await fetch(url)).text();
  } catch (error) {
    return (error as Error).name;
  }
}

kopf.on.create("kopfexamples", async function create_fn({ logger }) {
  const other = await probe("http://127.0.0.1:${deniedPort}/");
  const granted = await probe("http://127.0.0.1:${grantedPort}/");
  logger.info("probe other=" + other + " granted=" + granted);
  return { other, granted };
});
`;
}

async function createExample(c: Awaited<ReturnType<typeof cluster>>, ns: string, name: string) {
  await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`, {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name },
    spec: { field: "value" },
  });
}

/** Pids of the live processes whose parent is `pid`. */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === pid) out.push(Number(entry.name));
  }
  return out;
}

async function cmdlineOf(pid: number): Promise<string[]> {
  return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
}

/** The signals (by name) of a `/proc/<pid>/status` mask line such as `SigBlk`. */
async function signalMask(pid: number, line: "SigBlk" | "SigIgn" | "SigCgt"): Promise<string[]> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const mask = BigInt(`0x${status.match(new RegExp(`^${line}:\\s*([0-9a-f]+)`, "m"))![1]}`);
  const names: Record<number, string> = { 2: "SIGINT", 15: "SIGTERM" };
  return Object.entries(names).filter(([n]) => mask & (1n << BigInt(Number(n) - 1))).map(
    ([, name]) => name,
  );
}

const DENO_DIR: string = JSON.parse(
  new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" })
      .output()).stdout,
  ),
).denoDir;

/** What the descriptors of this process that any child inherits (not close-on-exec) point to. */
async function inheritedByChildren(): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const entry of Deno.readDir("/proc/self/fd")) {
    const info = await Deno.readTextFile(`/proc/self/fdinfo/${entry.name}`).catch(() => "");
    const flags = parseInt(info.match(/^flags:\s*([0-7]+)/m)?.[1] ?? "2000000", 8);
    if ((flags & 0o2000000) === 0) {
      out.add(await Deno.readLink(`/proc/self/fd/${entry.name}`).catch(() => ""));
    }
  }
  return out;
}

/**
 * The descriptors of `pid` that a Deno process does not have of its own: anything but its
 * stdio (and duplicates of it), /dev/null, event-loop inodes, sockets, Deno's cache files, and
 * what this test process hands every child.
 */
async function strayDescriptors(pid: number): Promise<string[]> {
  const targets = new Map<string, string>();
  for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
    const target = await Deno.readLink(`/proc/${pid}/fd/${entry.name}`).catch(() => "");
    if (target) targets.set(entry.name, target);
  }
  const expected = await inheritedByChildren();
  for (const fd of ["0", "1", "2"]) expected.add(targets.get(fd) ?? "");
  return [...targets].filter(([, target]) =>
    !expected.has(target) && target !== "/dev/null" && !/^(anon_inode:|socket:)/.test(target) &&
    !target.startsWith(`${DENO_DIR}/`)
  ).map(([fd, target]) => `${fd} -> ${target}`);
}

async function statusOf(
  c: Awaited<ReturnType<typeof cluster>>,
  ns: string,
  name: string,
): Promise<Obj | undefined> {
  const obj = await c.api("GET", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/${name}`);
  return obj.status?.create_fn;
}

Deno.test({
  name: "kopf run becomes the sandboxed operator: one process, other hosts denied, granted " +
    "hosts reachable, handlers keep working, SIGTERM stops it",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-sandbox");
    const denied = serve("denied-server");
    const granted = serve("granted-server");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-op-" });
    await Deno.writeTextFile(
      `${dir}/handlers.ts`,
      handlersSource(denied.addr.port, granted.addr.port),
    );
    const op = OperatorProcess.start({
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
        `--allow-net=127.0.0.1:${granted.addr.port}`,
      ],
      env: { KUBECONFIG: c.kubeconfig },
    });
    try {
      await createExample(c, ns, "first");
      const first = await waitFor(() => statusOf(c, ns, "first"), {
        timeout: 60,
        message: `status.create_fn of "first"; operator output:\n${op.output()}`,
      }).catch((e) => {
        throw new Error(`${e.message}\n${op.output()}`);
      });
      assert.deepEqual(first, { other: "NotCapable", granted: "granted-server" });
      await op.waitForLog(/\[.*\/first\] probe other=NotCapable granted=granted-server/);
      // The process started as `deno run cli.ts` is now the scoped operator, with nothing beside it.
      const cmdline = await cmdlineOf(op.pid);
      assert.ok(cmdline.some((word) => word.endsWith("/src/cli/child.ts")), cmdline.join(" "));
      assert.ok(cmdline.includes("--no-prompt"), cmdline.join(" "));
      assert.ok(!cmdline.includes(CLI), cmdline.join(" "));
      assert.deepEqual(await childrenOf(op.pid), []);
      assert.deepEqual(await signalMask(op.pid, "SigBlk"), []);
      assert.deepEqual(await signalMask(op.pid, "SigCgt"), ["SIGINT", "SIGTERM"]);
      assert.deepEqual(await strayDescriptors(op.pid), []);
      // The denied fetch did not break the operator: the next object is handled too.
      await createExample(c, ns, "second");
      const second = await waitFor(() => statusOf(c, ns, "second"), { timeout: 60 });
      assert.deepEqual(second, { other: "NotCapable", granted: "granted-server" });
      const status = await op.stop();
      assert.equal(status.code, 0, op.output());
      assert.match(op.output(), /Signal SIGTERM is received\. Operator is stopping\./);
    } finally {
      await op.stop(); // no-op when already stopped
      await denied.shutdown();
      await granted.shutdown();
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "SIGINT and SIGTERM blocked by whoever started kopf run are unblocked in the operator",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-sigmask");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-sigmask-" });
    await Deno.writeTextFile(`${dir}/handlers.ts`, handlersSource(1, 1));
    // A parent that blocks both signals and execs `kopf run` (the mask survives execve, and Deno
    // does not reset it): the operator must unblock them or it cannot be stopped gracefully.
    const op = OperatorProcess.start({
      command: "python3",
      args: [
        "-c",
        "import os, signal, sys\n" +
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n" +
        "os.execv(sys.argv[1], sys.argv[1:])",
        Deno.execPath(),
        "run",
        "-A",
        CLI,
        "run",
        `${dir}/handlers.ts`,
        "-n",
        ns,
        "--standalone",
      ],
      env: { KUBECONFIG: c.kubeconfig },
    });
    try {
      await createExample(c, ns, "masked");
      await waitFor(() => statusOf(c, ns, "masked"), {
        timeout: 60,
        message: "the handler's result",
      }).catch((e) => {
        throw new Error(`${e.message}\n${op.output()}`);
      });
      assert.ok((await cmdlineOf(op.pid)).some((word) => word.endsWith("/src/cli/child.ts")));
      assert.deepEqual(await signalMask(op.pid, "SigBlk"), []);
      op.kill("SIGINT");
      let exited: Deno.CommandStatus | undefined;
      op.status.then((status) => exited = status);
      await waitFor(() => exited, { timeout: 60, message: "the operator to stop after SIGINT" })
        .catch((e) => {
          throw new Error(`${e.message}\n${op.output()}`);
        });
      const status = await op.stop(); // drains the output
      assert.equal(status.code, 0, op.output());
      assert.match(op.output(), /Signal SIGINT is received\. Operator is stopping\./);
    } finally {
      await op.stop();
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "without --allow-ffi, kopf run falls back to a child process, which works the same",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-noffi");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-noffi-" });
    const denied = serve("denied-server");
    await Deno.writeTextFile(
      `${dir}/handlers.ts`,
      handlersSource(denied.addr.port, denied.addr.port),
    );
    const op = OperatorProcess.start({
      command: Deno.execPath(),
      args: [
        "run",
        "--allow-all",
        "--deny-ffi",
        CLI,
        "run",
        `${dir}/handlers.ts`,
        "-n",
        ns,
        "--standalone",
        "-d",
      ],
      env: { KUBECONFIG: c.kubeconfig },
    });
    try {
      await op.waitForLog(/^kopf: the operator runs in a child process: no --allow-ffi$/, 30);
      await createExample(c, ns, "spawned");
      assert.deepEqual(
        await waitFor(() => statusOf(c, ns, "spawned"), {
          timeout: 60,
          message: "the handler's result",
        }).catch((e) => {
          throw new Error(`${e.message}\n${op.output()}`);
        }),
        { other: "NotCapable", granted: "NotCapable" },
      );
      // The launcher stayed, and the operator is its one child.
      assert.ok((await cmdlineOf(op.pid)).includes(CLI));
      const children = await childrenOf(op.pid);
      assert.equal(children.length, 1, String(children));
      assert.ok((await cmdlineOf(children[0])).some((w) => w.endsWith("/src/cli/child.ts")));
      assert.equal((await op.stop()).code, 0, op.output());
      assert.match(op.output(), /Signal SIGTERM is received\. Operator is stopping\./);
    } finally {
      await op.stop();
      await denied.shutdown();
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "an exec credential plugin runs under --allow-run of exactly that program",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-exec");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-exec-" });
    const plugin = `${dir}/bin/token-plugin`;
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(
      plugin,
      `#!/bin/sh
echo ran >> ${dir}/plugin-runs
cat <<JSON
{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${c.token}"}}
JSON
`,
    );
    await Deno.chmod(plugin, 0o755);
    await Deno.writeTextFile(
      `${dir}/kubeconfig`,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${c.server}", certificate-authority: "${c.caFile}"}}]
users:
- name: u
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: token-plugin, interactiveMode: Never}
contexts: [{name: k, context: {cluster: c, user: u}}]
current-context: k
`,
    );
    await Deno.writeTextFile(`${dir}/handlers.ts`, handlersSource(1, 1));
    const op = OperatorProcess.start({
      command: Deno.execPath(),
      args: ["run", "-A", CLI, "run", `${dir}/handlers.ts`, "-n", ns, "--standalone", "-v"],
      env: { KUBECONFIG: `${dir}/kubeconfig`, PATH: `${dir}/bin:${Deno.env.get("PATH")}` },
    });
    try {
      const launched = await op.waitForLog(/^kopf: .* run /, 30);
      assert.ok(launched.includes(`--allow-run=${plugin} `), launched);
      await createExample(c, ns, "with-exec");
      await waitFor(() => statusOf(c, ns, "with-exec"), {
        timeout: 60,
        message: "the handler's result",
      }).catch((e) => {
        throw new Error(`${e.message}\n${op.output()}`);
      });
      assert.match(await Deno.readTextFile(`${dir}/plugin-runs`), /^ran\n/);
      assert.equal((await op.stop()).code, 0, op.output());
    } finally {
      await op.stop();
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the liveness endpoint is listened on inside the sandbox (its address is granted)",
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-liveness");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-liveness-" });
    await Deno.writeTextFile(`${dir}/handlers.ts`, handlersSource(1, 1));
    // A free port: bind, note it, release it.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const op = OperatorProcess.start({
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
        "-v",
        `--liveness=http://127.0.0.1:${port}/healthz`,
      ],
      env: { KUBECONFIG: c.kubeconfig },
    });
    try {
      const launched = await op.waitForLog(/^kopf: .* run /, 30);
      assert.ok(
        launched.includes(`--allow-net=${new URL(c.server).host},127.0.0.1:${port} `),
        launched,
      );
      const response = await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        await r.body?.cancel();
        return r.status === 200 ? r : undefined;
      }, { timeout: 60, message: "the liveness endpoint" }).catch((e) => {
        throw new Error(`${e.message}\n${op.output()}`);
      });
      assert.equal(response.status, 200);
      assert.equal((await op.stop()).code, 0, op.output());
    } finally {
      await op.stop();
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a crash inside the operator: exit 1, the cause on one line, the trace only with -v", async () => {
  const c = await cluster();
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-crash-" });
  try {
    await Deno.writeTextFile(
      `${dir}/handlers.ts`,
      `import * as kopf from ${JSON.stringify(MOD)};
kopf.on.startup(async function check_license() { throw new kopf.PermanentError("no license"); });
kopf.on.create("kopfexamples", async function create_fn() {});
`,
    );
    const run = async (...extra: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "run", `${dir}/handlers.ts`, "-A", "--standalone", ...extra],
        env: { KUBECONFIG: c.kubeconfig },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const plain = await run();
    assert.equal(plain.code, 1, plain.stderr);
    const errors = plain.stderr.split("\n").filter((l) => l.startsWith("kopf: error:"));
    assert.deepEqual(errors, [
      "kopf: error: the operator failed: Activity 'startup' failed: check_license: no license",
    ]);
    assert.doesNotMatch(plain.stderr, /\n\s+at /, "no trace without -v");
    const verbose = await run("-v");
    assert.equal(verbose.code, 1, verbose.stderr);
    assert.match(verbose.stderr, /\[DEBUG +\] The operator failed: \w*Error: .*no license\n\s+at /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KOPF_LAUNCHER=spawn: when the launcher is killed (SIGKILL), the operator stops too", async () => {
  const c = await cluster();
  const ns = await c.namespace("cli-orphan");
  const dir = await Deno.makeTempDir({ prefix: "kopf-cli-orphan-" });
  await Deno.writeTextFile(`${dir}/handlers.ts`, handlersSource(1, 1));
  const op = OperatorProcess.start({
    command: Deno.execPath(),
    args: ["run", "-A", CLI, "run", `${dir}/handlers.ts`, "-n", ns, "--standalone"],
    // The two-process mode, asked for: the launcher stays, and its child watches it.
    env: { KUBECONFIG: c.kubeconfig, KOPF_LAUNCHER: "spawn" },
  });
  let childPid: number | undefined;
  try {
    // The operator process is the one whose command line names this test's handler directory.
    childPid = await waitFor(async () => {
      for await (const entry of Deno.readDir("/proc")) {
        if (!/^\d+$/.test(entry.name) || Number(entry.name) === op.pid) continue;
        const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
        if (cmdline.includes("src/cli/child.ts") && cmdline.includes(dir)) {
          return Number(entry.name);
        }
      }
      return undefined;
    }, { timeout: 30, message: "the operator process" });
    op.kill("SIGKILL");
    await op.status;
    await waitFor(async () => {
      const stat = await Deno.readTextFile(`/proc/${childPid}/stat`).catch(() => "");
      // Gone, or a zombie waiting for its (dead) parent's reaper.
      return stat === "" || / Z /.test(stat);
    }, { timeout: 30, message: `the orphaned operator process ${childPid} to stop` });
    childPid = undefined;
  } finally {
    if (childPid) {
      try {
        Deno.kill(childPid, "SIGKILL"); // the test failed: do not leave the orphan running
      } catch { /* gone */ }
    }
    await op.stop();
    await c.deleteNamespace(ns);
    await Deno.remove(dir, { recursive: true });
  }
});

// In a pod, the service account is mounted at /var/run/secrets/kubernetes.io/serviceaccount. A
// private mount namespace (unshare -m, as root) gives the operator such a directory without
// touching the machine's own /run.
const canUnshare = Deno.uid() === 0 &&
  (await new Deno.Command("unshare", { args: ["-m", "true"], stderr: "null" }).output()
    .then((o) => o.success, () => false));
if (!canUnshare) {
  console.error("cli_operator_test: SKIPPED in-cluster test: needs root and unshare -m");
}

Deno.test({
  name: "in-cluster: the service-account directory and KUBERNETES_SERVICE_* are all it gets",
  ignore: !canUnshare,
  async fn() {
    const c = await cluster();
    await c.applyCrd(c.kopfExampleCrd);
    const ns = await c.namespace("cli-incluster");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-incluster-" });
    await Deno.writeTextFile(`${dir}/handlers.ts`, handlersSource(1, 1));
    const sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    await Deno.writeTextFile(
      `${dir}/pod.sh`,
      `set -e
mount -t tmpfs tmpfs /run
mkdir -p ${sa}
cp ${c.caFile} ${sa}/ca.crt
printf %s ${c.token} > ${sa}/token
printf %s ${ns} > ${sa}/namespace
exec "$@"
`,
    );
    const url = new URL(c.server);
    const op = OperatorProcess.start({
      command: "unshare",
      args: [
        "-m",
        "--propagation",
        "private",
        "sh",
        `${dir}/pod.sh`,
        Deno.execPath(),
        "run",
        "-A",
        CLI,
        "run",
        `${dir}/handlers.ts`,
        "-n",
        ns,
        "--standalone",
        "-v",
      ],
      env: {
        KUBECONFIG: "",
        HOME: "/nonexistent",
        KUBERNETES_SERVICE_HOST: url.hostname,
        KUBERNETES_SERVICE_PORT: url.port,
      },
    });
    try {
      const launched = await op.waitForLog(/^kopf: .* run /, 30);
      assert.ok(
        launched.includes(` --allow-read=${sa},${dir}/handlers.ts `) &&
          launched.includes(
            ` --allow-env=KUBERNETES_SERVICE_HOST,KUBERNETES_SERVICE_PORT,POD_ID,POD_NAME,HOSTNAME --ignore-env `,
          ) && launched.includes(` --allow-net=${url.host} `),
        launched,
      );
      await createExample(c, ns, "in-pod");
      await waitFor(() => statusOf(c, ns, "in-pod"), {
        timeout: 60,
        message: "the handler's result",
      }).catch((e) => {
        throw new Error(`${e.message}\n${op.output()}`);
      });
      assert.equal((await op.stop()).code, 0, op.output());
    } finally {
      await op.stop();
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
