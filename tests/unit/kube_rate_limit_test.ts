import assert from "node:assert/strict";
import { type Clock, InFlightLimit, TokenBucket } from "../../src/kube/rate_limit.ts";

/** A clock that only moves when told to; sleeping moves it (and records how long). */
class FakeClock implements Clock {
  time = 0;
  slept: number[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.slept.push(ms);
    this.time += ms;
    return Promise.resolve();
  }
}

Deno.test("TokenBucket lets a burst through, then paces at qps", () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 50, burst: 100, clock });
  for (let i = 0; i < 100; i++) assert.equal(bucket.reserve(), 0, `request ${i}`);
  // Reservations queue up behind each other: 20 ms apart at 50 qps.
  assert.equal(bucket.reserve(), 20);
  assert.equal(bucket.reserve(), 40);
  assert.equal(bucket.reserve(), 60);
  clock.time += 60;
  assert.ok(Math.abs(bucket.tokens) < 1e-9);
  clock.time += 1_000;
  assert.equal(bucket.tokens, 50);
});

Deno.test("TokenBucket never holds more than burst tokens", () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 5, clock });
  clock.time += 3_600_000;
  for (let i = 0; i < 5; i++) assert.equal(bucket.reserve(), 0);
  assert.equal(bucket.reserve(), 100);
});

Deno.test("TokenBucket.acquire() waits for its reservation and reports the wait", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 4, burst: 1, clock });
  assert.equal(await bucket.acquire(), 0);
  assert.equal(await bucket.acquire(), 250);
  assert.equal(await bucket.acquire(), 250);
  assert.deepEqual(clock.slept, [250, 250]);
  assert.equal(clock.time, 500);
});

Deno.test("TokenBucket gives the token back when the waiter aborts", async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 1, burst: 1, clock });
  bucket.reserve();
  const controller = new AbortController();
  controller.abort(new Error("gone"));
  await assert.rejects(bucket.acquire(controller.signal), /gone/);
  // A waiter whose sleep is interrupted returns its token.
  const slow = new TokenBucket({
    qps: 1,
    burst: 1,
    clock: {
      now: () => clock.time,
      sleep: () => Promise.reject(new Error("interrupted")),
    },
  });
  slow.reserve();
  await assert.rejects(slow.acquire(), /interrupted/);
  assert.equal(slow.tokens, 0);
  assert.equal(slow.reserve(), 1_000);
});

Deno.test("TokenBucket with qps 0 is off", async () => {
  const bucket = new TokenBucket({ qps: 0, burst: 1, clock: new FakeClock() });
  assert.equal(bucket.enabled, false);
  for (let i = 0; i < 1_000; i++) assert.equal(await bucket.acquire(), 0);
  assert.throws(() => new TokenBucket({ qps: -1, burst: 1 }), RangeError);
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
