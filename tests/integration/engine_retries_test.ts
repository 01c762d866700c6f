// Retries and restarts against the real API server: a TemporaryError(delay) costs one progress
// write per attempt and no touch-dummy patches; an operator killed (SIGKILL) while a retry is
// pending resumes it at its stored time after a restart, never re-runs what succeeded, and
// leaves no finalizer behind.

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
import { OperatorProcess } from "../support/operator_process.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "engineretries");
const restarts = await testResource(c, "enginerestarts");
const SETTLE_MS = 2000;

Deno.test("a TemporaryError(delay=1) costs one progress write per attempt and no touch-dummy", async () => {
  const ns = await c.namespace("retries");
  const registry = new kopf.Registry();
  const attempts: { retry: number; at: number }[] = [];
  registry.on.create(res.plural, { id: "flaky" }, ({ retry }) => {
    attempts.push({ retry, at: Date.now() });
    if (retry < 2) throw new kopf.TemporaryError("not ready yet", { delay: 1 });
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const m0 = await c.metrics();
    await createObject(c, res, ns, "flaky", { size: 1 });
    await waitFor(
      async () =>
        (await getObject(c, res, ns, "flaky"))?.metadata.annotations?.[
          "kopf.zalando.org/last-handled-configuration"
        ],
      { message: "the handler to succeed at last" },
    );
    await sleep(SETTLE_MS);
    const counts = (await c.metrics()).since(m0);
    assert.deepEqual(attempts.map((a) => a.retry), [0, 1, 2]);
    for (let i = 1; i < attempts.length; i++) {
      // The retry waits for its delay (a lower bound: the queue's timer, not a busy loop).
      assert.ok(attempts[i].at - attempts[i - 1].at >= 900, JSON.stringify(attempts));
    }
    // Two failed attempts (a progress record each) and the success (purge + diff-base).
    assert.equal(writesTo(counts, res), 3, `${counts}`);
    const obj = await getObject(c, res, ns, "flaky");
    const annotations = Object.keys(obj!.metadata.annotations ?? {});
    assert.ok(!annotations.some((k) => k.includes("touch-dummy")), annotations.join(", "));
    assert.deepEqual(
      annotations.filter((k) => k.startsWith("kopf.zalando.org/")),
      ["kopf.zalando.org/last-handled-configuration"],
    );
    const messages = objectMessages("flaky", ns);
    assert.equal(
      messages.filter((m) => m === "Handler 'flaky' failed temporarily: not ready yet").length,
      2,
      messages.join("\n"),
    );
    assert.ok(messages.includes("Handler 'flaky' succeeded."));
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("the stored progress record of a pending retry says when and how often", async () => {
  const ns = await c.namespace("retries-record");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "later" }, () => {
    throw new kopf.TemporaryError("come back later", { delay: 600 });
  });
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    const before = Date.now();
    await createObject(c, res, ns, "later");
    const record = await waitFor(async () => {
      const value = (await getObject(c, res, ns, "later"))?.metadata.annotations?.[
        "kopf.zalando.org/later"
      ];
      return value && JSON.parse(value);
    }, { message: "the progress record" });
    assert.equal(record.retries, 1);
    assert.equal(record.purpose, "create");
    assert.equal(record.message, "come back later");
    const delayed = Date.parse(record.delayed);
    assert.ok(delayed >= before + 599_000 && delayed <= Date.now() + 601_000, record.delayed);
    assert.match(record.started, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

function callsOf(output: string, id: string): { retry: number; at: number }[] {
  return [...output.matchAll(new RegExp(`CALL ${id} retry=(\\d+) at=(\\d+)`, "g"))]
    .map((m) => ({ retry: Number(m[1]), at: Number(m[2]) }));
}

function startSubprocess(ns: string, delay: number): OperatorProcess {
  return OperatorProcess.start({
    command: Deno.execPath(),
    args: [
      "run",
      "-A",
      new URL("../support/fixtures/engine_restart_operator.ts", import.meta.url).pathname,
      ns,
      restarts.plural,
      String(delay),
    ],
    env: { KUBECONFIG: c.kubeconfig },
  });
}

Deno.test("SIGKILL with a retry pending: the restarted operator resumes it at its stored time", async () => {
  const ns = await c.namespace("restart");
  const DELAY = 8;
  let first: OperatorProcess | undefined = startSubprocess(ns, DELAY);
  let second: OperatorProcess | undefined;
  try {
    await first.waitForLog(/^READY$/, 120);
    await createObject(c, restarts, ns, "resumable", { field: "value" });
    await first.waitForLog(/CALL slow retry=0/);
    // The first attempt's outcome is stored on the object: fast succeeded, slow is delayed.
    const stored = await waitFor(async () => {
      const annotations = (await getObject(c, restarts, ns, "resumable"))?.metadata.annotations;
      const slow = annotations?.["kopf.zalando.org/slow"];
      return slow && JSON.parse(slow).delayed && annotations;
    }, { message: "the pending retry to be stored" });
    assert.equal(JSON.parse(stored["kopf.zalando.org/fast"]).success, true);
    const delayedAt = Date.parse(JSON.parse(stored["kopf.zalando.org/slow"]).delayed);

    first.kill("SIGKILL");
    await first.status;
    const firstOutput = first.output();
    first = undefined;
    assert.equal(callsOf(firstOutput, "fast").length, 1);
    assert.equal(callsOf(firstOutput, "slow").length, 1);

    second = startSubprocess(ns, DELAY);
    await second.waitForLog(/^READY$/, 120);
    await second.waitForLog(/CALL slow retry=1/, DELAY + 60);
    const [resumed] = callsOf(second.output(), "slow");
    assert.equal(resumed.retry, 1);
    // Not before its stored time (the same machine's clock wrote and reads it).
    assert.ok(resumed.at >= delayedAt - 50, `resumed at ${resumed.at}, stored ${delayedAt}`);
    const handled = await waitFor(async () => {
      const obj = await getObject(c, restarts, ns, "resumable");
      return obj?.metadata.annotations?.["kopf.zalando.org/last-handled-configuration"] && obj;
    }, { message: "the creation to be finished" });
    assert.equal(handled.status.slow.done, true);
    assert.equal(handled.status.fast.done, true);
    assert.equal(callsOf(second.output(), "fast").length, 0, "succeeded handlers never run again");

    await c.api("DELETE", restarts.path(ns, "resumable"));
    await waitFor(async () => (await getObject(c, restarts, ns, "resumable")) === null, {
      message: "the object to be deleted (no finalizer left behind)",
    });
    assert.equal(callsOf(second.output(), "remove").length, 1);
    const status = await second.stop();
    assert.equal(status.code, 0, second.output().slice(-2000));
    assert.match(second.output(), /STOPPED/);
  } finally {
    first?.kill("SIGKILL");
    if (second) await second.stop();
    await stripFinalizers(c, restarts, ns);
    await c.deleteNamespace(ns);
  }
});
