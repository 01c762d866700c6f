import assert from "node:assert/strict";
import { getLogger, type LogRecord, reset } from "@logtape/logtape";
import {
  configureLogging,
  formatRecord,
  levelOf,
  objectRefOf,
  renderMessage,
} from "../../src/actions/logging.ts";

function record(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    category: ["kopf", "objects"],
    level: "info",
    message: ["Handler ", "'create_fn'", " succeeded."],
    rawMessage: "Handler {id} succeeded.",
    timestamp: Date.UTC(2024, 0, 31, 12, 34, 56, 789),
    properties: {},
    ...overrides,
  };
}

const objectProps = {
  object: {
    namespace: "ns1",
    name: "obj1",
    uid: "u-1",
    kind: "KopfExample",
    apiVersion: "kopf.dev/v1",
  },
};

Deno.test("plain is the message alone, with the [namespace/name] prefix for objects", () => {
  assert.equal(formatRecord(record(), "plain"), "Handler 'create_fn' succeeded.");
  assert.equal(
    formatRecord(record({ properties: objectProps }), "plain"),
    "[ns1/obj1] Handler 'create_fn' succeeded.",
  );
  assert.equal(
    formatRecord(
      record({ properties: { object: { name: "cluster-obj", kind: "Namespace" } } }),
      "plain",
    ),
    "[cluster-obj] Handler 'create_fn' succeeded.",
  );
  assert.equal(
    formatRecord(record({ properties: objectProps }), "plain", { prefix: false }),
    "Handler 'create_fn' succeeded.",
  );
});

Deno.test("full is Kopf's [asctime] name-20 [LEVEL-8] message", () => {
  const line = formatRecord(record({ properties: objectProps, level: "warning" }), "full");
  assert.match(
    line,
    /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] kopf\.objects {9}\[WARNING \] \[ns1\/obj1\] Handler/,
  );
  const long = formatRecord(record({ category: ["kopf", "a-very-long-category-name"] }), "full");
  assert.match(long, /\] kopf\.a-very-long-cat \[INFO {4}\] /);
  assert.match(formatRecord(record({ level: "fatal" }), "full"), /\[CRITICAL\]/);
});

Deno.test("json carries severity, timestamp, logger, message and the object reference", () => {
  const line = JSON.parse(
    formatRecord(record({ properties: { ...objectProps, attempt: 2 } }), "json"),
  );
  assert.deepEqual(line, {
    timestamp: "2024-01-31T12:34:56.789Z",
    severity: "info",
    logger: "kopf.objects",
    message: "Handler 'create_fn' succeeded.",
    attempt: 2,
    object: {
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      namespace: "ns1",
      name: "obj1",
      uid: "u-1",
    },
  });
  const custom = JSON.parse(
    formatRecord(record({ properties: objectProps }), "json", { refKey: "k8s" }),
  );
  assert.equal(custom.k8s.name, "obj1");
  assert.equal(custom.object, undefined);
  assert.equal(JSON.parse(formatRecord(record({ level: "warning" }), "json")).severity, "warn");
  assert.equal(JSON.parse(formatRecord(record({ level: "trace" }), "json")).severity, "debug");
});

Deno.test("json renders errors as their stack and never throws on odd values", () => {
  const error = new Error("boom");
  const line = JSON.parse(
    formatRecord(record({ properties: { error, big: 10n, fn: () => 1 } }), "json"),
  );
  assert.match(line.error, /^Error: boom\n/);
  assert.equal(line.big, "10");
  assert.equal(typeof line.fn, "string");
});

Deno.test("an object nested under `object` is the reference; a bare name is not", () => {
  assert.deepEqual(objectRefOf({ properties: { object: { name: "x", namespace: "y" } } }), {
    name: "x",
    namespace: "y",
  });
  assert.equal(objectRefOf({ properties: { name: "handler-name" } }), undefined);
  assert.equal(objectRefOf({ properties: {} }), undefined);
});

Deno.test("messages render values like Deno.inspect, errors by their message", () => {
  assert.equal(
    renderMessage({ message: ["a ", { x: 1 }, " b ", new Error("bad"), ""] }),
    "a { x: 1 } b bad",
  );
});

Deno.test("levels: -q WARNING, default INFO, -v and -d DEBUG", () => {
  assert.equal(levelOf("quiet"), "warning");
  assert.equal(levelOf("normal"), "info");
  assert.equal(levelOf("verbose"), "debug");
  assert.equal(levelOf("debug"), "debug");
});

Deno.test("configureLogging filters by verbosity and holds internals back under -v", async () => {
  const lines: string[] = [];
  const emit = () => {
    getLogger(["kopf", "objects"]).debug("object debug");
    getLogger(["kopf", "watch"]).debug("watch debug");
    getLogger(["kopf", "watch"]).info("watch info");
    getLogger(["my-operator"]).info("user info");
    getLogger(["my-operator"]).warn("user warning");
  };
  try {
    const seen: Record<string, string[]> = {};
    for (const verbosity of ["quiet", "normal", "verbose", "debug"] as const) {
      lines.length = 0;
      configureLogging({ format: "plain", verbosity, write: (line) => lines.push(line) });
      emit();
      seen[verbosity] = [...lines];
    }
    assert.deepEqual(seen.quiet, ["user warning"]);
    assert.deepEqual(seen.normal, ["watch info", "user info", "user warning"]);
    assert.deepEqual(seen.verbose, ["object debug", "watch info", "user info", "user warning"]);
    assert.deepEqual(seen.debug, [
      "object debug",
      "watch debug",
      "watch info",
      "user info",
      "user warning",
    ]);
  } finally {
    await reset();
  }
});
