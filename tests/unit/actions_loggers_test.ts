// The object logger: literal messages, the object reference, posting to Events.

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { objectLogger } from "../../src/actions/loggers.ts";

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
  const error = new Error("boom");
  await capture(() => {
    const logger = objectLogger(BODY, {
      level: "info",
      post: (level, message) => posted.push(`${level}: ${message}`),
    });
    logger.debug("hidden");
    logger.info("literal {braces}");
    logger.warning("templated {x}", { x: 1 });
    logger.error("failed", error);
    logger.error("Handler failed: {error}", { error });
    logger.with({ extra: true }).info("from a child logger");
  });
  assert.deepEqual(posted, [
    "info: literal {braces}",
    "warning: templated 1",
    // Kopf's `logger.exception()` posts the traceback after the message; here, the stack.
    `error: failed boom\n${error.stack}`,
    `error: Handler failed: boom\n${error.stack}`,
    "info: from a child logger",
  ]);
});
