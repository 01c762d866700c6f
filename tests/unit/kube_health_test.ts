/**
 * The connection health check (src/kube/_health.ts) on a fake clock: when it probes, how often,
 * and when it declares a connection dead. The probe is a function the test answers (or not);
 * the same logic against a real frozen connection is in tests/integration/client_connection_test.ts.
 */
import assert from "node:assert/strict";
import { ConnectionHealth } from "../../src/kube/_health.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** Lets the health check's promise chains run (no real I/O is involved: microtasks suffice). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

const IDLE = 30_000;
const PING = 15_000;

/** A health check whose probes the test answers; records probes and the verdict. */
function setup(answer: "now" | "never" | "fail" | "manual" = "now") {
  const clock = new FakeClock(1_000_000);
  const probes: number[] = [];
  const pending: PromiseWithResolvers<void>[] = [];
  const dead: { at: number; reason: string }[] = [];
  const health = new ConnectionHealth({
    readIdleTimeoutMs: IDLE,
    pingTimeoutMs: PING,
    timers: clock,
    probe: (signal) => {
      probes.push(clock.now());
      if (answer === "now") return Promise.resolve();
      if (answer === "fail") return Promise.reject(new Error("connection reset"));
      const waiting = Promise.withResolvers<void>();
      signal.addEventListener("abort", () => waiting.reject(signal.reason), { once: true });
      if (answer === "manual") pending.push(waiting);
      return waiting.promise;
    },
    onDead: (reason) => dead.push({ at: clock.now(), reason }),
  });
  /** Advances time in steps of `step` ms, letting probes settle after each. */
  const advance = async (ms: number, step = 1000) => {
    for (let done = 0; done < ms; done += step) {
      clock.advance(Math.min(step, ms - done));
      await settle();
    }
  };
  return { clock, health, probes, pending, dead, advance, t0: clock.now() };
}

Deno.test("health: nothing in flight, no probe however long the silence", async () => {
  const { health, probes, clock, advance } = setup();
  await advance(10 * 60_000, 10_000);
  assert.equal(probes.length, 0);
  const end = health.begin();
  end();
  await advance(10 * 60_000, 10_000);
  assert.equal(probes.length, 0);
  assert.equal(clock.timers.size, 0, "no timer left while idle");
});

Deno.test("health: bytes arriving more often than readIdleTimeout, no probe", async () => {
  const { health, probes, advance } = setup();
  const end = health.begin();
  for (let i = 0; i < 30; i++) {
    await advance(IDLE - 1000);
    health.received();
  }
  assert.equal(probes.length, 0);
  end();
});

Deno.test("health: silence while in flight, one probe per readIdleTimeout, answered ones keep it alive", async () => {
  const { health, probes, dead, advance, t0 } = setup("now");
  const end = health.begin();
  await advance(5 * 60_000);
  // At 30 s, 60 s, … 300 s after the request started: one probe per 30 s of silence.
  assert.deepEqual(
    probes.map((at) => at - t0),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => n * IDLE),
  );
  assert.equal(health.probes, 10);
  assert.equal(dead.length, 0);
  end();
});

Deno.test("health: silence is counted from the last byte", async () => {
  const { health, probes, advance, t0 } = setup("now");
  const end = health.begin();
  await advance(20_000);
  health.received(); // at 20 s
  await advance(40_000);
  assert.deepEqual(probes.map((at) => at - t0), [50_000]);
  end();
});

Deno.test("health: silence while nothing was in flight does not count", async () => {
  const { health, probes, advance, t0 } = setup("now");
  await advance(25_000);
  const end = health.begin(); // busy from 25 s: the first probe is due at 55 s, not 30 s
  await advance(35_000);
  assert.deepEqual(probes.map((at) => at - t0), [55_000]);
  end();
});

Deno.test("health: a probe without an answer within pingTimeout declares the connection dead, once", async () => {
  const { health, probes, dead, advance, t0, clock } = setup("never");
  const end = health.begin();
  await advance(2 * 60_000);
  assert.deepEqual(probes.map((at) => at - t0), [IDLE]);
  assert.equal(dead.length, 1);
  assert.equal(dead[0].at - t0, IDLE + PING, "dead 45 s after the last byte");
  assert.equal(dead[0].reason, "nothing received for 30 s, no answer to a probe within 15 s");
  assert.equal(health.dead, true);
  end();
  assert.equal(clock.timers.size, 0);
});

Deno.test("health: a failing probe declares the connection dead at once", async () => {
  const { health, dead, advance, t0 } = setup("fail");
  const end = health.begin();
  await advance(IDLE + 1000);
  assert.equal(dead.length, 1);
  assert.equal(dead[0].at - t0, IDLE);
  assert.equal(dead[0].reason, "nothing received for 30 s, the probe failed: connection reset");
  end();
});

Deno.test("health: bytes from other streams while a probe waits prove the connection alive", async () => {
  const { health, probes, dead, advance, t0 } = setup("never");
  const end = health.begin();
  await advance(IDLE + 5000); // the probe is out since 30 s
  health.received(); // at 35 s: the server is slow to answer the probe, not gone
  await advance(PING);
  assert.equal(dead.length, 0);
  // The silence is measured anew from 35 s: the next probe at 65 s, and that one goes unanswered.
  await advance(60_000);
  assert.deepEqual(probes.map((at) => at - t0), [30_000, 65_000]);
  assert.equal(dead.length, 1);
  assert.equal(dead[0].at - t0, 80_000);
  end();
});

Deno.test("health: a slow answer within pingTimeout keeps it alive; the next silence starts at the answer", async () => {
  const { health, probes, pending, dead, advance, t0 } = setup("manual");
  const end = health.begin();
  await advance(IDLE);
  assert.equal(pending.length, 1);
  await advance(10_000);
  pending[0].resolve(); // answered at 40 s
  await settle();
  await advance(IDLE);
  assert.deepEqual(probes.map((at) => at - t0), [30_000, 70_000]);
  assert.equal(dead.length, 0);
  end();
  await advance(PING);
  assert.equal(dead.length, 1, "the probe under way still decides, even with nothing in flight");
});

Deno.test("health: end() is idempotent, and close() stops timers and the probe under way", async () => {
  const { health, probes, dead, advance, clock } = setup("never");
  const a = health.begin();
  const b = health.begin();
  a();
  a();
  assert.equal(health.inFlight, 1);
  await advance(IDLE);
  assert.equal(probes.length, 1);
  health.close();
  await advance(PING * 2);
  assert.equal(dead.length, 0, "a closed connection is not declared dead");
  assert.equal(clock.timers.size, 0);
  b();
  assert.equal(health.inFlight, 0);
});

Deno.test("health: readIdleTimeout 0 turns the check off", async () => {
  const clock = new FakeClock();
  let probes = 0;
  const health = new ConnectionHealth({
    readIdleTimeoutMs: 0,
    pingTimeoutMs: PING,
    timers: clock,
    probe: () => Promise.resolve(void probes++),
    onDead: () => {},
  });
  const end = health.begin();
  clock.advance(10 * 60_000);
  await settle();
  assert.equal(probes, 0);
  assert.equal(clock.timers.size, 0);
  end();
});
