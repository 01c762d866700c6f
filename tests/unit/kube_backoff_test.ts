import assert from "node:assert/strict";
import { Backoff, backoffCeiling, backoffDelay, REQUEST_BACKOFF } from "../../src/kube/backoff.ts";
import { sleep } from "../../src/kube/time.ts";

const POLICY = { initialMs: 100, factor: 2, maxMs: 1_000 };

Deno.test("backoffCeiling() grows exponentially up to the cap", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 50].map((n) => backoffCeiling(n, POLICY)),
    [100, 200, 400, 800, 1_000, 1_000, 1_000],
  );
  // Huge attempt numbers stay at the cap instead of overflowing to NaN or Infinity.
  assert.equal(backoffCeiling(1e6, POLICY), 1_000);
  assert.equal(backoffCeiling(-3, POLICY), 100);
  assert.equal(backoffCeiling(5, { initialMs: 100, factor: 1, maxMs: 1_000 }), 100);
});

Deno.test("backoffDelay() is full jitter: anywhere from 0 to the ceiling", () => {
  assert.equal(backoffDelay(3, POLICY, () => 0), 0);
  assert.equal(backoffDelay(3, POLICY, () => 0.5), 400);
  assert.equal(backoffDelay(3, POLICY, () => 0.999), 799.2);
  // Out-of-range random values are clamped.
  assert.equal(backoffDelay(3, POLICY, () => 7), 800);
  assert.equal(backoffDelay(3, POLICY, () => -1), 0);
  for (let i = 0; i < 1_000; i++) {
    const attempt = i % 12;
    const delay = backoffDelay(attempt, REQUEST_BACKOFF);
    assert.ok(delay >= 0 && delay < backoffCeiling(attempt, REQUEST_BACKOFF), `${delay}`);
  }
});

Deno.test("the jitter actually spreads delays over the range", () => {
  const delays = Array.from({ length: 2_000 }, () => backoffDelay(2, POLICY));
  const lowHalf = delays.filter((d) => d < 200).length;
  // Uniform over [0, 400): about half below 200. Bounds are loose (5+ sigma).
  assert.ok(lowHalf > 850 && lowHalf < 1_150, `low half: ${lowHalf}`);
  assert.ok(Math.max(...delays) > 360 && Math.min(...delays) < 40);
});

Deno.test("Backoff counts consecutive failures and resets", () => {
  const backoff = new Backoff(POLICY, () => 1);
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [100, 200, 400]);
  assert.equal(backoff.attempt, 3);
  backoff.reset();
  assert.equal(backoff.attempt, 0);
  assert.equal(backoff.next(), 100);
});

Deno.test("REQUEST_BACKOFF spans about a minute over 8 retries at most", () => {
  let total = 0;
  for (let attempt = 0; attempt < 8; attempt++) total += backoffCeiling(attempt, REQUEST_BACKOFF);
  assert.equal(total, 500 + 1_000 + 2_000 + 4_000 + 8_000 + 16_000 + 30_000 + 30_000);
});

Deno.test("sleep() rejects with the abort reason and clears its timer", async () => {
  const controller = new AbortController();
  const pending = sleep(60_000, controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(pending, /stop/);
  await assert.rejects(sleep(10, AbortSignal.abort(new Error("already"))), /already/);
  await sleep(0);
});
