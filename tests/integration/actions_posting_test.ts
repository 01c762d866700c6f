// Kopf's event posting on the real API server, as Kopf documents it:
//
// - docs/configuration.rst, "Logging events": `settings.posting.level` and `posting.enabled`
//   decide what is posted; kopf/_core/engines/posting.py is the rule per function — `event()`
//   only checks `enabled`, `info()` needs `enabled` and level ≤ INFO, `warn()` level ≤ WARNING
//   (even when disabled), `exception()` `enabled` and level ≤ ERROR.
// - docs/events.rst, "Events from log messages" (`posting.loggers`): a failed handler's message is
//   posted as an Error event, with the traceback — here, the error's stack.
//
// Every Event is read back from the API server and the POSTs are counted from its own metrics.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { createObject, startOperator, stripFinalizers, testResource } from "../support/engine.ts";
import { waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "postinglevels");

async function eventsIn(ns: string): Promise<Obj[]> {
  return (await c.api("GET", `/api/v1/namespaces/${ns}/events`)).items;
}

/** Runs a create handler that calls all four posting functions once, and returns what was posted. */
async function postAll(
  configure: (settings: kopf.Settings) => void,
): Promise<{ events: string[]; posts: number }> {
  const ns = await c.namespace("posting");
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.create(res.plural, { id: "poster" }, ({ body }) => {
    called++;
    kopf.event(body, { type: "Custom", reason: "EventFn", message: "event()" });
    kopf.info(body, { reason: "InfoFn", message: "info()" });
    kopf.warn(body, { reason: "WarnFn", message: "warn()" });
    kopf.exception(body, { reason: "ExceptionFn", message: "exception():", exc: new Error("x") });
  });
  const settings = new kopf.Settings();
  configure(settings);
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  const before = await c.metrics();
  try {
    await createObject(c, res, ns, "p1");
    await waitFor(() => called === 1, { message: "the handler" });
  } finally {
    await operator.stop(); // flushes the poster
  }
  const events = (await eventsIn(ns)).map((e) => `${e.type} ${e.reason}: ${e.message}`).sort();
  const posts = (await c.metrics()).since(before).count({ verb: "POST", resource: "events" });
  await stripFinalizers(c, res, ns);
  await c.deleteNamespace(ns);
  assert.equal(called, 1);
  return { events, posts };
}

Deno.test("posting.level info (Kopf's default): all four functions post", async () => {
  const { events, posts } = await postAll(() => {});
  assert.equal(posts, 4);
  assert.deepEqual(events, [
    "Custom EventFn: event()",
    "Error ExceptionFn: exception(): x",
    "Normal InfoFn: info()",
    "Warning WarnFn: warn()",
  ]);
});

Deno.test("posting.level warning: kopf.info() posts nothing; event, warn, exception do", async () => {
  const { events, posts } = await postAll((settings) => settings.posting.level = "warning");
  assert.equal(posts, 3);
  assert.deepEqual(events, [
    "Custom EventFn: event()",
    "Error ExceptionFn: exception(): x",
    "Warning WarnFn: warn()",
  ]);
});

Deno.test("posting.level error: only event() and exception() post", async () => {
  const { events, posts } = await postAll((settings) => settings.posting.level = "error");
  assert.equal(posts, 2);
  assert.deepEqual(events, [
    "Custom EventFn: event()",
    "Error ExceptionFn: exception(): x",
  ]);
});

Deno.test("posting.enabled off: only warn() posts, as in Kopf", async () => {
  const { events, posts } = await postAll((settings) => settings.posting.enabled = false);
  assert.equal(posts, 1);
  assert.deepEqual(events, ["Warning WarnFn: warn()"]);
});

Deno.test("posting.loggers: a failed handler's Error event carries the error's stack", async () => {
  const ns = await c.namespace("posting-loggers");
  const registry = new kopf.Registry();
  let called = 0;
  registry.on.create(res.plural, { id: "failing", errors: "permanent" }, function failing() {
    called++;
    throw new Error("boom in the handler");
  });
  const settings = new kopf.Settings();
  settings.posting.loggers = true;
  settings.posting.level = "error"; // only the failure, not the framework's INFO lines
  const operator = await startOperator(c, { registry, settings, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "p2");
    await waitFor(() => called === 1, { message: "the handler" });
  } finally {
    await operator.stop();
  }
  const events = await eventsIn(ns);
  try {
    assert.equal(called, 1);
    assert.deepEqual(events.map((e) => `${e.type} ${e.reason}`), ["Error Logging"]);
    const message: string = events[0].message;
    const [first, second, third] = message.split("\n");
    assert.equal(
      first,
      "Handler 'failing' failed with an exception and will stop now: boom in the handler",
    );
    // Where Kopf appends "Traceback (most recent call last): …", the stack of the error.
    assert.equal(second, "Error: boom in the handler");
    assert.match(third, /^ {4}at failing \(file:\/\/.*actions_posting_test\.ts:\d+:\d+\)$/);
  } finally {
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});
