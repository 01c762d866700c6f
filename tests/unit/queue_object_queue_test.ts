import assert from "node:assert/strict";
import {
  exponentialBackoff,
  ObjectQueue,
  type ProcessResult,
  sequenceBackoff,
} from "../../src/queue/object_queue.ts";
import { FakeClock, settle } from "../support/fake_clock.ts";

interface Run {
  key: string;
  signal: AbortSignal;
  resolve(result?: ProcessResult | void): void;
  reject(error: unknown): void;
  done: boolean;
}

/** A worker whose runs stay in flight until the test resolves them; records overlaps. */
function worker() {
  const runs: Run[] = [];
  const active = new Map<string, number>();
  let maxActive = 0;
  let overlaps = 0;
  const process = (key: string, signal: AbortSignal): Promise<ProcessResult | void> => {
    if (active.has(key)) overlaps++;
    active.set(key, (active.get(key) ?? 0) + 1);
    const total = [...active.values()].reduce((a, b) => a + b, 0);
    maxActive = Math.max(maxActive, total);
    return new Promise((resolve, reject) => {
      const end = () => {
        run.done = true;
        const left = active.get(key)! - 1;
        if (left === 0) active.delete(key);
        else active.set(key, left);
      };
      const run: Run = {
        key,
        signal,
        done: false,
        resolve: (result) => {
          end();
          resolve(result);
        },
        reject: (error) => {
          end();
          reject(error);
        },
      };
      runs.push(run);
    });
  };
  return {
    process,
    runs,
    pending: () => runs.filter((run) => !run.done),
    keys: () => runs.map((run) => run.key),
    stats: () => ({ maxActive, overlaps }),
  };
}

Deno.test("ObjectQueue coalesces 100 adds during a run into exactly one follow-up run", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 2, clock });

  queue.add("k");
  await settle();
  assert.equal(w.runs.length, 1);

  for (let i = 0; i < 100; i++) queue.add("k");
  await settle();
  assert.equal(w.runs.length, 1, "no second run while the first is in flight");

  w.runs[0].resolve();
  await settle();
  assert.equal(w.runs.length, 2, "exactly one follow-up run");

  w.runs[1].resolve();
  await settle();
  assert.equal(w.runs.length, 2, "nothing more after the follow-up");
  assert.deepEqual(queue.counters, { adds: 101, coalesced: 99, runs: 2, retries: 0 });
  assert.equal(w.stats().overlaps, 0);
});

Deno.test("ObjectQueue coalesces adds of a key that waits for a worker", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  for (let i = 0; i < 10; i++) queue.add("a");
  queue.add("b");
  for (let i = 0; i < 10; i++) queue.add("b");
  await settle();
  assert.deepEqual(w.keys(), ["a"]);
  assert.equal(queue.size, 1);

  w.runs[0].resolve();
  await settle();
  assert.deepEqual(w.keys(), ["a", "b"]);
  w.runs[1].resolve();
  await settle();
  assert.deepEqual(w.keys(), ["a", "b"]);
  assert.equal(queue.counters.runs, 2);
});

Deno.test("ObjectQueue honours the concurrency limit and starts ready keys in FIFO order", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 3, clock });

  const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
  for (const key of keys) queue.add(key);
  await settle();
  assert.equal(queue.inFlight, 3);
  assert.equal(queue.size, 7);
  assert.deepEqual(w.keys(), ["k0", "k1", "k2"]);

  // Finishing any run frees exactly one slot, taken by the oldest ready key.
  w.runs[1].resolve();
  await settle();
  assert.deepEqual(w.keys(), ["k0", "k1", "k2", "k3"]);

  while (w.pending().length > 0) {
    for (const run of w.pending()) run.resolve();
    await settle();
  }
  assert.deepEqual(w.keys(), keys);
  assert.equal(w.stats().maxActive, 3);
  assert.equal(queue.inFlight, 0);
  assert.equal(queue.size, 0);
});

Deno.test("ObjectQueue never runs one key twice at once, even with free workers", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 8, clock });

  queue.add("x");
  await settle();
  for (let round = 0; round < 5; round++) {
    queue.add("x");
    queue.addAfter("x", 0.001);
    clock.advance(10);
    await settle();
    assert.equal(w.pending().length, 1, "one run of x at a time");
    w.pending()[0].resolve();
    await settle();
  }
  // The last follow-up is still in flight; let it finish.
  for (const run of w.pending()) run.resolve();
  await settle();
  assert.equal(w.stats().overlaps, 0);
  assert.equal(w.stats().maxActive, 1);
});

Deno.test("ObjectQueue.addAfter keeps the earliest pending wake-up", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  queue.addAfter("k", 10);
  queue.addAfter("k", 5);
  queue.addAfter("k", 20);
  assert.equal(queue.delayed, 1);
  assert.equal(queue.counters.coalesced, 1);

  clock.advance(4999);
  await settle();
  assert.equal(w.runs.length, 0);

  clock.advance(1);
  await settle();
  assert.equal(w.runs.length, 1);
  w.runs[0].resolve();
  await settle();

  clock.advance(60_000);
  await settle();
  assert.equal(w.runs.length, 1, "the later wake-ups were absorbed by the earliest one");
  assert.equal(clock.timers.size, 0, "no timer left behind");
});

