/**
 * Kopf's peering in a mixed fleet, through the real command lines: Python Kopf 1.45 (from PyPI,
 * `tests/support/python_kopf.ts`) and ours (`kopf run`) on one `KopfPeering` object of a
 * namespace of their own. The higher priority handles new objects and the other pauses, both
 * ways; stopping the higher one resumes the other at once (its record is removed on the way out);
 * equal priorities pause both with Kopf's warning; `kopf freeze`/`kopf resume` pause and resume a
 * running operator; a peering object deleted while they run is one line and no crash.
 *
 * Who handled an object is what its create handler returned: `status.create_fn.by` is `python`
 * or `deno`.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import type { OperatorProcess } from "../support/operator_process.ts";
import { pythonKopf, runPythonKopf } from "../support/python_kopf.ts";
import { sleep, waitFor } from "../support/wait.ts";
import { main } from "../../src/cli/main.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OURS = `${ROOT}tests/e2e/fixtures/peering_operator.ts`;
const THEIRS = `${ROOT}tests/e2e/fixtures/peering_operator.py`;

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);
// Kopf's peering CRDs only (the objects are made per test, in the test's namespace).
await c.apply(
  (await Deno.readTextFile(`${ROOT}examples/06-peering/peering.yaml`)).split("\n---\n")
    .filter((doc) => doc.includes("CustomResourceDefinition")).join("\n---\n"),
);
await waitFor(async () =>
  (await c.api("GET", "/apis/kopf.dev/v1")).resources?.some(
    (r: Obj) => r.name === "kopfpeerings",
  ), { message: "the KopfPeering CRD served" });
const kopf = await pythonKopf();

const kexes = (ns: string) => `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`;
const peeringPath = (ns: string) => `/apis/kopf.dev/v1/namespaces/${ns}/kopfpeerings/default`;

async function setup(prefix: string): Promise<string> {
  const ns = await c.namespace(prefix);
  await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfpeerings`, {
    apiVersion: "kopf.dev/v1",
    kind: "KopfPeering",
    metadata: { name: "default" },
  });
  return ns;
}

function ours(ns: string, priority: number): KopfRunner {
  return new KopfRunner(
    ["run", "--verbose", "-n", ns, "--priority", String(priority), OURS],
    { env: { KUBECONFIG: c.kubeconfig }, cwd: ROOT, timeout: 180 },
  ).start();
}

function theirs(ns: string, priority: number): OperatorProcess {
  return runPythonKopf(kopf, THEIRS, {
    kubeconfig: c.kubeconfig,
    namespaces: [ns],
    standalone: false,
    args: ["--verbose", "--priority", String(priority)],
  });
}

async function create(ns: string, name: string): Promise<void> {
  await c.api("POST", kexes(ns), {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name },
    spec: {},
  });
}

async function handledBy(ns: string, name: string, timeout = 60): Promise<string> {
  return await waitFor(async () => {
    const obj = await c.api("GET", `${kexes(ns)}/${name}`);
    return obj.status?.create_fn?.by as string | undefined;
  }, { timeout, message: `${name} handled` });
}

async function unhandledFor(ns: string, name: string, seconds: number): Promise<void> {
  await sleep(seconds * 1000);
  const obj = await c.api("GET", `${kexes(ns)}/${name}`);
  assert.equal(
    obj.status?.create_fn,
    undefined,
    `${name} was handled by ${obj.status?.create_fn?.by}`,
  );
}

/** Both operators' records are in the peering object (they see each other). */
async function bothRecorded(ns: string): Promise<void> {
  await waitFor(async () => {
    const status = (await c.api("GET", peeringPath(ns))).status ?? {};
    return Object.keys(status).length >= 2 || undefined;
  }, { timeout: 60, message: "both peers recorded" });
}

