// The object logger (literal messages, the object reference, posting to Events) and the
// handlers' context objects.

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { changingContext, eventContext, objectLogger } from "../../src/handling/kwargs.ts";
import { Patch } from "../../src/handling/patch.ts";
import type { Resource } from "../../src/kube/resource.ts";

const BODY = {
  apiVersion: "kopf.dev/v1",
  kind: "KopfExample",
  metadata: { name: "ex", namespace: "ns", uid: "u-1", labels: { a: "b" } },
  spec: { size: 1 },
};

async function capture(fn: () => void): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["kopf"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], lowestLevel: "error" },
    ],
  });
  try {
    fn();
  } finally {
    await reset();
  }
  return records;
}

function text(record: LogRecord): string {
  return record.message.map((p) => String(p)).join("");
}

Deno.test("object logger: lone strings are literal, with the object reference as `object`", async () => {
  const records = await capture(() => {
    const logger = objectLogger(BODY);
    logger.info(`spec: ${JSON.stringify({ size: 1 })}`);
    logger.warn("a {placeholder} with properties", { placeholder: "value" });
  });
  assert.equal(text(records[0]), 'spec: {"size":1}');
  assert.equal(text(records[1]), "a value with properties");
  assert.deepEqual(records[0].category, ["kopf", "objects"]);
  assert.deepEqual(records[0].properties, {
    object: {
      namespace: "ns",
      name: "ex",
      uid: "u-1",
      kind: "KopfExample",
      apiVersion: "kopf.dev/v1",
    },
  });
});

Deno.test("object logger: posts Events at and above the level when asked to", async () => {
  const posted: string[] = [];
  await capture(() => {
    const logger = objectLogger(BODY, {
      level: "info",
      post: (level, message) => posted.push(`${level}: ${message}`),
    });
    logger.debug("hidden");
    logger.info("literal {braces}");
    logger.warning("templated {x}", { x: 1 });
    logger.error("failed", new Error("boom"));
    logger.with({ extra: true }).info("from a child logger");
  });
  assert.deepEqual(posted, [
    "info: literal {braces}",
    "warning: templated 1",
    "error: failed boom",
    "info: from a child logger",
  ]);
});

const RESOURCE = { group: "kopf.dev", version: "v1", plural: "kopfexamples" } as Resource;

Deno.test("changing context: Kopf's kwargs by their names", () => {
  const patch = new Patch();
  const signal = new AbortController().signal;
  const started = new Date(0);
  const context = changingContext({
    resource: RESOURCE,
    body: BODY,
    patch,
    logger: objectLogger(BODY),
    memo: { m: 1 },
    signal,
    param: "p",
    reason: "create",
    diff: [],
    old: undefined,
    new: { spec: { size: 1 } },
    retry: 2,
    started,
    runtime: 3,
    subhandlers: { subhandler: (() => {}) as never, register: (() => {}) as never },
  });
  assert.equal(context.name, "ex");
  assert.equal(context.namespace, "ns");
  assert.equal(context.uid, "u-1");
  assert.deepEqual(context.spec, { size: 1 });
  assert.deepEqual(context.status, {});
  assert.deepEqual(context.labels, { a: "b" });
  assert.deepEqual(context.annotations, {});
  assert.equal(context.meta, BODY.metadata);
  assert.equal(context.patch, patch);
  assert.equal(context.reason, "create");
  assert.equal(context.retry, 2);
  assert.equal(context.started, started);
  assert.equal(context.runtime, 3);
  assert.equal(context.param, "p");
  assert.deepEqual(context.memo, { m: 1 });
  assert.equal(context.signal, signal);
  assert.deepEqual(context.indices, {});
});

Deno.test("event context: the raw type (null for listings) and event", () => {
  const context = eventContext({
    resource: RESOURCE,
    body: BODY,
    patch: new Patch(),
    logger: objectLogger(BODY),
    memo: {},
    signal: new AbortController().signal,
    type: null,
    object: BODY,
  });
  assert.equal(context.type, null);
  assert.deepEqual(context.event, { type: null, object: BODY });
});
