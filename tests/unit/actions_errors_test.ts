// Error outcomes and progression, as Kopf's execute_handler_once and HandlerState.

import assert from "node:assert/strict";
import {
  checkLimits,
  errorMessage,
  type ErrorPolicy,
  evaluateOutcome,
  formatRuntime,
  HandlerChildrenRetry,
  HandlerRetriesError,
  HandlerTimeoutError,
  type OutcomeInput,
  PermanentError,
  TemporaryError,
} from "../../src/actions/errors.ts";
import { deliverResults } from "../../src/actions/application.ts";
import {
  formatIso8601,
  HandlerState,
  parseIso8601,
  State,
} from "../../src/handling/progression.ts";
import type { JsonObject } from "../../src/storage/fields.ts";
import { AnnotationsProgressStorage } from "../../src/storage/progress.ts";

const started = new Date("2026-01-01T00:00:00Z");
const at = (seconds: number) => new Date(started.getTime() + seconds * 1000);
const policy: ErrorPolicy = { title: "Handler 'fn'" };

function outcome(
  extra: Partial<OutcomeInput> & { error?: unknown },
  p: ErrorPolicy = policy,
  retries = 0,
  now = at(0),
) {
  return evaluateOutcome({
    policy: p,
    state: { retries, started },
    now,
    defaultErrors: "temporary",
    defaultBackoff: 60,
    threw: "error" in extra,
    ...extra,
  });
}

Deno.test("success is final with the result and Kopf's message", () => {
  const o = outcome({ result: { a: 1 } });
  assert.equal(o.final, true);
  assert.deepEqual(o.result, { a: 1 });
  assert.equal(o.error, undefined);
  assert.deepEqual(o.log, { level: "info", message: "Handler 'fn' succeeded.", withStack: false });
});

Deno.test("temporary errors retry after their delay (default 60, null = next cycle)", () => {
  const o = outcome({ error: new TemporaryError("not yet", { delay: 10 }) });
  assert.equal(o.final, false);
  assert.equal(o.delay, 10);
  assert.equal(o.log.message, "Handler 'fn' failed temporarily: not yet");
  assert.equal(new TemporaryError("x").delay, 60);
  assert.equal(outcome({ error: new TemporaryError("x", { delay: null }) }).delay, null);
});

Deno.test("temporary errors look ahead: timeout and retries become permanent failures now", () => {
  const timing = outcome(
    { error: new TemporaryError("slow", { delay: 30 }) },
    { ...policy, timeout: 100 },
    1,
    at(70),
  );
  assert.equal(timing.final, true);
  assert.ok(timing.error instanceof HandlerTimeoutError);
  assert.ok(timing.error instanceof PermanentError);
  assert.equal(
    timing.log.message,
    "Handler 'fn' failed temporarily but will time out after 100 seconds: slow",
  );

  const justBefore = outcome(
    { error: new TemporaryError("slow", { delay: 30 }) },
    { ...policy, timeout: 100 },
    1,
    at(69),
  );
  assert.equal(justBefore.final, false);

  const counting = outcome({ error: new TemporaryError("again") }, { ...policy, retries: 3 }, 2);
  assert.ok(counting.error instanceof HandlerRetriesError);
  assert.equal(
    counting.log.message,
    "Handler 'fn' failed temporarily but will exceed 3 retries: again",
  );
  assert.equal(
    outcome({ error: new TemporaryError("again") }, { ...policy, retries: 3 }, 1).final,
    false,
  );
});

Deno.test("permanent errors fail without retries", () => {
  const o = outcome({ error: new PermanentError("broken") });
  assert.equal(o.final, true);
  assert.equal(o.log.message, "Handler 'fn' failed permanently: broken");
  assert.equal(o.log.withStack, false);
});

