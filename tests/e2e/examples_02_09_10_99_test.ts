/**
 * Examples 02, 09, 10 and 99 run through the real command line (`kopf run`, via `KopfRunner`)
 * against the local control plane, each in a namespace of its own, with what Kopf's own e2e suite
 * checks (log lines, each handler succeeding once, no permanent failures, a clean exit) plus what
 * each example is about: children created and garbage-collected, results in status, finalizers
 * gone, Pods killed or spared, Events posted.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj, type TestCluster } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OBJ = `${ROOT}examples/obj.yaml`;
const NAME = "kopf-example-1";

function operator(c: TestCluster, example: string, namespace: string): KopfRunner {
  return new KopfRunner(
    ["run", "--verbose", "--standalone", "-n", namespace, `${ROOT}examples/${example}/example.ts`],
    { env: { KUBECONFIG: c.kubeconfig }, cwd: ROOT, timeout: 30 },
  );
}

const kexPath = (ns: string, name = NAME) =>
  `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/${name}`;
const podsPath = (ns: string) => `/api/v1/namespaces/${ns}/pods`;

async function exists(c: TestCluster, path: string): Promise<boolean> {
  try {
    await c.api("GET", path);
    return true;
  } catch (error) {
    if ((error as { status?: number }).status === 404) return false;
    throw error;
  }
}

async function waitGone(c: TestCluster, path: string, what: string): Promise<void> {
  await waitFor(async () => !(await exists(c, path)), {
    timeout: 60,
    message: `${what} to be gone`,
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The handler ids that succeeded, with how often (Kopf's e2e counts them the same way). */
function successes(output: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, id] of output.matchAll(/Handler '(.+?)' succeeded\./g)) {
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

interface KopfChecks {
  namespace: string;
  name?: string;
  /** Has a non-optional delete handler (so a finalizer). */
  mandatoryDelete: boolean;
  /** Has creation handlers. */
  create: boolean;
  /** Exactly these handlers succeeded, this often (others are not counted). */
  successCounts: Record<string, number>;
}

/** What Kopf's `tests/e2e/test_examples.py` asserts about every example's log. */
function assertKopfLog(output: string, checks: KopfChecks): void {
  const ref = `\\[${escape(checks.namespace)}/${escape(checks.name ?? NAME)}\\]`;
  const has = (text: string) => assert.match(output, new RegExp(`${ref} ${escape(text)}`), text);
  if (checks.mandatoryDelete) has("Adding the finalizer");
  else assert.doesNotMatch(output, new RegExp(`${ref} Adding the finalizer`));
  if (checks.create) has("Creation is in progress:");
  if (checks.mandatoryDelete) has("Deletion is in progress:");
  has("Deleted, really deleted");
  const counts = successes(output);
  for (const [id, count] of Object.entries(checks.successCounts)) {
    assert.equal(counts[id] ?? 0, count, `Handler '${id}' succeeded ${counts[id] ?? 0} times`);
  }
  assert.doesNotMatch(output, /failed permanently|failed with an exception\. Will stop\./);
  assert.doesNotMatch(output, /Uncaught|kopf: error/);
}

Deno.test("example 02-children: a child Pod per object, its uid in status, garbage-collected with the parent", async () => {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const ns = await c.namespace("e2e-02");
  const runner = operator(c, "02-children", ns);
  try {
    const [parent] = await c.apply(OBJ, { namespace: ns });
    const status = await waitFor(
      async () => (await c.api("GET", kexPath(ns))).status?.create_fn,
      { timeout: 60, message: "status.create_fn" },
    );
    assert.equal(status.children.length, 1);
    const pods: Obj[] = (await c.api("GET", podsPath(ns))).items;
    const child = pods.find((p) => p.metadata.uid === status.children[0]);
    assert.ok(child, `no Pod with the uid ${status.children[0]} among ${pods.length}`);
    assert.deepEqual(
      child.metadata.ownerReferences.map((r: Obj) => [r.kind, r.name, r.uid, r.controller]),
      [["KopfExample", NAME, parent.metadata.uid, true]],
    );
    assert.equal(child.metadata.generateName, `${NAME}-`);
    assert.equal(child.metadata.labels.somelabel, "somevalue", "the parent's labels");
    const container = child.spec.containers[0];
    assert.deepEqual(container.env, [{ name: "FIELD", value: "value" }], "spec.field");
    assert.match(container.args[0], /sleep 1m/, "spec.duration");
    await runner.waitForOutput(`Pod child is created: ${child.metadata.name}`, { timeout: 30 });

    await c.api("DELETE", kexPath(ns));
    await waitGone(c, kexPath(ns), "the parent");
    // The control plane's garbage collector deletes the child of a deleted owner.
    await waitGone(c, `${podsPath(ns)}/${child.metadata.name}`, "the child Pod");
    await runner.waitForOutput("Deleted, really deleted", { timeout: 60 });
  } finally {
    await runner.stop();
  }
  assert.equal(runner.exitCode, 0, runner.output);
  assertKopfLog(runner.output, {
    namespace: ns,
    create: true,
    mandatoryDelete: false,
    successCounts: { create_fn: 1 },
  });
  await c.deleteNamespace(ns);
});

Deno.test("example 09-testing: its own test, written with KopfRunner, passes", async () => {
  const c = await cluster();
  const ns = await c.namespace("e2e-09");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", `${ROOT}examples/09-testing/test_example_09.ts`],
    env: { KUBECONFIG: c.kubeconfig, EXAMPLE_NAMESPACE: ns, NO_COLOR: "1" },
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /ok \| 1 passed \| 0 failed/, text);
  // Its object is gone: the test deleted it and the operator let it go.
  assert.equal(await exists(c, kexPath(ns)), false);
  await c.deleteNamespace(ns);
});

