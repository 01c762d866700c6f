import assert from "node:assert/strict";
import {
  InFlightLimit,
  type RateChange,
  type RateOutcome,
  TokenBucket,
} from "../../src/kube/rate_limit.ts";
import { FakeClock, settle } from "../support/fake_clock.ts";

/** Starts `count` acquisitions and records when (in clock time) each resolves. */
function acquireMany(bucket: TokenBucket, clock: FakeClock, count: number) {
  const done: { at: number; waited: number }[] = [];
  for (let i = 0; i < count; i++) {
    bucket.acquire().then((waited) => done.push({ at: clock.now(), waited }));
  }
  return done;
}

/** Advances the clock in steps, letting resolved waiters' continuations run in between. */
async function advance(clock: FakeClock, ms: number, step = 10): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await settle();
  }
}

Deno.test("TokenBucket lets a burst through, then paces at qps, first come first served", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 50, burst: 100, clock });
  for (let i = 0; i < 100; i++) assert.equal(await bucket.acquire(), 0, `request ${i}`);
  const done = acquireMany(bucket, clock, 3);
  await settle();
  assert.equal(done.length, 0);
  assert.equal(bucket.waiting, 3);
  await advance(clock, 60, 20);
  // 20 ms apart at 50 QPS, in the order they asked.
  assert.deepEqual(done.map((d) => d.waited), [20, 40, 60]);
  assert.ok(Math.abs(bucket.tokens) < 1e-9);
  clock.advance(1_000);
  assert.equal(bucket.tokens, 50);
});

Deno.test("TokenBucket never holds more than burst tokens", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 5, clock });
  clock.advance(3_600_000);
  for (let i = 0; i < 5; i++) assert.equal(await bucket.acquire(), 0);
  const done = acquireMany(bucket, clock, 1);
  await advance(clock, 100);
  assert.deepEqual(done.map((d) => d.waited), [100]);
});

Deno.test("TokenBucket drops an aborted waiter from the line", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 1, burst: 1, clock });
  await bucket.acquire();
  const aborted = new AbortController();
  aborted.abort(new Error("gone"));
  await assert.rejects(bucket.acquire(aborted.signal), /gone/);
  const controller = new AbortController();
  const first = bucket.acquire(controller.signal);
  const done = acquireMany(bucket, clock, 1);
  controller.abort(new Error("gave up"));
  await assert.rejects(first, /gave up/);
  assert.equal(bucket.waiting, 1);
  // The one behind it gets the first token, not the second.
  await advance(clock, 1_000, 100);
  assert.deepEqual(done.map((d) => d.waited), [1_000]);
});

Deno.test("TokenBucket with qps 0 is off", async () => {
  const bucket = new TokenBucket({ qps: 0, burst: 1, clock: new FakeClock() });
  assert.equal(bucket.enabled, false);
  for (let i = 0; i < 1_000; i++) assert.equal(await bucket.acquire(), 0);
  assert.throws(() => new TokenBucket({ qps: -1, burst: 1 }), RangeError);
  assert.throws(() => new TokenBucket({ qps: 10, burst: 1, maxQps: 5 }), RangeError);
});

/** Keeps `depth` callers waiting on the bucket, answering each released one with `outcome()`. */
function saturate(bucket: TokenBucket, depth: number, outcome: () => RateOutcome) {
  const state = { stopped: false, sent: 0 };
  const caller = async () => {
    while (!state.stopped) {
      await bucket.acquire();
      state.sent++;
      bucket.observe(outcome());
    }
  };
  for (let i = 0; i < depth; i++) caller();
  return state;
}

/** A 10→80 QPS bucket after 3 s of 20 waiting callers that the server answered "ok". */
async function rampedUp() {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 1, maxQps: 80, clock });
  const changes: RateChange[] = [];
  bucket.onRateChange = (change) => changes.push(change);
  const load = saturate(bucket, 20, () => "ok");
  await advance(clock, 3_000);
  load.stopped = true;
  return { clock, bucket, changes, load };
}

Deno.test("TokenBucket doubles its rate while callers wait and the server does not throttle", async () => {
  const { bucket, changes, load } = await rampedUp();
  assert.deepEqual(changes.map((c) => c.to), [20, 40, 80], "doubling, then capped at maxQps");
  assert.ok(changes.every((c) => c.cause === "unthrottled"));
  assert.equal(bucket.qps, 80);
  assert.ok(load.sent > 10 * 3, `more than the base rate got through: ${load.sent}`);
});

