// One attempt of a handler and its outcome, with Kopf's log lines; JSON results.

import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import { PermanentError, TemporaryError } from "../../src/actions/errors.ts";
import { execute, jsonResult } from "../../src/actions/execution.ts";
import type { HandlerRecordBase } from "../../src/registry/records.ts";

Deno.test("jsonResult: JSON values pass, the rest is refused with a reason", () => {
  assert.deepEqual(jsonResult({ a: [1, "b"] }), { ok: true, value: { a: [1, "b"] } });
  assert.deepEqual(jsonResult(new Date(0)), { ok: true, value: "1970-01-01T00:00:00.000Z" });
  assert.deepEqual(jsonResult(undefined), { ok: true, value: undefined });
  assert.equal(jsonResult(() => 1).ok, false);
  assert.equal(jsonResult(Symbol("s")).ok, false);
  assert.equal(jsonResult(10n).ok, false);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.deepEqual(jsonResult(cyclic), { ok: false, reason: "a cyclic structure" });
  assert.deepEqual(jsonResult(new Map()), { ok: false, reason: "a Map" });
  assert.deepEqual(jsonResult({ nested: [new Set()] }), { ok: false, reason: "a Set" });
  assert.deepEqual(jsonResult({ n: 10n }), { ok: false, reason: "a bigint" });
  assert.deepEqual(jsonResult(Object.create(null)), { ok: true, value: {} });
});

function recordingLogger(lines: string[]): Logger {
  const log = (level: string) => (message: string) => lines.push(`${level}: ${message}`);
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  } as unknown as Logger;
}

function handler(extra: Partial<HandlerRecordBase> = {}): HandlerRecordBase {
  return { id: "fn", fn: () => {}, param: undefined, title: "Handler 'fn'", source: "", ...extra };
}

function execOptions(lines: string[], extra: Partial<Parameters<typeof execute>[1]> = {}) {
  return {
    handler: handler(),
    state: { retries: 0, started: new Date() },
    defaultErrors: "temporary" as const,
    defaultBackoff: 60,
    storedResult: true,
    logger: recordingLogger(lines),
    signal: new AbortController().signal,
    ...extra,
  };
}

Deno.test("execute: success, temporary, permanent and arbitrary errors, as Kopf logs them", async () => {
  const lines: string[] = [];
  const ok = await execute(() => Promise.resolve({ a: 1 }), execOptions(lines));
  assert.deepEqual([ok.final, ok.result], [true, { a: 1 }]);
  const temporary = await execute(
    () => Promise.reject(new TemporaryError("later", { delay: 5 })),
    execOptions(lines),
  );
  assert.deepEqual([temporary.final, temporary.delay], [false, 5]);
  const permanent = await execute(
    () => Promise.reject(new PermanentError("never")),
    execOptions(lines),
  );
  assert.deepEqual([permanent.final, permanent.error?.message], [true, "never"]);
  const arbitrary = await execute(() => Promise.reject("text"), execOptions(lines));
  assert.deepEqual([arbitrary.final, arbitrary.delay], [false, 60]);
  assert.deepEqual(lines, [
    "debug: Handler 'fn' is invoked.",
    "info: Handler 'fn' succeeded.",
    "debug: Handler 'fn' is invoked.",
    "error: Handler 'fn' failed temporarily: later",
    "debug: Handler 'fn' is invoked.",
    "error: Handler 'fn' failed permanently: never",
    "debug: Handler 'fn' is invoked.",
    "error: Handler 'fn' failed with an exception and will try again in 60 seconds: text",
  ]);
});

Deno.test("execute: a handler out of attempts fails without being called", async () => {
  const lines: string[] = [];
  let called = false;
  const outcome = await execute(
    () => {
      called = true;
      return Promise.resolve();
    },
    execOptions(lines, {
      handler: handler({ retries: 2 }),
      state: { retries: 2, started: new Date() },
    }),
  );
  assert.equal(called, false);
  assert.equal(outcome.final, true);
  assert.match(outcome.error!.message, /has exceeded 2 retries/);
});

Deno.test("execute: Kopf's timeout never aborts a running attempt; a slow success succeeds", async () => {
  const lines: string[] = [];
  const started = new Date(Date.now() - 1000);
  const outcome = await execute(
    () => new Promise((resolve) => setTimeout(() => resolve("late"), 30)),
    execOptions(lines, { handler: handler({ timeout: 1.01 }), state: { retries: 0, started } }),
  );
  assert.deepEqual([outcome.final, outcome.error, outcome.result], [true, undefined, "late"]);
});

Deno.test("execute: a result that cannot be stored is the handler's error, by its policy", async () => {
  const lines: string[] = [];
  const outcome = await execute(
    () => Promise.resolve({ tags: new Set(["a"]) }),
    execOptions(lines, { handler: handler({ backoff: 10 }) }),
  );
  assert.deepEqual([outcome.final, outcome.delay, outcome.result], [false, 10, undefined]);
  assert.equal(
    lines.at(-1),
    "error: Handler 'fn' failed with an exception and will try again in 10 seconds: " +
      "Handler 'fn' returned a result that cannot be stored as JSON: a Set.",
  );
});

Deno.test("execute: an attempt aborted by an operator stop leaves no outcome", async () => {
  const stop = new AbortController();
  stop.abort();
  await assert.rejects(
    execute(
      () => Promise.reject(new Error("aborted")),
      execOptions([], { signal: stop.signal }),
    ),
    /aborted/,
  );
});

Deno.test("execute: any thrown value goes through the handler's policy with a one-line text", async () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const hostileError = new Error("x");
  Object.defineProperty(hostileError, "message", {
    get() {
      throw new Error("message getter");
    },
  });
  const hostile = [
    [{
      get message(): string {
        throw new Error("getter");
      },
      toString(): string {
        throw new Error("toString");
      },
    }, "a thrown Object"],
    [Symbol("sym"), "Symbol(sym)"],
    [cyclic, "[object Object]"],
    [10n, "10"],
    [null, "null"],
    [undefined, "undefined"],
    [hostileError, "Error()"],
    [
      new Proxy({}, {
        getPrototypeOf() {
          throw new Error("trap");
        },
        get() {
          throw new Error("trap");
        },
        ownKeys() {
          throw new Error("trap");
        },
      }),
      "an unprintable thrown value",
    ],
  ] as const;
  for (const [value, text] of hostile) {
    const lines: string[] = [];
    const outcome = await execute(
      () => Promise.reject(value),
      execOptions(lines, { handler: handler({ backoff: 30 }) }),
    );
    assert.deepEqual([outcome.final, outcome.delay], [false, 30], String(text));
    assert.equal(typeof outcome.error?.message, "string");
    assert.equal(
      lines.at(-1),
      `error: Handler 'fn' failed with an exception and will try again in 30 seconds: ${text}`,
    );
  }
});
