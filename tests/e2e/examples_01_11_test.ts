/**
 * Examples 01, 03, 04, 05, 07, 08 and 11 run through the real command line (`kopf run`, via
 * `KopfRunner`) against the local control plane, each in a namespace of its own, with the
 * checks of Kopf's own e2e suite (log lines, every handler succeeding once, a clean exit) and
 * what each example is about: results in status, retries and failures, Events, resuming after
 * a restart, sub-handlers, raw events, filters — and finalizers gone at the end.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OBJ = `${ROOT}examples/obj.yaml`;
const NAME = "kopf-example-1";
const MERGE = { contentType: "application/merge-patch+json" };

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);

function operator(example: string, namespace: string): KopfRunner {
  return new KopfRunner(
    ["run", "--verbose", "--standalone", "-n", namespace, `${ROOT}examples/${example}/example.ts`],
    { env: { KUBECONFIG: c.kubeconfig }, cwd: ROOT, timeout: 30 },
  );
}

const kexPath = (ns: string) => `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples/${NAME}`;

async function get(path: string): Promise<Obj | null> {
  try {
    return await c.api("GET", path);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return null;
    throw error;
  }
}

async function deleteAndWait(ns: string): Promise<void> {
  await c.api("DELETE", kexPath(ns));
  await waitFor(async () => (await get(kexPath(ns))) === null, {
    timeout: 60,
    message: "the object to be gone (no finalizer left)",
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** How often a text occurs in the object's log lines (`[ns/name] text`). */
function occurrences(output: string, ns: string, text: string): number {
  return output.match(new RegExp(`\\[${escape(ns)}/${NAME}\\] ${escape(text)}`, "g"))?.length ?? 0;
}

/** How often a plain (stdout) line occurs. */
function printed(output: string, line: string): number {
  return output.match(new RegExp(`^${escape(line)}$`, "gm"))?.length ?? 0;
}

