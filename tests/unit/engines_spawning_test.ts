// The spawning engine with daemons and timers: Kopf's schedules (interval, sharp, idle), restart
// rules, stop stages, filter re-matching, finalizer signals, and writes only when they change
// something. Time is a manual clock: no test waits for real seconds.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import type { DaemonContext, KubeObject, TimerContext } from "../../mod.ts";
import { SpawningEngine } from "../../src/engines/spawning.ts";
import { Settings } from "../../src/settings/settings.ts";
import { FakePatchClient, flush, kex, kexObject, ManualClock, Memos } from "../support/engines.ts";

interface Rig {
  registry: kopf.Registry;
  clock: ManualClock;
  client: FakePatchClient;
  engine: SpawningEngine;
  requeued: string[];
  settings: Settings;
  memos: Memos;
  event(type: "ADDED" | "MODIFIED" | "DELETED", object: KubeObject): void;
}

function rig(register: (registry: kopf.Registry) => void, memo: kopf.Memo = {}): Rig {
  const registry = new kopf.Registry();
  register(registry);
  const clock = new ManualClock();
  const client = new FakePatchClient();
  const requeued: string[] = [];
  const settings = new Settings();
  const memos = new Memos(memo);
  const engine = new SpawningEngine({
    registry,
    settings,
    client,
    memo: memos.memo,
    clock,
    indices: { byName: "the index" },
    requeue: (_resource, body) => requeued.push(body.metadata?.name ?? "?"),
  });
  return {
    registry,
    clock,
    client,
    engine,
    requeued,
    settings,
    memos,
    event(type, object) {
      engine.observe(kex, { type, key: `ns/${object.metadata?.name}`, object, initial: false });
    },
  };
}

/** Stop everything, letting the manual clock run through grace periods. */
async function stop(r: Rig): Promise<void> {
  const stopping = r.engine.stopAll();
  await r.clock.advance(10_000);
  await stopping;
}

Deno.test("a timer with an interval ticks from the end of one call to the start of the next", async () => {
  const ticks: number[] = [];
  const r = rig((registry) =>
    registry.timer("kex", { interval: 10 }, async () => {
      ticks.push(r.clock.now());
      await r.clock.sleep(3000); // a slow call: 3 s
    })
  );
  r.event("ADDED", kexObject("a"));
  await r.clock.advance(40_000);
  const base = ticks[0];
  assert.deepEqual(ticks.map((t) => t - base), [0, 13_000, 26_000, 39_000]);
  await stop(r);
});

Deno.test("a sharp timer keeps to a grid of its interval whatever its calls take", async () => {
  const ticks: number[] = [];
  const r = rig((registry) =>
    registry.timer("kex", { interval: 10, sharp: true }, async () => {
      ticks.push(r.clock.now());
      await r.clock.sleep(ticks.length === 2 ? 12_000 : 3000); // the 2nd call overruns a slot
    })
  );
  r.event("ADDED", kexObject("a"));
  await r.clock.advance(45_000);
  const base = ticks[0];
  assert.deepEqual(ticks.map((t) => t - base), [0, 10_000, 30_000, 40_000]);
  await stop(r);
});

Deno.test("an idle timer waits for a quiet period; essential changes postpone it, status changes do not", async () => {
  const ticks: number[] = [];
  const r = rig((registry) =>
    registry.timer("kex", { idle: 10, interval: 5 }, () => {
      ticks.push(r.clock.now());
    })
  );
  const start = r.clock.now();
  r.event("ADDED", kexObject("a", { spec: { v: 1 } }));
  await r.clock.advance(6000);
  r.event("MODIFIED", kexObject("a", { spec: { v: 2 } })); // essential: postpones
  await r.clock.advance(6000);
  r.event("MODIFIED", kexObject("a", { spec: { v: 2 }, status: { x: 1 } })); // status: does not
  await r.clock.advance(5000);
  assert.deepEqual(ticks.map((t) => t - start), [16_000]);
  await r.clock.advance(11_000);
  // After the first call, the interval applies, each call again after the idle check.
  assert.deepEqual(ticks.map((t) => t - start), [16_000, 21_000, 26_000]);
  await stop(r);
});

