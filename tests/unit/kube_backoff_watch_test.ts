// The reconnect backoff of the watch loop: 0.8 s ×2, full jitter, cap 30 s, reset after 2 min.
import assert from "node:assert/strict";
import { Backoff, WATCH_BACKOFF } from "../../src/kube/backoff.ts";

Deno.test("Backoff doubles its ceiling up to 30 s and draws below it", () => {
  let now = 0;
  const top = new Backoff(WATCH_BACKOFF, () => 0.999999, () => now);
  const ceilings = Array.from({ length: 9 }, () => {
    now += 1000;
    return top.next();
  });
  assert.deepEqual(ceilings.map(Math.floor), [
    799,
    1599,
    3199,
    6399,
    12799,
    25599,
    29999,
    29999,
    29999,
  ]);
  const bottom = new Backoff(WATCH_BACKOFF, () => 0, () => now);
  assert.equal(bottom.next(), 0, "full jitter reaches down to zero");
});

Deno.test("Backoff starts over after two quiet minutes", () => {
  let now = 0;
  const backoff = new Backoff(WATCH_BACKOFF, () => 0.999999, () => now);
  for (let i = 0; i < 5; i++) backoff.next();
  assert.equal(backoff.attempt, 5);
  now += 119_999;
  assert.equal(Math.floor(backoff.next()), 25599, "still the same incident");
  now += 120_000;
  assert.equal(Math.floor(backoff.next()), 799, "a new incident");
  assert.equal(backoff.attempt, 1);
});