Deno.test("arbitrary errors follow the errors mode, with backoff and look-ahead", () => {
  const temporary = outcome({ error: new Error("boom") });
  assert.equal(temporary.final, false);
  assert.equal(temporary.delay, 60);
  assert.equal(
    temporary.log.message,
    "Handler 'fn' failed with an exception and will try again in 60 seconds: boom",
  );
  assert.equal(temporary.log.withStack, true);

  const backoff = outcome({ error: new Error("boom") }, { ...policy, backoff: 5 });
  assert.equal(backoff.delay, 5);

  const permanent = outcome({ error: new Error("boom") }, { ...policy, errors: "permanent" });
  assert.equal(permanent.final, true);
  assert.equal(
    permanent.log.message,
    "Handler 'fn' failed with an exception and will stop now: boom",
  );

  const ignored = outcome({ error: new Error("boom") }, { ...policy, errors: "ignored" });
  assert.equal(ignored.final, true);
  assert.equal(ignored.error, undefined, "ignored errors count as success");
  assert.equal(
    ignored.log.message,
    "Handler 'fn' failed with an exception and will ignore it: boom",
  );

  const timeout = outcome({ error: new Error("boom") }, { ...policy, timeout: 60 });
  assert.ok(timeout.error instanceof HandlerTimeoutError);
  assert.match(timeout.log.message, /it would time out in 60 seconds on the next attempt/);

  const retries = outcome({ error: new Error("boom") }, { ...policy, retries: 1 });
  assert.ok(retries.error instanceof HandlerRetriesError);
  assert.match(retries.log.message, /it would exceed 1 retries on the next attempt/);
});

Deno.test("non-Error throwables are handled as arbitrary errors", () => {
  const o = outcome({ error: "a string" });
  assert.equal(o.final, false);
  assert.ok(o.error instanceof Error);
  assert.equal(o.error.message, "a string");
  assert.equal(outcome({ error: { code: 7 } }).error?.message, '{"code":7}');
  assert.equal(outcome({ error: undefined }).final, false);
  assert.equal(errorMessage(new TemporaryError()), "TemporaryError()");
});

Deno.test("unfinished sub-handlers retry quietly", () => {
  const o = outcome({ error: new HandlerChildrenRetry(undefined, { delay: 5 }) });
  assert.equal(o.final, false);
  assert.equal(o.delay, 5);
  assert.equal(o.log.level, "debug");
});

Deno.test("strict limits fail before invoking (e.g. after downtime)", () => {
  assert.equal(
    checkLimits({ ...policy, timeout: 10, retries: 3 }, { retries: 2, started }, at(9)),
    null,
  );
  const t = checkLimits({ ...policy, timeout: 10 }, { retries: 0, started }, at(65.25));
  assert.ok(t instanceof HandlerTimeoutError);
  assert.equal(t.message, "Handler 'fn' has timed out after 0:01:05.250000.");
  const r = checkLimits({ ...policy, retries: 3 }, { retries: 3, started }, at(0));
  assert.ok(r instanceof HandlerRetriesError);
  assert.equal(r.message, "Handler 'fn' has exceeded 3 retries.");
  // And the outcome of such an error is a plain permanent failure with its own message.
  assert.equal(outcome({ error: r }).log.message, r.message);
  assert.equal(formatRuntime(90061.5), "1 day, 1:01:01.500000");
});

Deno.test("timestamps are written as Kopf writes them and read in all Kopf formats", () => {
  assert.equal(
    formatIso8601(new Date("2020-02-14T16:58:25.396Z")),
    "2020-02-14T16:58:25.396000+00:00",
  );
  const expected = new Date("2020-02-14T16:58:25.396Z").getTime();
  for (
    const text of [
      "2020-02-14T16:58:25.396364+00:00",
      "2020-02-14T16:58:25.396364",
      "2020-02-14T16:58:25.396Z",
      "2020-02-14T18:58:25.396364+02:00",
    ]
  ) {
    assert.equal(parseIso8601(text)?.getTime(), expected, text);
  }
  assert.equal(parseIso8601("garbage"), null);
  assert.equal(parseIso8601(null), null);
});