Deno.test("an idle-only timer fires once per quiet period", async () => {
  const ticks: number[] = [];
  const r = rig((registry) =>
    registry.timer("kex", { idle: 5 }, () => void ticks.push(r.clock.now()))
  );
  const start = r.clock.now();
  r.event("ADDED", kexObject("a", { spec: { v: 1 } }));
  await r.clock.advance(30_000);
  assert.deepEqual(ticks.map((t) => t - start), [5000]);
  r.event("MODIFIED", kexObject("a", { spec: { v: 2 } }));
  await r.clock.advance(30_000);
  assert.equal(ticks.length, 2);
  assert.ok(ticks[1] - start >= 35_000 && ticks[1] - start <= 40_000, `${ticks[1] - start}`);
  await stop(r);
});

Deno.test("a timer without interval and idle is called once; initialDelay postpones the first call", async () => {
  const ticks: number[] = [];
  const r = rig((registry) => {
    registry.timer("kex", { id: "once" }, () => void ticks.push(r.clock.now()));
    registry.timer("kex", { id: "later", interval: 100, initialDelay: () => 7 }, () => {
      ticks.push(-r.clock.now());
    });
  });
  const start = r.clock.now();
  r.event("ADDED", kexObject("a"));
  await r.clock.advance(60_000);
  assert.deepEqual(ticks.map((t) => Math.sign(t) * (Math.abs(t) - start)), [0, -7000]);
  await stop(r);
});

Deno.test("timer results and patches are written only when they change the object", async () => {
  let n = 0;
  const r = rig((registry) =>
    registry.timer("kex", { id: "t", interval: 1 }, ({ patch }) => {
      n += 1;
      patch.metadata.labels.phase = n < 3 ? "early" : "late";
      return { same: "value" };
    })
  );
  r.client.put(kexObject("a"));
  r.event("ADDED", kexObject("a"));
  await r.clock.advance(10_500);
  assert.ok(n >= 10, `ticks: ${n}`);
  // One status write (the result) and two body writes (the label's two values).
  assert.deepEqual(
    r.client.seen.map((s) => [s.subresource ?? "body", s.patch]),
    [
      ["status", { status: { t: { same: "value" } } }],
      ["body", { metadata: { labels: { phase: "early" } } }],
      ["body", { metadata: { labels: { phase: "late" } } }],
    ],
  );
  assert.equal(r.engine.stats.writes, 3);
  assert.ok(r.engine.stats.skippedWrites >= 7);
  await stop(r);
});

Deno.test("writes compare with our last write until the watch brings it back, then with the cache", async () => {
  const r = rig((registry) => registry.timer("kex", { id: "t", interval: 1 }, () => ({ v: 1 })));
  r.event("ADDED", kexObject("a"));
  await r.clock.advance(3500);
  // The cache still lacks the result, but our write's response has it: no second write.
  assert.equal(r.client.seen.length, 1);
  const echoed = r.client.objects.get("ns/a")!;
  r.event("MODIFIED", echoed);
  await r.clock.advance(10_000);
  assert.equal(r.client.seen.length, 1, "the echoed state has the result");
  // Someone removes our result: the next tick writes it again, once.
  r.event("MODIFIED", kexObject("a", { metadata: { resourceVersion: "900" }, status: {} }));
  await r.clock.advance(3000);
  assert.equal(r.client.seen.length, 2);
  await stop(r);
});

