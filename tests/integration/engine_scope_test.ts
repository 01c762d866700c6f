// What the operator serves, on the real API server: namespace globs with negation (namespaces
// created after the start are picked up, excluded ones never), selectors whose CRD does not
// exist yet (a warning, then served once the CRD appears), and no CRD watching when every
// selector is resolved.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import {
  createObject,
  getObject,
  logs,
  objectMessages,
  startOperator,
  testResource,
} from "../support/engine.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "enginescopes");

async function namespace(name: string): Promise<string> {
  await c.api("POST", "/api/v1/namespaces", { metadata: { name } });
  return name;
}

Deno.test("namespace globs: matching namespaces are served, also when created later", async () => {
  const prefix = `scope-${crypto.randomUUID().slice(0, 6)}`;
  const early = await namespace(`${prefix}-early`);
  const registry = new kopf.Registry();
  const handled: string[] = [];
  registry.on.create(res.plural, { id: "create_fn" }, ({ namespace }) => {
    handled.push(namespace!);
    return { seen: true };
  });
  const operator = await startOperator(c, {
    registry,
    namespaces: [`${prefix}-*, !${prefix}-skip-*`],
  });
  const created = [early];
  try {
    const late = await namespace(`${prefix}-late`);
    const skipped = await namespace(`${prefix}-skip-1`);
    created.push(late, skipped);
    for (const ns of created) await createObject(c, res, ns, "obj");
    for (const ns of [early, late]) {
      await waitFor(async () => (await getObject(c, res, ns, "obj"))?.status?.create_fn?.seen, {
        message: `the object in ${ns}`,
      });
    }
    await sleep(2000);
    assert.equal((await getObject(c, res, skipped, "obj"))?.status, undefined, "excluded");
    assert.deepEqual(handled.sort(), [early, late].sort());
  } finally {
    await operator.stop();
    for (const ns of created) await c.deleteNamespace(ns);
  }
});

Deno.test("a selector without its CRD: a warning, then served once the CRD is created", async () => {
  const plural = `latecomer${crypto.randomUUID().slice(0, 6)}s`;
  const selector = `${plural}.engine-tests.kopf.dev`;
  const ns = await c.namespace("scope-crd");
  const registry = new kopf.Registry();
  registry.on.create(selector, { id: "create_fn" }, () => ({ seen: true }));
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    assert.ok(
      logs.some((l) =>
        l.level === "warning" &&
        l.message.startsWith("Unresolved resources cannot be served") &&
        l.message.includes(plural)
      ),
      "a warning naming the selector",
    );
    const late = await testResource(c, plural);
    await createObject(c, late, ns, "late");
    await waitFor(async () => (await getObject(c, late, ns, "late"))?.status?.create_fn?.seen, {
      message: "the object of the new CRD to be handled",
    });
    assert.ok(objectMessages("late", ns).includes("Creation is processed: 1 succeeded; 0 failed."));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
    await c.api(
      "DELETE",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.engine-tests.kopf.dev`,
    ).catch(() => {});
  }
});

Deno.test("every selector resolved: CRDs are not watched", async () => {
  const ns = await c.namespace("scope-nocrd");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, () => {});
  const before = logs.length;
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const started = logs.slice(before).filter((l) => l.message.startsWith("Starting the informer"));
    assert.ok(started.some((l) => l.message.includes(res.plural)), "the resource is watched");
    assert.ok(
      !started.some((l) => l.message.includes("customresourcedefinitions")),
      started.map((l) => l.message).join("\n"),
    );
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a CRD deleted while watched: one INFO line, no warnings, served again when it returns", async () => {
  const plural = `comeback${crypto.randomUUID().slice(0, 6)}s`;
  const crd =
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.engine-tests.kopf.dev`;
  const ns = await c.namespace("scope-comeback");
  const first = await testResource(c, plural);
  const registry = new kopf.Registry();
  registry.on.create(first.plural, { id: "create_fn" }, () => ({ seen: true }));
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  const before = logs.length;
  try {
    await c.api("DELETE", crd);
    await waitFor(
      () => logs.slice(before).some((l) => l.message.includes("is gone from the API")),
      {
        message: "the INFO line about the resource",
      },
    );
    // Several of the old watch's retry intervals: nothing more is said about it.
    await sleep(8000);
    const said = logs.slice(before).filter((l) =>
      l.message.includes(plural) && l.level !== "debug"
    );
    assert.deepEqual(said.map((l) => `${l.level}: ${l.message}`), [
      `info: Resource ${plural}.v1.engine-tests.kopf.dev is gone from the API (its CRD ` +
      "deleted?): not served any more, until it returns.",
    ]);
    const again = await testResource(c, plural);
    await createObject(c, again, ns, "back");
    await waitFor(async () => (await getObject(c, again, ns, "back"))?.status?.create_fn?.seen, {
      message: "an object of the returned CRD to be handled",
    });
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
    await c.api("DELETE", crd).catch(() => {});
  }
});