Deno.test("ObjectQueue.add runs a delayed key now and drops its delayed wake-up", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  queue.addAfter("k", 10);
  queue.add("k");
  await settle();
  assert.equal(w.runs.length, 1);
  assert.equal(queue.delayed, 0);
  w.runs[0].resolve();
  await settle();

  clock.advance(10_000);
  await settle();
  assert.equal(w.runs.length, 1);
});

Deno.test("ObjectQueue.addAfter on a key waiting to run now is absorbed", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  queue.add("busy");
  queue.add("k");
  queue.addAfter("k", 10);
  assert.equal(queue.delayed, 0);
  await settle();
  for (let i = 0; i < 3; i++) {
    for (const run of w.pending()) run.resolve();
    await settle();
  }
  clock.advance(10_000);
  await settle();
  assert.deepEqual(w.keys(), ["busy", "k"]);
});

Deno.test("ObjectQueue requeues after the worker's requeueAfter", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  queue.add("k");
  await settle();
  w.runs[0].resolve({ requeueAfter: 30 });
  await settle();
  assert.equal(queue.delayed, 1);

  clock.advance(29_999);
  await settle();
  assert.equal(w.runs.length, 1);
  clock.advance(1);
  await settle();
  assert.equal(w.runs.length, 2);
  w.runs[1].resolve();
  await settle();
});

Deno.test("ObjectQueue: a change during a run wins over the run's requeueAfter", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  queue.add("k");
  await settle();
  queue.add("k");
  w.runs[0].resolve({ requeueAfter: 30 });
  await settle();
  assert.equal(w.runs.length, 2, "follow-up runs immediately");
  assert.equal(queue.delayed, 0);
  w.runs[1].resolve();
  await settle();
});

Deno.test("ObjectQueue: addAfter during a run wakes the key after the run if still pending", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  queue.add("k");
  await settle();
  queue.addAfter("k", 1);
  clock.advance(1000); // due while running: becomes the one follow-up run
  await settle();
  assert.equal(w.runs.length, 1);
  w.runs[0].resolve();
  await settle();
  assert.equal(w.runs.length, 2);
  w.runs[1].resolve();
  await settle();
  assert.equal(w.runs.length, 2);
});

Deno.test("ObjectQueue retries failures with per-key backoff and resets it on success", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({
    process: w.process,
    concurrency: 2,
    clock,
    backoff: exponentialBackoff({ base: 1, cap: 4 }),
  });

  queue.add("bad");
  queue.add("good");
  await settle();
  w.runs[1].resolve();

  const lastBad = () => w.runs.filter((run) => run.key === "bad").at(-1)!;
  for (const delay of [1, 2, 4, 4]) {
    lastBad().reject(new Error("boom\nwith a second line"));
    await settle();
    const count = w.runs.length;
    clock.advance(delay * 1000 - 1);
    await settle();
    assert.equal(w.runs.length, count, `no retry before ${delay} s`);
    clock.advance(1);
    await settle();
    assert.equal(w.runs.length, count + 1, `retry after ${delay} s`);
  }
  assert.equal(queue.counters.retries, 4);

  // Success resets the streak: the next failure waits the base delay again.
  w.runs.at(-1)!.resolve();
  await settle();
  queue.add("bad");
  await settle();
  w.runs.at(-1)!.reject(new Error("again"));
  await settle();
  const count = w.runs.length;
  clock.advance(1000);
  await settle();
  assert.equal(w.runs.length, count + 1);
  w.runs.at(-1)!.resolve();
  await settle();
  assert.equal(w.runs.filter((run) => run.key === "good").length, 1, "other keys unaffected");
});

Deno.test("ObjectQueue catches synchronous throws of the worker", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const queue = new ObjectQueue({
    concurrency: 1,
    clock,
    backoff: () => 1,
    process: () => {
      calls++;
      if (calls === 1) throw new TypeError("sync");
      return Promise.resolve();
    },
  });
  queue.add("k");
  await settle();
  assert.equal(calls, 1);
  clock.advance(1000);
  await settle();
  assert.equal(calls, 2);
  assert.equal(queue.counters.retries, 1);
});

Deno.test("ObjectQueue keeps one timer for thousands of delayed keys", async () => {
  const clock = new FakeClock();
  const started: string[] = [];
  const queue = new ObjectQueue({
    concurrency: 16,
    clock,
    process: (key) => {
      started.push(key);
      return Promise.resolve();
    },
  });
  for (let i = 0; i < 5000; i++) queue.addAfter(`k${i}`, 1 + ((i * 7919) % 1000) / 10);
  assert.equal(queue.delayed, 5000);
  assert.equal(clock.timers.size, 1);

  for (let t = 0; t < 102; t++) {
    clock.advance(1000);
    await settle();
    assert.ok(clock.timers.size <= 1);
  }
  assert.equal(started.length, 5000);
  assert.equal(new Set(started).size, 5000);
  assert.equal(queue.delayed, 0);
  assert.equal(clock.timers.size, 0);
});