Deno.test("TokenBucket with maxQps = qps keeps a fixed rate", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 1, clock });
  const load = saturate(bucket, 20, () => "ok");
  await advance(clock, 3_000);
  load.stopped = true;
  assert.equal(bucket.qps, 10);
  assert.ok(load.sent <= 31, `held to 10 QPS: ${load.sent}`);
});

Deno.test("TokenBucket halves its rate on throttling and holds off raising it for 10 s", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 1, maxQps: 80, clock });
  let answer: RateOutcome = "ok";
  const load = saturate(bucket, 20, () => answer);
  await advance(clock, 3_000);
  assert.equal(bucket.qps, 80);
  answer = "throttled";
  await advance(clock, 200);
  answer = "ok";
  assert.equal(bucket.qps, 10, "halved on every 429, down to qps but not below");
  await advance(clock, 9_000);
  assert.equal(bucket.qps, 10, "no raise within 10 s of a 429");
  await advance(clock, 2_000);
  assert.ok(bucket.qps > 10, "raised again after the hold");
  load.stopped = true;
});

Deno.test("TokenBucket does not raise its rate in a window with server errors", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 1, maxQps: 80, clock });
  const load = saturate(bucket, 20, () => "failed");
  await advance(clock, 3_000);
  load.stopped = true;
  assert.equal(bucket.qps, 10);
});

Deno.test("TokenBucket does not raise its rate when nobody waits", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 10, maxQps: 80, clock });
  for (let second = 0; second < 5; second++) {
    for (let i = 0; i < 5; i++) {
      await bucket.acquire();
      bucket.observe("ok");
    }
    await advance(clock, 1_000, 250);
  }
  assert.equal(bucket.qps, 10);
});

Deno.test("TokenBucket returns to qps once demand stays below it for 30 s", async () => {
  const { clock, bucket, changes } = await rampedUp();
  await advance(clock, 2_000, 100);
  assert.equal(bucket.qps, 80);
  // Demand of 2 per second, well under qps, for over 30 s.
  for (let second = 0; second < 62; second++) {
    acquireMany(bucket, clock, 2);
    await advance(clock, 1_000, 100);
  }
  assert.equal(bucket.qps, 10);
  assert.equal(changes.at(-1)?.cause, "quiet");
});

Deno.test("TokenBucket serves waiting callers sooner when its rate is raised", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 1, burst: 1, maxQps: 2, clock });
  await bucket.acquire();
  const done = acquireMany(bucket, clock, 1);
  await advance(clock, 500);
  bucket.observe("ok"); // a half-second window with a waiter and no throttling: 1 → 2 QPS
  assert.equal(bucket.qps, 2);
  await advance(clock, 1_000);
  // Half a token earned at 1 QPS, the other half at 2 QPS: 750 ms, not 1,000.
  assert.deepEqual(done.map((d) => d.waited), [750]);
});

Deno.test("InFlightLimit caps concurrency and serves waiters first-come-first-served", async () => {
  const limit = new InFlightLimit(2);
  const a = await limit.acquire();
  const b = await limit.acquire();
  assert.equal(limit.active, 2);
  const order: string[] = [];
  const c = limit.acquire().then((release) => (order.push("c"), release));
  const d = limit.acquire().then((release) => (order.push("d"), release));
  await Promise.resolve();
  assert.equal(limit.waiting, 2);
  assert.deepEqual(order, []);
  a();
  a(); // releasing twice is harmless
  const releaseC = await c;
  assert.deepEqual(order, ["c"]);
  assert.equal(limit.active, 2);
  b();
  const releaseD = await d;
  assert.deepEqual(order, ["c", "d"]);
  releaseC();
  releaseD();
  assert.equal(limit.active, 0);
});

Deno.test("InFlightLimit drops an aborted waiter from the line", async () => {
  const limit = new InFlightLimit(1);
  const first = await limit.acquire();
  const controller = new AbortController();
  const aborted = limit.acquire(controller.signal);
  const next = limit.acquire();
  controller.abort(new Error("cancelled"));
  await assert.rejects(aborted, /cancelled/);
  assert.equal(limit.waiting, 1);
  first();
  (await next)();
  assert.equal(limit.active, 0);
});

Deno.test("InFlightLimit(0) means no cap", async () => {
  const limit = new InFlightLimit(0);
  const releases = await Promise.all(Array.from({ length: 1_000 }, () => limit.acquire()));
  assert.equal(limit.active, 1_000);
  releases.forEach((release) => release());
  assert.equal(limit.active, 0);
});
