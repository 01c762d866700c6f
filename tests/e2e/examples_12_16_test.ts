/**
 * Examples 12–16 against the local control plane, each in a namespace of its own: 12 as the
 * application it is (`deno run`), 13–16 through the real command line (`kopf run`, via
 * `KopfRunner`), with what each example is about checked — the embedded operator's start and
 * stop, hooks and probes at the liveness endpoint, daemons' restarts and stops, idle timers, and
 * indexes served by probes and read by a timer — plus a clean exit.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { sleep, waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OBJ = `${ROOT}examples/obj.yaml`;
const NAME = "kopf-example-1";
const MERGE = { contentType: "application/merge-patch+json" };

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);

function operator(example: string, namespace: string, ...extra: string[]): KopfRunner {
  return new KopfRunner(
    [
      "run",
      "--verbose",
      "--standalone",
      "-n",
      namespace,
      ...extra,
      `${ROOT}examples/${example}/example.ts`,
    ],
    { env: { KUBECONFIG: c.kubeconfig }, cwd: ROOT, timeout: 30 },
  );
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

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function count(output: string, text: string | RegExp): number {
  const pattern = typeof text === "string" ? new RegExp(escape(text), "g") : text;
  return output.match(new RegExp(pattern.source, "g"))?.length ?? 0;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function stopped(runner: KopfRunner): Promise<void> {
  const code = await runner.stop();
  assert.equal(code, 0, runner.output.slice(-3000));
  assert.doesNotMatch(runner.output, /Uncaught|kopf: error/);
}

async function cleanup(ns: string, names: string[] = [NAME]): Promise<void> {
  for (const name of names) {
    await c.api("PATCH", kexPath(ns, name), { metadata: { finalizers: null } }, MERGE)
      .catch(() => {});
  }
  await c.deleteNamespace(ns);
}

function pod(name: string, labels: Record<string, string> = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels },
    spec: { containers: [{ name: "main", image: "busybox", command: ["sleep", "3600"] }] },
  };
}

Deno.test("example 12-embedded: the application runs the operator, does its work, stops it", async () => {
  const ns = await c.namespace("e2e-12");
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}examples/12-embedded/example.ts`],
      env: { KUBECONFIG: c.kubeconfig, EXAMPLE_NAMESPACE: ns },
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) +
      new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text);
    for (
      const line of ["Starting the main app.", "Step 1/3.", "Step 3/3.", "Exiting the main app."]
    ) {
      assert.match(text, new RegExp(escape(line)), line);
    }
    // Each object was created and deleted with the operator handling both.
    assert.equal(count(text, "Handler 'create_fn' succeeded."), 3, text);
    assert.equal(count(text, "Handler 'delete_fn' succeeded."), 3, text);
    for (const step of [0, 1, 2]) {
      assert.equal(await get(kexPath(ns, `kopf-example-${step}`)), null, "deleted, not stuck");
    }
  } finally {
    await cleanup(ns, ["kopf-example-0", "kopf-example-1", "kopf-example-2"]);
  }
});

Deno.test("example 13-hooks: startup retried, login, per-pod tasks in probes, cleanup at exit", async () => {
  const ns = await c.namespace("e2e-13");
  const port = freePort();
  const runner = operator("13-hooks", ns, "--liveness", `http://127.0.0.1:${port}/healthz`);
  try {
    await runner.waitForOutput("Starting retried...", { timeout: 60 });
    await c.api("POST", `/api/v1/namespaces/${ns}/pods`, pod("pod-a"));
    await c.api("POST", `/api/v1/namespaces/${ns}/pods`, pod("pod-b"));
    const probes = await waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      const body = await response.json();
      return body.tasks_count === 2 && body;
    }, { timeout: 60, message: "both pod tasks in the probes (cached up to 10 s)" });
    assert.deepEqual(probes.monitored_objects, { [ns]: ["pod-a", "pod-b"] });
    await runner.waitForOutput("Served by the background task.", { timeout: 60 });
    await stopped(runner);
    const out = runner.output;
    assert.equal(count(out, "Activity 'startup_fn_simple' succeeded."), 1, out);
    assert.equal(count(out, "Activity 'startup_fn_retried' failed temporarily"), 3);
    assert.equal(count(out, "Activity 'startup_fn_retried' succeeded."), 1);
    assert.equal(count(out, "Initial authentication has been initiated."), 1);
    assert.equal(count(out, "Activity 'login_fn' succeeded."), 1);
    assert.equal(count(out, "Cleaning up..."), 1);
    assert.equal(count(out, "Activity 'cleanup_fn' succeeded."), 1);
    assert.ok(out.indexOf("Cleaning up...") > out.lastIndexOf("Served by the background task."));
    // The tasks stop at cleanup.
    assert.equal(count(out, "Serving is finished by request."), 2, out.slice(-3000));
  } finally {
    await runner.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("example 14-daemons: restarts after temporary failures, stops on deletion", async () => {
  const ns = await c.namespace("e2e-14");
  const runner = operator("14-daemons", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    await runner.waitForOutput("=> Ping from a sync daemon", { timeout: 60 });
    await runner.waitForOutput("=> Ping from an async daemon", { timeout: 60 });
    const obj = await get(kexPath(ns));
    assert.deepEqual(
      obj?.metadata.finalizers,
      ["kopf.zalando.org/KopfFinalizerMarker"],
      "background_async asks for cleanup time: a finalizer",
    );
    assert.equal(obj?.status?.message, "Failed 3 times.");
    const t0 = Date.now();
    await c.api("DELETE", kexPath(ns));
    await waitFor(async () => (await get(kexPath(ns))) === null, {
      timeout: 60,
      message: "the object to be deleted",
    });
    console.log(`deletion with two daemons took ${Date.now() - t0} ms`);
    await runner.waitForOutput("Daemon 'background_sync' has exited on request", { timeout: 30 });
    await stopped(runner);
    const out = runner.output;
    assert.equal(count(out, "Daemon 'background_sync' failed temporarily: Simulated failure."), 3);
    assert.equal(count(out, "Daemon 'background_async' failed temporarily: Simulated failure."), 3);
    assert.match(out, /=> Ping from a sync daemon: field="value", retry=3/);
    assert.match(out, /=> Ping from an async daemon: field="value"/);
    // Cancelled after its backoff (its sleep rejects), or exited at once when asked.
    assert.match(out, /Daemon 'background_async' (is cancelled|has exited)/);
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 15-timers: idle timers ping once the object is quiet, and write nothing", async () => {
  const ns = await c.namespace("e2e-15");
  const runner = operator("15-timers", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    await runner.waitForOutput('Ping from a sync timer: field="value"', { timeout: 60 });
    await runner.waitForOutput('Ping from an async timer: field="value"', { timeout: 60 });
    await c.api("PATCH", kexPath(ns), { spec: { field: "changed" } }, MERGE);
    await runner.waitForOutput('Ping from a sync timer: field="changed"', { timeout: 60 });
    await runner.waitForOutput('Ping from an async timer: field="changed"', { timeout: 60 });
    // The timers return nothing: the object is never written (its resourceVersion stays), while
    // they keep pinging. (The apiserver's counters are cluster-wide, shared with other tests.)
    const before = (await get(kexPath(ns)))?.metadata.resourceVersion;
    const pings = count(runner.output, "Ping from a sync timer");
    await sleep(5000);
    assert.ok(count(runner.output, "Ping from a sync timer") > pings, "still pinging");
    assert.equal((await get(kexPath(ns)))?.metadata.resourceVersion, before, "no writes");
    // The idle wait: after the change, the sync timer pings the new value only after 5 s quiet.
    const out = runner.output;
    const lines = out.split("\n");
    const lastOld = lines.findLastIndex((l) => l.includes('sync timer: field="value"'));
    const firstNew = lines.findIndex((l) => l.includes('sync timer: field="changed"'));
    assert.ok(lastOld < firstNew);
    await c.api("DELETE", kexPath(ns));
    await waitFor(async () => (await get(kexPath(ns))) === null, {
      timeout: 30,
      message: "the object to be deleted (timers need no finalizer)",
    });
    await stopped(runner);
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 16-indexing: indexes of pods in probes and in a timer's status", async () => {
  const ns = await c.namespace("e2e-16");
  const port = freePort();
  await c.api("POST", `/api/v1/namespaces/${ns}/pods`, pod("web-0", { app: "web" }));
  await c.api("POST", `/api/v1/namespaces/${ns}/pods`, pod("web-1", { app: "web" }));
  // Nothing runs Pods on this control plane: report one as running, as a kubelet would.
  await c.api(
    "PATCH",
    `/api/v1/namespaces/${ns}/pods/web-0/status`,
    { status: { phase: "Running" } },
    { contentType: "application/strategic-merge-patch+json" },
  );
  const runner = operator("16-indexing", ns, "--liveness", `http://127.0.0.1:${port}/healthz`);
  try {
    await c.apply(OBJ, { namespace: ns });
    const status = await waitFor(
      async () => (await get(kexPath(ns)))?.status?.["running-pods"],
      { timeout: 60, message: "status.running-pods" },
    );
    assert.deepEqual(status, [`${ns}::web-0`]);
    const probes = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
    assert.deepEqual(probes, { pod_count: 2, pod_names: ["web-0", "web-1"] });
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
    await runner.waitForOutput('Pods by label: {"[\\"app\\",\\"web\\"]":["web-0","web-1"]}', {
      timeout: 30,
    });
    await c.api(
      "PATCH",
      `/api/v1/namespaces/${ns}/pods/web-1/status`,
      { status: { phase: "Running" } },
      { contentType: "application/strategic-merge-patch+json" },
    );
    await waitFor(async () => {
      const pods = (await get(kexPath(ns)))?.status?.["running-pods"];
      return JSON.stringify(pods) === JSON.stringify([`${ns}::web-0`, `${ns}::web-1`]);
    }, { timeout: 30, message: "web-1 to be running in the timer's status" });
    await c.api("DELETE", kexPath(ns));
    await waitFor(async () => (await get(kexPath(ns))) === null, {
      timeout: 30,
      message: "the object to be deleted",
    });
    await stopped(runner);
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});