Deno.test("ObjectQueue wakes keys due at the same time in the order they were scheduled", async () => {
  const clock = new FakeClock();
  const started: string[] = [];
  const queue = new ObjectQueue({
    concurrency: 1,
    clock,
    process: (key) => {
      started.push(key);
      return Promise.resolve();
    },
  });
  for (const key of ["c", "a", "b"]) queue.addAfter(key, 5);
  queue.addAfter("early", 1);
  clock.advance(5000);
  await settle();
  assert.deepEqual(started, ["early", "c", "a", "b"]);
});

Deno.test("ObjectQueue.forget drops the delayed wake-up and the failure history", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({
    process: w.process,
    concurrency: 1,
    clock,
    backoff: exponentialBackoff({ base: 1, cap: 100 }),
  });

  queue.add("k");
  await settle();
  w.runs[0].reject(new Error("first"));
  await settle();
  assert.equal(queue.delayed, 1);

  queue.forget("k");
  assert.equal(queue.delayed, 0);
  clock.advance(100_000);
  await settle();
  assert.equal(w.runs.length, 1, "the retry was cancelled");

  // The history is gone too: the next failure starts at the base delay.
  queue.add("k");
  await settle();
  w.runs[1].reject(new Error("second"));
  await settle();
  clock.advance(1000);
  await settle();
  assert.equal(w.runs.length, 3);
  w.runs[2].resolve();
  await settle();
});

Deno.test("ObjectQueue.shutdown lets in-flight runs finish and drops the rest", async () => {
  const clock = new FakeClock();
  const w = worker();
  const queue = new ObjectQueue({ process: w.process, concurrency: 1, clock });

  queue.add("running");
  queue.add("waiting");
  queue.addAfter("delayed", 1);
  await settle();
  queue.add("running"); // would be a follow-up

  let resolved = false;
  const done = queue.shutdown({ drainTimeout: 10 }).then(() => resolved = true);
  await settle();
  assert.equal(resolved, false);
  queue.add("late");
  assert.equal(w.runs[0].signal.aborted, false);

  w.runs[0].resolve();
  await done;
  assert.equal(resolved, true);
  clock.advance(60_000);
  await settle();
  assert.deepEqual(w.keys(), ["running"]);
  assert.equal(queue.inFlight, 0);
  assert.equal(queue.size, 0);
  assert.equal(queue.delayed, 0);
  assert.equal(clock.timers.size, 0);
});

Deno.test("ObjectQueue.shutdown aborts runs that outlive the drain timeout", async () => {
  const clock = new FakeClock();
  const aborted: string[] = [];
  const queue = new ObjectQueue({
    concurrency: 2,
    clock,
    process: (key, signal) =>
      new Promise((_, reject) => {
        signal.addEventListener("abort", () => {
          aborted.push(key);
          reject(signal.reason);
        });
      }),
  });
  queue.add("a");
  queue.add("b");
  await settle();
  assert.equal(queue.inFlight, 2);

  let resolved = false;
  const done = queue.shutdown({ drainTimeout: 5 }).then(() => resolved = true);
  clock.advance(4999);
  await settle();
  assert.deepEqual(aborted, []);
  assert.equal(resolved, false);

  clock.advance(1);
  await done;
  assert.deepEqual(aborted.sort(), ["a", "b"]);
  assert.equal(queue.inFlight, 0);
  assert.equal(queue.counters.retries, 0, "aborted runs are not retried");
});

Deno.test("ObjectQueue.shutdown resolves at once when idle", async () => {
  const queue = new ObjectQueue({ concurrency: 1, process: () => Promise.resolve() });
  queue.addAfter("k", 1000); // a real timer: shutdown must clear it
  await queue.shutdown({ drainTimeout: 1 });
  assert.equal(queue.stopping, true);
  assert.equal(queue.delayed, 0);
});

Deno.test("ObjectQueue requires a bounded concurrency", () => {
  const process = () => Promise.resolve();
  assert.throws(() => new ObjectQueue({ process, concurrency: 0 }), RangeError);
  assert.throws(() => new ObjectQueue({ process, concurrency: Infinity }), RangeError);
  assert.throws(() => new ObjectQueue({ process, concurrency: 1.5 }), RangeError);
});

Deno.test("exponentialBackoff matches client-go's item limiter by default", () => {
  const backoff = exponentialBackoff();
  assert.equal(backoff(1), 0.005);
  assert.equal(backoff(2), 0.01);
  assert.equal(backoff(11), 5.12);
  assert.equal(backoff(18), 655.36);
  assert.equal(backoff(19), 1000);
  assert.equal(backoff(100_000), 1000);
});

Deno.test("sequenceBackoff repeats its last delay", () => {
  const backoff = sequenceBackoff([1, 1, 2, 3, 5]);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 50].map(backoff), [1, 1, 2, 3, 5, 5, 5]);
  assert.throws(() => sequenceBackoff([]), RangeError);
});