/** The handler ids that succeeded, with how often. */
function successes(output: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, id] of output.matchAll(/Handler '(.+?)' succeeded\./g)) {
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

async function cleanup(ns: string): Promise<void> {
  // Only if a test failed half-way: never leave an object held by our finalizer.
  await c.api("PATCH", kexPath(ns), { metadata: { finalizers: null } }, MERGE).catch(() => {});
  await c.deleteNamespace(ns);
}

async function stopped(runner: KopfRunner): Promise<void> {
  const code = await runner.stop();
  assert.equal(code, 0, runner.output.slice(-3000));
  assert.doesNotMatch(runner.output, /Uncaught|kopf: error/);
}

Deno.test("example 01-minimal: the returned value lands in status", async () => {
  const ns = await c.namespace("e2e-01");
  const runner = operator("01-minimal", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    const status = await waitFor(async () => (await get(kexPath(ns)))?.status?.create_fn, {
      message: "status.create_fn",
    });
    assert.deepEqual(status, { message: "hello world" });
    await runner.waitForOutput("Creation is processed: 1 succeeded; 0 failed.");
    await deleteAndWait(ns);
    await runner.waitForOutput("Deleted, really deleted", { timeout: 30 });
    await stopped(runner);
    const out = runner.output;
    assert.equal(
      occurrences(out, ns, 'And here we are! Creating: {"duration":"1m","field":"value",'),
      1,
      out,
    );
    assert.equal(occurrences(out, ns, "Creation is in progress:"), 1);
    assert.equal(occurrences(out, ns, "Adding the finalizer"), 0, "no delete handlers");
    assert.deepEqual(successes(out), { create_fn: 1 });
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 03-exceptions: temporary, arbitrary, then permanent failure — never again", async () => {
  const ns = await c.namespace("e2e-03");
  const runner = operator("03-exceptions", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    await runner.waitForOutput("Creation is processed: 0 succeeded; 1 failed.", { timeout: 60 });
    // A failed creation is still handled: the diff-base is stored (right after the log line).
    await waitFor(async () =>
      (await get(kexPath(ns)))?.metadata.annotations?.[
        "kopf.zalando.org/last-handled-configuration"
      ], { message: "the diff-base of a failed creation" });
    await deleteAndWait(ns);
    await runner.waitForOutput("Deleted, really deleted", { timeout: 30 });
    await stopped(runner);
    const out = runner.output;
    assert.equal(occurrences(out, ns, "Handler 'create_fn' failed temporarily: First failure."), 1);
    assert.equal(
      occurrences(
        out,
        ns,
        "Handler 'create_fn' failed with an exception and will try again in 1 seconds: " +
          "Second failure.",
      ),
      1,
      out,
    );
    assert.equal(
      occurrences(out, ns, "Handler 'create_fn' failed permanently: Third failure, the final one."),
      1,
    );
    assert.equal(occurrences(out, ns, "Handler 'create_fn' is invoked."), 3);
    assert.deepEqual(successes(out), {});
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 04-events: Events of every kind are posted about the object", async () => {
  const ns = await c.namespace("e2e-04");
  const runner = operator("04-events", ns);
  try {
    const [obj] = await c.apply(OBJ, { namespace: ns });
    await runner.waitForOutput("Creation is processed: 1 succeeded; 0 failed.", { timeout: 60 });
    const events: Obj[] = await waitFor(async () => {
      const list = await c.api("GET", `/api/v1/namespaces/${ns}/events`);
      const items = list.items.filter((e: Obj) => e.involvedObject?.uid === obj.metadata.uid);
      return items.length >= 4 && items;
    }, { timeout: 60, message: "four Events" });
    const seen = events.map((e) => [e.type, e.reason, e.message]).sort();
    assert.deepEqual(seen, [
      ["Error", "SomeReason", "Some exception: Exception text."],
      ["Normal", "SomeReason", "Some message"],
      ["SomeType", "SomeReason", "Some message"],
      ["Warning", "SomeReason", "Some message"],
    ]);
    for (const event of events) {
      assert.equal(event.source?.component, "kopf");
      assert.equal(event.involvedObject.name, NAME);
      assert.equal(event.involvedObject.kind, "KopfExample");
    }
    await deleteAndWait(ns);
    await stopped(runner);
    assert.deepEqual(successes(runner.output), { create_fn: 1 });
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 05-handlers: all handlers of a cause in one cycle; resumed after a restart", async () => {
  const ns = await c.namespace("e2e-05");
  let runner = operator("05-handlers", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    await runner.waitForOutput("Creation is processed: 3 succeeded; 0 failed.", { timeout: 60 });
    await c.api("PATCH", kexPath(ns), { spec: { field: "changed" } }, MERGE);
    await runner.waitForOutput("Updating is processed: 2 succeeded; 0 failed.", { timeout: 60 });
    await stopped(runner);
    let out = runner.output;
    assert.equal(printed(out, "CREATED 1st"), 1);
    assert.equal(printed(out, "CREATED 2nd"), 1);
    assert.ok(out.indexOf("CREATED 1st") < out.indexOf("CREATED 2nd"), "registration order");
    assert.equal(printed(out, "FIELD CHANGED: undefined -> value"), 1);
    assert.equal(printed(out, "FIELD CHANGED: value -> changed"), 1);
    assert.equal(printed(out, 'UPDATED: [["change",["spec","field"],"value","changed"]]'), 1);
    assert.equal(printed(out, "RESUMED 1st"), 0, "created while running: not resumed");

    runner = operator("05-handlers", ns);
    await runner.waitForOutput("Resuming is processed: 2 succeeded; 0 failed.", { timeout: 60 });
    await deleteAndWait(ns);
    await runner.waitForOutput("Deleted, really deleted", { timeout: 30 });
    await stopped(runner);
    out = runner.output;
    assert.equal(printed(out, "RESUMED 1st"), 1);
    assert.equal(printed(out, "RESUMED 2nd"), 1);
    assert.equal(printed(out, "DELETED 1st"), 1);
    assert.equal(printed(out, "DELETED 2nd"), 1);
    assert.equal(printed(out, "CREATED 1st"), 0, "succeeded handlers never run again");
    assert.equal(occurrences(out, ns, "Deletion is processed: 2 succeeded; 0 failed."), 1);
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 07-subhandlers: one sub-handler per item, once each", async () => {
  const ns = await c.namespace("e2e-07");
  const runner = operator("07-subhandlers", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    await runner.waitForOutput("Creation is processed: 1 succeeded; 0 failed.", { timeout: 60 });
    const obj = await waitFor(async () => {
      const o = await get(kexPath(ns));
      return o?.metadata.annotations?.["kopf.zalando.org/last-handled-configuration"] && o;
    }, { message: "the creation to be written" });
    const leftovers = Object.keys(obj?.metadata.annotations ?? {}).filter((k) =>
      k.startsWith("kopf.zalando.org/") && !k.endsWith("/last-handled-configuration")
    );
    assert.deepEqual(leftovers, [], "progress of sub-handlers is purged");
    await deleteAndWait(ns);
    await stopped(runner);
    const out = runner.output;
    assert.equal(printed(out, "=== Handling creation for item1. ==="), 1);
    assert.equal(printed(out, "=== Handling creation for item2. ==="), 1);
    assert.deepEqual(successes(out), {
      "create_fn/item1": 1,
      "create_fn/item2": 1,
      create_fn: 1,
    });
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 08-events: every raw event reaches the handlers; a failing one is ignored", async () => {
  const ns = await c.namespace("e2e-08");
  const runner = operator("08-events", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    // `null` when the operator lists the object at its start (Kopf's type of listed objects).
    await runner.waitForOutput(new RegExp(`Event received: (ADDED|null) ${NAME}`), {
      timeout: 60,
    });
    await c.api("PATCH", kexPath(ns), { spec: { field: "changed" } }, MERGE);
    await runner.waitForOutput(`Event received: MODIFIED ${NAME}`, { timeout: 60 });
    await deleteAndWait(ns);
    await runner.waitForOutput(`Event received: DELETED ${NAME}`, { timeout: 60 });
    await stopped(runner);
    const out = runner.output;
    assert.equal(
      occurrences(
        out,
        ns,
        "Handler 'event_fn_with_error' failed with an exception and will ignore it: Oops!",
      ),
      3,
      out,
    );
    assert.equal(occurrences(out, ns, "Creation is in progress"), 0, "no changing handlers");
    assert.equal(occurrences(out, ns, "Adding the finalizer"), 0);
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});

Deno.test("example 11-filtering-handlers: only the matching handlers run", async () => {
  const ns = await c.namespace("e2e-11");
  const runner = operator("11-filtering-handlers", ns);
  try {
    await c.apply(OBJ, { namespace: ns });
    await runner.waitForOutput("Creation is processed: 10 succeeded; 0 failed.", { timeout: 60 });
    await runner.waitForOutput("Field daemon is satisfied.", { timeout: 30 });
    await c.api("PATCH", kexPath(ns), { spec: { field: "changed" } }, MERGE);
    await runner.waitForOutput("Field change is satisfied.", { timeout: 60 });
    await deleteAndWait(ns);
    await runner.waitForOutput("Deleted, really deleted", { timeout: 30 });
    await stopped(runner);
    const out = runner.output;
    for (
      const text of [
        "Label is matching.",
        "Label is present.",
        "Label is absent.",
        "Label callback matching.",
        "Annotation is matching.",
        "Annotation is present.",
        "Annotation is absent.",
        "Filter satisfied.",
        "Field value is satisfied.",
        "Field presence is satisfied.",
        "Field change is satisfied.",
      ]
    ) {
      assert.equal(occurrences(out, ns, text), 1, `${text}\n${out.slice(-3000)}`);
    }
    for (
      const text of [
        "Annotation callback mismatch.",
        "Filter not satisfied.",
        "Field value is not satisfied.",
        "Field presence is not satisfied.",
      ]
    ) {
      assert.equal(occurrences(out, ns, text), 0, text);
    }
    assert.ok(occurrences(out, ns, "Field daemon is satisfied.") >= 1);
  } finally {
    await runner.stop();
    await cleanup(ns);
  }
});