Deno.test("example 10-builtins: Pods are killed on time, spared when deleted first, and resumed after a restart", async () => {
  const c = await cluster();
  const ns = await c.namespace("e2e-10");
  const pod = (name: string, killAfter?: number): Obj => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      annotations: killAfter === undefined ? {} : { "example.kopf.dev/kill-after": `${killAfter}` },
    },
    spec: { containers: [{ name: "main", image: "busybox", command: ["sleep", "3600"] }] },
  });
  const runner = operator(c, "10-builtins", ns);
  try {
    // Killed on time by the operator itself.
    await c.api("POST", podsPath(ns), pod("doomed", 1));
    await runner.waitForOutput(`[${ns}/doomed] === Pod killing happens in 1s.`, { timeout: 60 });
    await runner.waitForOutput(`[${ns}/doomed] === Pod killing happens NOW!`, { timeout: 30 });
    await waitGone(c, `${podsPath(ns)}/doomed`, "the killed Pod");

    // The default 30 s: the Pod carries our finalizer meanwhile.
    await c.api("POST", podsPath(ns), pod("spared"));
    await runner.waitForOutput(`[${ns}/spared] === Pod killing happens in 30s.`, { timeout: 60 });
    await waitFor(
      async () =>
        (await c.api("GET", `${podsPath(ns)}/spared`)).metadata.finalizers?.includes(
          "kopf.zalando.org/KopfFinalizerMarker",
        ),
      { timeout: 30, message: "our finalizer on the Pod" },
    );

    // A restarted operator resumes the Pod it had handled: a new killer starts.
    assert.equal(await runner.stop(), 0, runner.output);
    runner.start();
    await runner.waitForOutput(`[${ns}/spared] === Pod killing happens in 30s.`, { timeout: 60 });
    assert.match(runner.output, new RegExp(`\\[${ns}/spared\\] Handler 'pod_in_sight' succeeded`));

    // Deleted before its time: the killer is cancelled and the finalizer released.
    await c.api("DELETE", `${podsPath(ns)}/spared`);
    await runner.waitForOutput(`[${ns}/spared] === Pod killing is cancelled!`, { timeout: 60 });
    await waitGone(c, `${podsPath(ns)}/spared`, "the deleted Pod");
  } finally {
    await runner.stop();
  }
  assert.equal(runner.exitCode, 0, runner.output);
  for (const name of ["doomed", "spared"]) {
    assertKopfLog(runner.output, {
      namespace: ns,
      name,
      create: true,
      mandatoryDelete: true,
      successCounts: {},
    });
  }
  const counts = successes(runner.output);
  // Created: doomed, spared; resumed: spared; deleted: doomed, spared.
  assert.equal(counts.pod_in_sight, 3, JSON.stringify(counts));
  assert.equal(counts.pod_deleted, 2, JSON.stringify(counts));
  await c.deleteNamespace(ns);
});