Deno.test("handler state advances with outcomes and round-trips through storage", () => {
  const fresh = HandlerState.fromScratch(at(0), "create");
  assert.ok(fresh.isAwakened(at(0)));
  const retrying = fresh.withOutcome(
    outcome({ error: new TemporaryError("x", { delay: 30 }) }),
    at(1),
  );
  assert.equal(retrying.retries, 1);
  assert.equal(retrying.message, "x");
  assert.ok(retrying.isSleeping(at(30)));
  assert.ok(retrying.isAwakened(at(31)));
  assert.deepEqual(retrying.asStored(), {
    started: "2026-01-01T00:00:00.000000+00:00",
    delayed: "2026-01-01T00:00:31.000000+00:00",
    purpose: "create",
    retries: 1,
    success: false,
    failure: false,
    message: "x",
  });
  const restored = HandlerState.fromRecord(retrying.asStored(), at(100));
  assert.equal(restored.started.getTime(), started.getTime());
  assert.equal(restored.retries, 1);
  const done = restored.withOutcome(outcome({ result: 1 }), at(40));
  assert.ok(done.success && done.finished);
  assert.equal(done.stopped?.getTime(), at(40).getTime());
  assert.equal(done.delayed, null);
  assert.equal(done.message, null);
});

Deno.test("state stores only changed records, purges own and sub-handlers, and reports delays", () => {
  const storage = new AnnotationsProgressStorage();
  const stored = HandlerState.fromScratch(at(0), "create").asStored();
  const body = {
    metadata: {
      annotations: {
        "kopf.zalando.org/a": JSON.stringify(stored),
        "kopf.zalando.org/old": JSON.stringify({ ...stored, purpose: "update" }),
      },
    },
  };
  let state = State.fromStorage(body, storage, ["a", "b", "old"], at(5)).withPurpose("create");
  assert.deepEqual([...state.extras.keys()], ["update"]);
  state = state.withHandlers(["a", "b"], at(5));
  assert.equal(state.done, false);

  const patch: JsonObject = {};
  state.store(body, patch, storage);
  const annotations = (patch.metadata as JsonObject).annotations as JsonObject;
  assert.deepEqual(
    Object.keys(annotations),
    ["kopf.zalando.org/b"],
    "unchanged records are not rewritten",
  );

  const outcomes = new Map([
    ["a", outcome({ result: { x: 1 }, subrefs: ["a/sub"] })],
    ["b", outcome({ error: new TemporaryError("later", { delay: 20 }) })],
  ]);
  state = state.withOutcomes(outcomes, at(6));
  assert.deepEqual(state.delays(at(6)), [20]);
  assert.equal(state.delay(at(16)), 10);
  assert.deepEqual(state.counts, { success: 1, failure: 0, running: 1 });

  const purge: JsonObject = {};
  state.purge(body, purge, storage, ["a", "b"]);
  assert.deepEqual((purge.metadata as JsonObject).annotations, {
    "kopf.zalando.org/a": null,
    "kopf.zalando.org/old": null,
  });

  const results: JsonObject = { status: { a: { y: 2 } } };
  deliverResults(outcomes, results);
  assert.deepEqual(results, { status: { a: { y: 2, x: 1 } } });
  const scalar: JsonObject = {};
  deliverResults(
    new Map([["c", outcome({ result: "text" })], ["d", outcome({ result: undefined })]]),
    scalar,
  );
  assert.deepEqual(scalar, { status: { c: "text" } });
});

Deno.test("records written by Kopf (microseconds) read back unchanged and are not rewritten", () => {
  const storage = new AnnotationsProgressStorage();
  const record = {
    started: "2026-01-02T03:04:05.123456+00:00",
    delayed: "2026-01-02T03:14:05.654321+00:00",
    purpose: "create",
    retries: 1,
    success: false,
    failure: false,
    message: "not yet",
  };
  const body = { metadata: { annotations: { "kopf.zalando.org/fn": JSON.stringify(record) } } };
  const state = State.fromStorage(body, storage, ["fn"], at(0)).withPurpose("create").withHandlers([
    "fn",
  ], at(0));
  assert.deepEqual(state.get("fn")!.asStored(), record);
  const patch: JsonObject = {};
  state.store(body, patch, storage);
  assert.deepEqual(patch, {});
});