Deno.test("a daemon that returns is not restarted; one that fails temporarily is, with retry counts", async () => {
  const calls: string[] = [];
  const r = rig((registry) => {
    registry.daemon("kex", { id: "once" }, () => void calls.push("once"));
    registry.daemon("kex", { id: "flaky", backoff: 3 }, ({ retry }) => {
      calls.push(`flaky:${retry}`);
      if (retry < 2) throw new kopf.TemporaryError("not yet", { delay: 2 });
      if (retry < 3) throw new Error("arbitrary");
    });
  });
  r.event("ADDED", kexObject("a"));
  await r.clock.advance(1000);
  assert.deepEqual(calls, ["once", "flaky:0"]);
  await r.clock.advance(10_000);
  assert.deepEqual(calls, ["once", "flaky:0", "flaky:1", "flaky:2", "flaky:3"]);
  assert.deepEqual([...r.engine.excluded(kex, kexObject("a"))].sort(), ["flaky", "once"]);
  assert.equal(r.engine.isRunning(kex, kexObject("a")), false);
  // Exiting for good may release a finalizer: the cycle is asked to look again.
  assert.deepEqual(r.requeued, ["a", "a"]);
  r.event("MODIFIED", kexObject("a", { spec: { v: 2 } }));
  await r.clock.advance(1000);
  assert.equal(calls.length, 5, "not respawned on later events");
});

Deno.test("a permanent error stops a daemon for good", async () => {
  let calls = 0;
  const r = rig((registry) =>
    registry.daemon("kex", () => {
      calls += 1;
      throw new kopf.PermanentError("no");
    })
  );
  r.event("ADDED", kexObject("a"));
  await r.clock.advance(100_000);
  assert.equal(calls, 1);
});

Deno.test("deletion stops a daemon at once: stopped is set; without cancellationTimeout signal stays", async () => {
  const seen: string[] = [];
  const r = rig((registry) =>
    registry.daemon("kex", async ({ stopped, signal }: DaemonContext) => {
      seen.push("started");
      signal.addEventListener("abort", () => seen.push("aborted"));
      await stopped.wait();
      seen.push(`stopped:${stopped.reason}`);
    })
  );
  r.event("ADDED", kexObject("a"));
  await flush();
  assert.equal(r.engine.isRunning(kex, kexObject("a")), true);
  r.event("DELETED", kexObject("a"));
  await flush();
  // Kopf cancels a daemon's task only when `cancellation_timeout` bounds the wait: a daemon's
  // requests on its way out (with `signal`) still work.
  assert.deepEqual(seen, ["started", "stopped:resource-deleted"]);
  assert.equal(r.engine.isRunning(kex, kexObject("a")), false);
  assert.equal(r.engine.stats.objects, 0, "a gone object is forgotten");
});

Deno.test("a deletion mark stops daemons and asks the cycle to release the finalizer after they exit", async () => {
  const r = rig((registry) =>
    registry.daemon("kex", { cancellationBackoff: 5 }, async ({ stopped }) => {
      await stopped.wait();
      await r.clock.sleep(2000); // cleans up for 2 s
    })
  );
  r.event("ADDED", kexObject("a"));
  await flush();
  r.event("MODIFIED", kexObject("a", { metadata: { deletionTimestamp: "2024-01-01T00:00:00Z" } }));
  await r.clock.advance(1000);
  assert.equal(r.engine.isRunning(kex, kexObject("a")), true);
  assert.deepEqual(r.requeued, []);
  await r.clock.advance(1500);
  assert.equal(r.engine.isRunning(kex, kexObject("a")), false);
  assert.deepEqual(r.requeued, ["a"]);
});

Deno.test("cancellation stages: signal aborts after the backoff; an unresponsive daemon is abandoned after the timeout", async () => {
  const seen: string[] = [];
  const r = rig((registry) =>
    registry.daemon(
      "kex",
      { cancellationBackoff: 2, cancellationTimeout: 3 },
      ({ stopped, signal }) => {
        stopped.wait().then(() => seen.push(`stopped@${r.clock.now()}`));
        signal.addEventListener("abort", () => seen.push(`aborted@${r.clock.now()}`));
        return new Promise(() => {}); // never exits
      },
    )
  );
  r.event("ADDED", kexObject("a"));
  await flush();
  const t0 = r.clock.now();
  r.event("DELETED", kexObject("a"));
  await r.clock.advance(4000);
  assert.deepEqual(seen, [`stopped@${t0}`, `aborted@${t0 + 2000}`]);
  assert.equal(r.engine.isRunning(kex, kexObject("a")), true);
  await r.clock.advance(2000);
  assert.equal(r.engine.isRunning(kex, kexObject("a")), false, "abandoned after 2+3 s");
  assert.equal(r.engine.stats.objects, 0);
});