Deno.test("example 99-all-at-once: every handler once, a retried failure, events, a labelled child, cleanup", async () => {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const ns = await c.namespace("e2e-99");
  const runner = operator(c, "99-all-at-once", ns);
  let uid = "";
  try {
    const [parent] = await c.apply(OBJ, { namespace: ns });
    uid = parent.metadata.uid;
    const status = await waitFor(async () => {
      const got = (await c.api("GET", kexPath(ns))).status ?? {};
      return got.create_1 && got.create_2 ? got : undefined;
    }, { timeout: 60, message: "status of create_1 and create_2" });
    assert.deepEqual(status.create_1, { "job1-status": 100 });
    assert.deepEqual(status.create_2, { "job2-status": 100 });
    await runner.waitForOutput(
      /Handler 'create_2' failed with an exception and will try again in 1 seconds: Whoops!/,
      { timeout: 30 },
    );

    const child = await waitFor(async () => {
      const pods: Obj[] = (await c.api(
        "GET",
        `${podsPath(ns)}?labelSelector=application%3Dkopf-example-10`,
      )).items;
      return pods[0];
    }, { timeout: 30, message: "the labelled child Pod" });
    assert.equal(child.metadata.ownerReferences[0].uid, uid);
    assert.equal(child.metadata.labels.somelabel, "somevalue");
    await runner.waitForOutput(`[${ns}/${child.metadata.name}] This pod is special for us.`, {
      timeout: 30,
    });

    // Events about the object, posted by create_1.
    const events = await waitFor(async () => {
      const items: Obj[] = (await c.api(
        "GET",
        `/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.uid%3D${uid}`,
      )).items;
      return items.length >= 2 ? items : undefined;
    }, { timeout: 30, message: "two Events about the object" });
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.reason} ${e.message ?? ""}`).sort(),
      ["Normal AnyReason ", "Warning SomeReason Cannot do something"],
    );

    // An update of spec.lst: the update handler and the field handler.
    await c.api("PATCH", kexPath(ns), { spec: { lst: [1, 2] } }, {
      contentType: "application/merge-patch+json",
    });
    await runner.waitForOutput("Handling the FIELD = undefined -> [1,2]", { timeout: 60 });

    await c.api("DELETE", kexPath(ns));
    await waitGone(c, kexPath(ns), "the object (finalizer released)");
    await waitGone(c, `${podsPath(ns)}/${child.metadata.name}`, "the child Pod");
    await runner.waitForOutput(`[${ns}/${NAME}] Deleted, really deleted`, { timeout: 60 });
  } finally {
    await runner.stop();
  }
  assert.equal(runner.exitCode, 0, runner.output);
  assertKopfLog(runner.output, {
    namespace: ns,
    create: true,
    mandatoryDelete: true,
    successCounts: {
      create_1: 1,
      create_2: 1,
      create_pod: 1,
      update: 1,
      "update_lst/spec.lst": 1,
      delete_fn: 1,
    },
  });
  assert.match(runner.output, /\[.*\] Deleting\./);
  assert.match(runner.output, /Starting in 1s\.\.\./, "the startup activity");
  assert.match(runner.output, /Cleaning up in 1s\.\.\./, "the cleanup activity");
  await c.deleteNamespace(ns);
});

Deno.test("examples/demo.ts (deno task demo): create, update and delete an object, with the operator's log", async () => {
  const c = await cluster();
  const out = await new Deno.Command(Deno.execPath(), {
    // The example is named: the default becomes 01-minimal once that example exists.
    args: ["run", "-A", `${ROOT}examples/demo.ts`, "examples/99-all-at-once/example.ts"],
    env: { KUBECONFIG: c.kubeconfig, NO_COLOR: "1" },
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  for (
    const step of [
      "Applying the CRD",
      "Starting the operator",
      "Creating kopf-demo/kopf-example-1",
      "Updating it",
      "Deleting it",
      "the operator exited with code 0",
    ]
  ) {
    assert.match(text, new RegExp(escape(step)), step);
  }
  assert.match(text, /operator \| \[kopf-demo\/kopf-example-1\] Handler '.+' succeeded\./);
  assert.match(text, /"create_1": \{\s*"job1-status": 100/);
});
