// Bad input on the real API server: corrupt stored state (written by another tool), handlers
// that throw strings, return things that are not JSON, or never resolve — none of them stalls
// the other objects, and a stuck handler cannot keep the operator from stopping.

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
import { waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "enginebadinputs");
const DIFF_BASE = "kopf.zalando.org/last-handled-configuration";

Deno.test("corrupt stored annotations are treated as unhandled, with a warning", async () => {
  const ns = await c.namespace("corrupt");
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.create(res.plural, { id: "create_fn" }, ({ name }) => {
    calls.push(name);
    return { ok: true };
  });
  registry.on.update(res.plural, { id: "update_fn" }, ({ name }) => {
    calls.push(`update:${name}`);
  });
  await createObject(c, res, ns, "corrupt", { size: 1 }, {
    annotations: { [DIFF_BASE]: "{not json", "kopf.zalando.org/create_fn": "][" },
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const obj = await waitFor(async () => {
      const o = await getObject(c, res, ns, "corrupt");
      return o?.status?.create_fn?.ok && o.metadata.annotations[DIFF_BASE] !== "{not json" && o;
    }, { message: "the object to be handled as new" });
    assert.deepEqual(calls, ["corrupt"]);
    assert.deepEqual(JSON.parse(obj.metadata.annotations[DIFF_BASE]), { spec: { size: 1 } });
    // Each warning names the object (the `object` reference the log sinks print as [ns/name]).
    const warnings = logs.filter((l) =>
      l.level === "warning" &&
      (l.properties.object as { name?: string; namespace?: string } | undefined)?.name ===
        "corrupt" &&
      (l.properties.object as { namespace?: string }).namespace === ns
    ).map((l) => l.message);
    assert.ok(
      warnings.some((m) => m.includes("unparsable diff-base")),
      `warnings: ${warnings.join("\n")}`,
    );
    assert.ok(warnings.some((m) => m.includes("unparsable progress record")));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a handler throwing a string retries by its backoff and does not stall others", async () => {
  const ns = await c.namespace("strings");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "stringy", retries: 2, backoff: 1 }, ({ name }) => {
    if (name === "bad") throw "a plain string";
    return { ok: true };
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "bad");
    await createObject(c, res, ns, "good");
    await waitFor(async () => (await getObject(c, res, ns, "good"))?.status?.stringy?.ok);
    await waitFor(
      () => objectMessages("bad", ns).includes("Creation is processed: 0 succeeded; 1 failed."),
      { message: "the string-throwing handler to give up" },
    );
    const messages = objectMessages("bad", ns);
    assert.ok(
      messages.includes(
        "Handler 'stringy' failed with an exception and will try again in 1 seconds: " +
          "a plain string",
      ),
      messages.join("\n"),
    );
    assert.ok(
      messages.some((m) =>
        m.startsWith("Handler 'stringy' failed with an exception and will stop now") &&
        m.endsWith("a plain string")
      ),
      messages.join("\n"),
    );
    // The outcome's line is logged before the cycle's patch is sent: wait for the patch.
    await waitFor(
      async () => (await getObject(c, res, ns, "bad"))?.metadata.annotations?.[DIFF_BASE],
      { message: "a failed creation to be still handled (its diff-base stored)" },
    );
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// Kopf's docs, "Results": results are stored in status as JSON. One that cannot be is that
// handler's error, under its own error policy (here: permanent), naming the value's type.
Deno.test("results that cannot be stored as JSON fail their handler, named by type", async () => {
  const ns = await c.namespace("nonjson");
  const registry = new kopf.Registry();
  const permanent = { errors: "permanent" } as const;
  registry.on.create(res.plural, { id: "fn_result", ...permanent }, () => () => "a function");
  registry.on.create(res.plural, { id: "bigint_result", ...permanent }, () => ({ big: 10n }));
  registry.on.create(res.plural, { id: "set_result", ...permanent }, () => new Set([1]));
  registry.on.create(res.plural, { id: "cyclic_result", ...permanent }, () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    return cyclic;
  });
  registry.on.create(res.plural, { id: "fine" }, () => ({ when: new Date(0) }));
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "nonjson");
    const obj = await waitFor(async () => {
      const o = await getObject(c, res, ns, "nonjson");
      return o?.metadata.annotations?.[DIFF_BASE] && o;
    }, { message: "the creation to be processed" });
    assert.deepEqual(obj.status, { fine: { when: "1970-01-01T00:00:00.000Z" } });
    const messages = objectMessages("nonjson", ns);
    assert.ok(
      messages.includes("Creation is processed: 1 succeeded; 4 failed."),
      messages.join("\n"),
    );
    for (
      const [id, type] of [
        ["fn_result", "a function"],
        ["bigint_result", "a bigint"],
        ["set_result", "a Set"],
        ["cyclic_result", "a cyclic structure"],
      ]
    ) {
      assert.ok(
        messages.includes(
          `Handler '${id}' failed with an exception and will stop now: Handler '${id}' returned ` +
            `a result that cannot be stored as JSON: ${type}.`,
        ),
        `${id}: ${messages.join("\n")}`,
      );
    }
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

// Kopf's WARNING when the server drops what was patched: a result on a kind without a status.
Deno.test("a result on a kind without a status is reported as Kopf does", async () => {
  const ns = await c.namespace("nostatus");
  const registry = new kopf.Registry();
  registry.on.create("configmaps", { id: "cm_fn", labels: { "engine-test": "nostatus" } }, () => ({
    seen: true,
  }));
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
      metadata: { name: "cm", labels: { "engine-test": "nostatus" } },
    });
    await waitFor(() =>
      objectMessages("cm", ns).includes("Creation is processed: 1 succeeded; 0 failed.")
    );
    await waitFor(() =>
      objectMessages("cm", ns).includes(
        "Patching failed with inconsistencies: (('remove', ('status',), {'cm_fn': {'seen': True}}, None),)",
      ), { timeout: 10, message: "Kopf's warning" });
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a handler that never resolves: attemptTimeout ends it; other objects go on", async () => {
  const ns = await c.namespace("stuck");
  const registry = new kopf.Registry();
  let aborted = false;
  registry.on.create(res.plural, { id: "maybe_stuck", attemptTimeout: 3, retries: 1 }, ({
    name,
    signal,
  }) => {
    if (name !== "stuck") return { ok: true };
    signal.addEventListener("abort", () => aborted = true);
    return new Promise(() => {});
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "stuck");
    await waitFor(() => objectMessages("stuck", ns).includes("Handler 'maybe_stuck' is invoked."));
    await createObject(c, res, ns, "other");
    await waitFor(async () => (await getObject(c, res, ns, "other"))?.status?.maybe_stuck?.ok);
    assert.ok(
      !objectMessages("stuck", ns).some((m) => m.includes("timed out")),
      "the other object was handled while this one was stuck",
    );
    await waitFor(
      () => objectMessages("stuck", ns).includes("Creation is processed: 0 succeeded; 1 failed."),
      { message: "the stuck handler to time out" },
    );
    assert.ok(
      objectMessages("stuck", ns).some((m) =>
        /^Handler 'maybe_stuck' has timed out after 0:00:0\d/.test(m)
      ),
      objectMessages("stuck", ns).join("\n"),
    );
    assert.ok(aborted, "the handler's signal is aborted on its timeout");
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("a stuck handler cannot keep the operator from stopping", async () => {
  const ns = await c.namespace("stuck-stop");
  const registry = new kopf.Registry();
  let aborted = false;
  registry.on.create(res.plural, { id: "forever" }, ({ signal }) => {
    signal.addEventListener("abort", () => aborted = true);
    return new Promise(() => {});
  });
  const settings = new kopf.Settings();
  settings.process.drainTimeout = 1;
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "forever");
    await waitFor(() => objectMessages("forever", ns).includes("Handler 'forever' is invoked."));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
  assert.ok(aborted, "the stuck handler's signal is aborted after the drain timeout");
  const obj = await getObject(c, res, ns, "forever").catch(() => null);
  if (obj) assert.equal(obj.metadata.annotations?.[DIFF_BASE], undefined, "not marked handled");
});