Deno.test("a daemon stops when its filters stop matching and is respawned when they match again", async () => {
  const seen: string[] = [];
  const r = rig((registry) =>
    registry.daemon("kex", { labels: { run: "yes" } }, async ({ stopped, retry }) => {
      seen.push(`start:${retry}`);
      await stopped.wait();
      seen.push(`stop:${stopped.reason}`);
    })
  );
  const labelled = (run: string) => kexObject("a", { metadata: { labels: { run } } });
  r.event("ADDED", labelled("yes"));
  await flush();
  r.event("MODIFIED", labelled("no"));
  await flush();
  r.event("MODIFIED", labelled("yes"));
  await flush();
  assert.deepEqual(seen, ["start:0", "stop:filters-mismatch", "start:0"]);
  assert.deepEqual([...r.engine.excluded(kex, labelled("yes"))], []);
  await stop(r);
  assert.deepEqual(seen.at(-1), "stop:operator-exiting");
});

Deno.test("stopAll gives daemons without a cancellation timeout a grace period, then abandons them", async () => {
  const r = rig((registry) => registry.daemon("kex", () => new Promise(() => {})));
  r.event("ADDED", kexObject("a"));
  await flush();
  let finished = false;
  const stopping = r.engine.stopAll({ graceTimeout: 5 }).then(() => finished = true);
  await r.clock.advance(4000);
  assert.equal(finished, false);
  await r.clock.advance(2000);
  await stopping;
  assert.equal(finished, true);
  r.event("ADDED", kexObject("b"));
  await flush();
  assert.equal(r.engine.stats.running, 0, "nothing is spawned after stopAll");
});

Deno.test("daemons get a live body, the object's memo, param, indices and a patch", async () => {
  const seen: unknown[] = [];
  const r = rig((registry) =>
    registry.daemon("kex", { param: 42 }, async (ctx: DaemonContext) => {
      ctx.memo.touched = (ctx.memo.touched as number ?? 0) + 1;
      seen.push([ctx.name, ctx.namespace, ctx.param, ctx.indices.byName, ctx.spec.v, ctx.retry]);
      await ctx.stopped.wait();
      seen.push(ctx.spec.v); // the latest spec, not the one at the start
    }), { shared: "op" });
  r.event("ADDED", kexObject("a", { spec: { v: 1 } }));
  await flush();
  r.event("MODIFIED", kexObject("a", { spec: { v: 2 } }));
  await stop(r);
  assert.deepEqual(seen, [["a", "ns", 42, "the index", 1, 0], 2]);
  const memo = r.memos.map.get("ns/a");
  assert.deepEqual({ ...memo }, { shared: "op", touched: 1 });
  assert.deepEqual(r.memos.operator, { shared: "op" }, "the operator memo is not touched");
});

Deno.test("a timer's stopped helper ends its waits when the object goes", async () => {
  const seen: string[] = [];
  const r = rig((registry) =>
    registry.timer("kex", { interval: 60 }, async ({ stopped }: TimerContext) => {
      seen.push("tick");
      if (await stopped.wait(1000)) seen.push(`stopped:${stopped.reason}`);
    })
  );
  r.event("ADDED", kexObject("a"));
  await flush();
  r.event("DELETED", kexObject("a"));
  await flush();
  assert.deepEqual(seen, ["tick", "stopped:resource-deleted"]);
  assert.equal(r.clock.sleeping, 0, "no timers left armed");
});
