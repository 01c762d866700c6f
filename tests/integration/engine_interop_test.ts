// Interop with Python Kopf 1.45 from PyPI (installed into a virtualenv by the test setup): an
// object handled by a Kopf operator is not handled again when ours takes over with the same
// handler ids — and back. Both keep their state on the object in the same format (progress,
// diff-base, finalizer), so the one taking over sees the next change as an update and releases
// the other's finalizer on deletion.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import {
  createObject,
  getObject,
  objectMessages,
  startOperator,
  stripFinalizers,
  testResource,
  writesTo,
} from "../support/engine.ts";
import { pythonKopf, runPythonKopf } from "../support/python_kopf.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "engineinterops");
const py = await pythonKopf();
const PY_OPERATOR = new URL("../support/fixtures/engine_interop_operator.py", import.meta.url)
  .pathname;
const SELECTOR = `${res.plural}.${res.group}`;
const DIFF_BASE = "kopf.zalando.org/last-handled-configuration";
const FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";
const MERGE = { contentType: "application/merge-patch+json" };
const SETTLE_MS = 3000;

function ourRegistry(calls: string[]): kopf.Registry {
  const registry = new kopf.Registry();
  registry.on.create(SELECTOR, { id: "create_fn" }, () => {
    calls.push("create_fn");
    return { message: "from deno" };
  });
  registry.on.create(SELECTOR, { id: "create_two" }, () => {
    calls.push("create_two");
  });
  registry.on.update(SELECTOR, { id: "update_fn" }, ({ diff }) => {
    calls.push(`update_fn ${JSON.stringify(diff)}`);
  });
  registry.on.delete(SELECTOR, { id: "delete_fn" }, () => {
    calls.push("delete_fn");
  });
  return registry;
}

function startPython(ns: string) {
  return runPythonKopf(py, PY_OPERATOR, {
    kubeconfig: c.kubeconfig,
    namespaces: [ns],
    args: ["--verbose"],
    env: { INTEROP_RESOURCE: SELECTOR },
  });
}

Deno.test(`handled by Python Kopf ${py.version}, then ours: nothing runs again`, async () => {
  const ns = await c.namespace("interop-py-first");
  const python = startPython(ns);
  let ours: Awaited<ReturnType<typeof startOperator>> | undefined;
  try {
    await createObject(c, res, ns, "from-py", { size: 1 });
    await python.waitForLog(/Creation is processed: 2 succeeded; 0 failed/, 120);
    const handled = await waitFor(async () => {
      const obj = await getObject(c, res, ns, "from-py");
      return obj?.metadata.annotations?.[DIFF_BASE] && obj;
    }, { message: "Kopf's diff-base" });
    assert.deepEqual(handled.metadata.finalizers, [FINALIZER]);
    assert.deepEqual(handled.status.create_fn, { message: "from python" });
    assert.equal((await python.stop()).code, 0, python.output().slice(-3000));

    const calls: string[] = [];
    const m0 = await c.metrics();
    ours = await startOperator(c, { registry: ourRegistry(calls), namespaces: [ns] });
    await waitFor(() =>
      objectMessages("from-py", ns).some((m) => m.startsWith("Resuming is in progress"))
    );
    await sleep(SETTLE_MS);
    assert.deepEqual(calls, [], "nothing runs again");
    const counts = (await c.metrics()).since(m0);
    assert.equal(writesTo(counts, res), 0, `no writes for an already handled object:\n${counts}`);

    await c.api("PATCH", res.path(ns, "from-py"), { spec: { size: 2 } }, MERGE);
    await waitFor(() => calls.length === 1, { message: "the update" });
    assert.deepEqual(calls, ['update_fn [["change",["spec","size"],1,2]]']);
    await c.api("DELETE", res.path(ns, "from-py"));
    await waitFor(async () => (await getObject(c, res, ns, "from-py")) === null, {
      message: "our delete handler to release Kopf's finalizer",
    });
    assert.deepEqual(calls.slice(1), ["delete_fn"]);
  } finally {
    await python.stop();
    await ours?.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test(`handled by ours, then Python Kopf ${py.version}: nothing runs again`, async () => {
  const ns = await c.namespace("interop-deno-first");
  const calls: string[] = [];
  const ours = await startOperator(c, { registry: ourRegistry(calls), namespaces: [ns] });
  let python: ReturnType<typeof startPython> | undefined;
  try {
    await createObject(c, res, ns, "from-deno", { size: 1 });
    const handled = await waitFor(async () => {
      const obj = await getObject(c, res, ns, "from-deno");
      return obj?.metadata.annotations?.[DIFF_BASE] && obj;
    }, { message: "our diff-base" });
    assert.deepEqual(calls, ["create_fn", "create_two"]);
    assert.deepEqual(handled.metadata.finalizers, [FINALIZER]);
    await sleep(SETTLE_MS);
    await ours.stop();

    python = startPython(ns);
    await python.waitForLog(/\[.*\/from-deno\] Resuming is in progress/, 120);
    await sleep(SETTLE_MS);
    assert.doesNotMatch(python.output(), /PY CALL/, "nothing runs again");

    await c.api("PATCH", res.path(ns, "from-deno"), { spec: { size: 2 } }, MERGE);
    await python.waitForLog(/PY CALL update_fn/, 60);
    await c.api("DELETE", res.path(ns, "from-deno"));
    await waitFor(async () => (await getObject(c, res, ns, "from-deno")) === null, {
      message: "Kopf's delete handler to release our finalizer",
    });
    const pyCalls = [...python.output().matchAll(/^PY CALL (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(pyCalls, ["update_fn", "delete_fn"]);
    assert.match(python.output(), /PY CALL update_fn \[\('change', \('spec', 'size'\), 1, 2\)\]/);
    assert.equal((await python.stop()).code, 0, python.output().slice(-3000));
  } finally {
    await python?.stop();
    await ours.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});
