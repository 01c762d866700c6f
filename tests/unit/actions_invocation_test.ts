// Invoking user code: deadlines, stops, sync and async throws, adopt() defaults.

import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import { HandlerTimeoutError } from "../../src/actions/errors.ts";
import { invoke } from "../../src/actions/invocation.ts";
import { currentBody } from "../../src/kits/hierarchies.ts";

const BODY = {
  apiVersion: "v1",
  kind: "Thing",
  metadata: { name: "x", namespace: "ns", uid: "u" },
};

function options(extra: Partial<Parameters<typeof invoke>[2]> = {}) {
  return {
    title: "Handler 'fn'",
    logger: recordingLogger([]),
    body: BODY,
    signal: new AbortController().signal,
    controller: new AbortController(),
    ...extra,
  };
}

Deno.test("invoke: sync and async handlers, their results and throws", async () => {
  assert.equal(await invoke(() => 1, {}, options()), 1);
  assert.equal(await invoke(async () => await Promise.resolve(2), {}, options()), 2);
  await assert.rejects(
    invoke(
      () => {
        throw "a string";
      },
      {},
      options(),
    ),
    (e) => e === "a string",
  );
  await assert.rejects(invoke(() => Promise.reject(new Error("async")), {}, options()), /async/);
});

Deno.test("invoke: the object being handled is the default owner for kopf.adopt()", async () => {
  const seen = await invoke(() => currentBody.getStore(), {}, options());
  assert.equal(seen, BODY);
  assert.equal(currentBody.getStore(), undefined);
});

Deno.test("invoke: a handler that never resolves times out and its signal is aborted", async () => {
  const controller = new AbortController();
  await assert.rejects(
    invoke(() => new Promise(() => {}), {}, options({ timeout: 0.05, controller })),
    (error) =>
      error instanceof HandlerTimeoutError &&
      /^Handler 'fn' has timed out after 0:00:00\.\d+ of this attempt\.$/.test(error.message),
  );
  assert.ok(controller.signal.aborted);
});

Deno.test("invoke: an operator stop stops waiting", async () => {
  const stop = new AbortController();
  const pending = invoke(() => new Promise(() => {}), {}, options({ signal: stop.signal }));
  stop.abort(new Error("stopping"));
  await assert.rejects(pending, /stopping/);
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