Deno.test("peering: ours with priority 100 runs, Python Kopf with 0 pauses; stop ours → Kopf resumes", async () => {
  const ns = await setup("e2e-peer-hi");
  const py = theirs(ns, 0);
  let deno: KopfRunner | undefined;
  try {
    await py.waitForLog(
      /Keep-alive in 'default' in '.*': ok|Resuming|Handler 'create_fn'|Starting the main/,
      60,
    );
    deno = ours(ns, 100);
    await deno.waitForOutput(/Peering as .* with priority 100/, { timeout: 120 });
    await py.waitForLog(/Pausing operations in favour of \[<Peer .*priority=100/, 60);
    await bothRecorded(ns);
    await create(ns, "first");
    assert.equal(await handledBy(ns, "first"), "deno");
    assert.doesNotMatch(py.output(), /Handler 'create_fn' succeeded/);

    const stopAt = Date.now();
    const mark = py.output().length;
    assert.equal(await deno.stop(), 0);
    await waitFor(() => /Resuming operations after the pause/.test(py.output().slice(mark)), {
      timeout: 60,
      message: "Python Kopf resumes",
    });
    console.log(
      `Python Kopf resumed ${((Date.now() - stopAt) / 1000).toFixed(1)} s after ours stopped`,
    );
    await create(ns, "second");
    assert.equal(await handledBy(ns, "second"), "python");
    const status = (await c.api("GET", peeringPath(ns))).status ?? {};
    assert.equal(Object.keys(status).length, 1, "our record was removed on stop");
  } finally {
    await deno?.stop().catch(() => {});
    await py.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("peering: Python Kopf with priority 100 runs, ours with 0 pauses; stop Kopf → ours resumes", async () => {
  const ns = await setup("e2e-peer-lo");
  const deno = ours(ns, 0);
  let py: OperatorProcess | undefined;
  try {
    await deno.waitForOutput(/Peering as .* with priority 0/, { timeout: 120 });
    py = theirs(ns, 100);
    await deno.waitForOutput(/Pausing operations in favour of \[<Peer .*priority=100/, {
      timeout: 60,
    });
    await create(ns, "first");
    assert.equal(await handledBy(ns, "first"), "python");
    assert.doesNotMatch(deno.output, /Handler 'create_fn' succeeded/);

    const stopAt = Date.now();
    const mark = deno.output.length;
    await py.stop();
    await waitFor(() => /Resuming operations after the pause/.test(deno.output.slice(mark)), {
      timeout: 60,
      message: "ours resumes",
    });
    console.log(`ours resumed ${((Date.now() - stopAt) / 1000).toFixed(1)} s after Kopf stopped`);
    await create(ns, "second");
    assert.equal(await handledBy(ns, "second"), "deno");
  } finally {
    await py?.stop();
    await deno.stop().catch(() => {});
    await c.deleteNamespace(ns);
  }
});

Deno.test("peering: equal priorities pause both with Kopf's warning", async () => {
  const ns = await setup("e2e-peer-eq");
  const py = theirs(ns, 5);
  const deno = ours(ns, 5);
  try {
    await deno.waitForOutput(/Possibly conflicting operators with the same priority/, {
      timeout: 120,
    });
    await deno.waitForOutput(/Pausing all operators, including self/, { timeout: 10 });
    await py.waitForLog(/Possibly conflicting operators with the same priority/, 60);
    await py.waitForLog(/Pausing all operators, including self/, 10);
    // Kopf closes its open watch streams a moment after it decides to pause (~0.1 s in CI): an
    // object created in between still reaches its handlers. Create once the stream is paused.
    await py.waitForLog(/Pausing the watch-stream for kopfexamples/, 10);
    await create(ns, "nobody");
    await unhandledFor(ns, "nobody", 8);
  } catch (error) {
    // Which side resumed, and after what peering state: both logs, for the failure report.
    console.error(`Python Kopf's log:\n${py.output().slice(-5000)}`);
    console.error(`Our log:\n${deno.output.slice(-5000)}`);
    throw error;
  } finally {
    await deno.stop().catch(() => {});
    await py.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("peering: kopf freeze and resume pause and resume a running operator; a deleted peering object is one line", async () => {
  const ns = await setup("e2e-peer-freeze");
  const deno = ours(ns, 0);
  const kubeconfig = ["--kubeconfig", c.kubeconfig];
  try {
    await deno.waitForOutput(/Peering as .* with priority 0/, { timeout: 120 });
    await create(ns, "before");
    assert.equal(await handledBy(ns, "before"), "deno");

    assert.equal(
      await main(["freeze", "--lifetime", "60", "--id", "manual", "-n", ns, ...kubeconfig]),
      0,
    );
    await deno.waitForOutput(/Pausing operations in favour of \[<Peer manual: priority=100/, {
      timeout: 30,
    });
    await create(ns, "frozen");
    await unhandledFor(ns, "frozen", 5);
    assert.equal(await main(["resume", "--id", "manual", "-n", ns, ...kubeconfig]), 0);
    await deno.waitForOutput(/Resuming operations after the pause/, { timeout: 30 });
    assert.equal(await handledBy(ns, "frozen"), "deno");

    // Bad input: the peering object deleted under a running operator.
    await c.api("DELETE", peeringPath(ns));
    await deno.waitForOutput(/The peering object default in \S+ was deleted while running/, {
      timeout: 30,
    });
    await create(ns, "after");
    assert.equal(await handledBy(ns, "after"), "deno");
    assert.ok(deno.running, "the operator still runs");
    assert.doesNotMatch(deno.output, / {4}at /, "no stack trace");
    // A freeze of a missing peering object is one line and exit 1.
    assert.equal(await main(["freeze", "--lifetime", "5", "-n", ns, ...kubeconfig]), 1);
  } finally {
    await deno.stop().catch(() => {});
    await c.deleteNamespace(ns);
  }
});

Deno.test("peering: --peering NAME is mandatory: paused while the object is absent, resumed when it appears", async () => {
  const ns = await c.namespace("e2e-peer-mandatory");
  const deno = new KopfRunner(
    ["run", "--verbose", "-n", ns, "--peering", "example", OURS],
    { env: { KUBECONFIG: c.kubeconfig }, cwd: ROOT, timeout: 120 },
  ).start();
  try {
    await deno.waitForOutput(
      /The peering object example in \S+ does not exist; pausing until it does/,
      { timeout: 60 },
    );
    await create(ns, "waiting");
    await unhandledFor(ns, "waiting", 4);
    await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfpeerings`, {
      apiVersion: "kopf.dev/v1",
      kind: "KopfPeering",
      metadata: { name: "example" },
    });
    assert.equal(await handledBy(ns, "waiting", 30), "deno");
    // It says it is there at once, not at its next keep-alive (a minute later).
    await waitFor(async () => {
      const status = (await c.api("GET", `/apis/kopf.dev/v1/namespaces/${ns}/kopfpeerings/example`))
        .status ?? {};
      return Object.keys(status).length === 1 || undefined;
    }, { timeout: 10, message: "our record in the new peering object" });
  } finally {
    await deno.stop().catch(() => {});
    await c.deleteNamespace(ns);
  }
});
