/**
 * Lease leader election through the real command line (`kopf run --leader-election`), three
 * replicas as separate processes against the control plane: only the leader handles objects and
 * runs timers; SIGTERM hands the Lease over at once (released on the way out), SIGKILL after the
 * lease expires; a Lease edited by hand (another holder, a renewTime far off the clock) makes the
 * leader step down with one clear log line, and nobody handles anything twice or at once.
 *
 * Run handlers are counted per replica from their own log lines (`run-start NAME REPLICA MS`,
 * `run-end …`), which also give the intervals checked for overlaps.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const FIXTURE = `${ROOT}tests/e2e/fixtures/replica_operator.ts`;

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);

const kexes = (ns: string) => `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`;
const leasePath = (ns: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/kopf-default`;

function replica(ns: string, name: string): KopfRunner {
  return new KopfRunner(
    ["run", "--verbose", "--leader-election", "-n", ns, "--allow-env=REPLICA,POD_NAME", FIXTURE],
    { env: { KUBECONFIG: c.kubeconfig, REPLICA: name, POD_NAME: name }, cwd: ROOT, timeout: 240 },
  ).start();
}

interface Run {
  name: string;
  replica: string;
  start: number;
  end: number;
}

/** The handler runs a replica's output shows (unfinished ones end at +∞). */
function runsIn(output: string): Run[] {
  const runs = new Map<string, Run>();
  for (const m of output.matchAll(/run-(start|end) (\S+) (\S+) (\d+)$/gm)) {
    const [, what, name, rep, ms] = m;
    const key = `${name}/${rep}/${what === "start" ? ms : ""}`;
    if (what === "start") {
      runs.set(key, { name, replica: rep, start: Number(ms), end: Infinity });
    } else {
      const open = [...runs.values()].find((r) =>
        r.name === name && r.replica === rep && r.end === Infinity
      );
      if (open) open.end = Number(ms);
    }
  }
  return [...runs.values()];
}

function assertNoOverlaps(runs: Run[]): void {
  const byName = Map.groupBy(runs, (r) => r.name);
  for (const [name, list] of byName) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      assert.ok(
        list[i].start >= list[i - 1].end,
        `${name}: handled by ${list[i - 1].replica} and ${list[i].replica} at once`,
      );
    }
  }
}

async function create(ns: string, name: string, spec: Obj = {}): Promise<void> {
  await c.api("POST", kexes(ns), {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name },
    spec,
  });
}

async function handledBy(ns: string, name: string, timeout = 60): Promise<string> {
  return await waitFor(async () => {
    const obj = await c.api("GET", `${kexes(ns)}/${name}`);
    return obj.status?.create_fn?.replica as string | undefined;
  }, { timeout, message: `${name} handled` });
}

const LEADS = /Leader election: this replica \((\S+?)_\w+\) leads now/;

/** Which running replica leads now, by its last leadership line (waits for one). */
async function leader(replicas: Map<string, KopfRunner>, timeout = 60): Promise<string> {
  return await waitFor(() => {
    for (const [name, r] of replicas) {
      if (!r.running) continue;
      const lines = r.output.split("\n");
      const lead = lines.findLastIndex((l) => LEADS.test(l));
      const lost = lines.findLastIndex((l) => /does not lead any more/.test(l));
      if (lead >= 0 && lead > lost) return name;
    }
    return undefined;
  }, { timeout, message: "a leader" });
}

Deno.test("leader election: 3 replicas, one handles all; SIGTERM hands over at once, SIGKILL after the lease", async () => {
  const ns = await c.namespace("e2e-leader");
  const replicas = new Map(["r1", "r2", "r3"].map((n) => [n, replica(ns, n)]));
  const outputs = new Map<string, string>();
  try {
    for (const r of replicas.values()) {
      await r.waitForOutput(/campaigning for the Lease/, { timeout: 120 });
    }
    const first = await leader(replicas);

    // 200 objects, and one with a timer: all handled by the leader, each exactly once.
    const COUNT = 200;
    await Promise.all(
      Array.from({ length: COUNT }, (_, i) => create(ns, `obj-${i}`)),
    );
    await create(ns, "ticker", { tick: true });
    await waitFor(async () => {
      const items: Obj[] = (await c.api("GET", kexes(ns))).items;
      return items.filter((i) => i.status?.create_fn).length === COUNT + 1 || undefined;
    }, { timeout: 120, message: "all objects handled" });
    await replicas.get(first)!.waitForOutput(/tick ticker /, { timeout: 30 });
    const perReplica = Object.fromEntries(
      [...replicas].map(([n, r]) => [n, runsIn(r.output).length]),
    );
    assert.deepEqual(
      perReplica,
      Object.fromEntries([...replicas.keys()].map((n) => [n, n === first ? COUNT + 1 : 0])),
    );
    for (const [n, r] of replicas) {
      if (n !== first) assert.doesNotMatch(r.output, /tick ticker /, `${n} ran the leader's timer`);
    }

    // SIGTERM: the Lease is released on the way out; another replica leads within 3 s.
    const old = replicas.get(first)!;
    const termAt = Date.now();
    const stopped = old.stop();
    replicas.delete(first);
    const second = await leader(replicas, 30);
    const termTakeover = (Date.now() - termAt) / 1000;
    assert.equal(await stopped, 0);
    outputs.set(first, old.output);
    assert.match(old.output, /released the Lease/);
    console.log(`SIGTERM takeover: ${termTakeover.toFixed(1)} s`);
    assert.ok(termTakeover <= 3, `SIGTERM takeover took ${termTakeover} s (goal: 3 s)`);
    await create(ns, "after-term");
    assert.equal(await handledBy(ns, "after-term"), second);
    await replicas.get(second)!.waitForOutput(/tick ticker /, { timeout: 30 });

    // SIGKILL: no release; the third replica leads after the lease expires (15 s + retries).
    const killed = replicas.get(second)!;
    const killAt = Date.now();
    Deno.kill(killed.pid!, "SIGKILL");
    await killed.wait().catch(() => {});
    replicas.delete(second);
    outputs.set(second, killed.output);
    await create(ns, "after-kill");
    const third = await leader(replicas, 60);
    const killTakeover = (Date.now() - killAt) / 1000;
    assert.equal(await handledBy(ns, "after-kill", 30), third);
    const killHandled = (Date.now() - killAt) / 1000;
    console.log(
      `SIGKILL takeover: leads after ${killTakeover.toFixed(1)} s, ` +
        `new object handled after ${killHandled.toFixed(1)} s`,
    );
    assert.ok(killTakeover <= 25, `SIGKILL takeover took ${killTakeover} s (goal: 20 s)`);
    await replicas.get(third)!.waitForOutput(/tick ticker /, { timeout: 30 });

    // Across all replicas: every object's create handler ran once, never two at once.
    for (const [n, r] of replicas) outputs.set(n, r.output);
    const runs = [...outputs.values()].flatMap(runsIn);
    assertNoOverlaps(runs);
    const perName = Map.groupBy(runs, (r) => r.name);
    assert.equal(perName.size, COUNT + 3);
    for (const [name, list] of perName) assert.equal(list.length, 1, `${name} ran ${list.length}×`);
    // Timer ticks never came from two replicas in the same second-long period.
    const ticks = [...outputs].flatMap(([n, out]) =>
      [...out.matchAll(/tick ticker (\S+) (\d+)$/gm)].map((m) => ({
        rep: m[1],
        at: Number(m[2]),
        n,
      }))
    ).sort((a, b) => a.at - b.at);
    for (let i = 1; i < ticks.length; i++) {
      if (ticks[i].rep !== ticks[i - 1].rep) {
        assert.ok(ticks[i].at > ticks[i - 1].at, "timers of two replicas ticked at once");
      }
    }
    const lastOfFirst = Math.max(...ticks.filter((t) => t.rep === first).map((t) => t.at));
    assert.ok(lastOfFirst <= termAt + 1000, "the old leader's timer ticked after it stopped");
  } finally {
    for (const r of replicas.values()) await r.stop().catch(() => {});
    await c.deleteNamespace(ns);
  }
});

Deno.test("leader election: a Lease edited by hand or deleted — one clear line, no double handling", async () => {
  const ns = await c.namespace("e2e-lease-edit");
  const replicas = new Map(["a", "b"].map((n) => [n, replica(ns, n)]));
  try {
    for (const r of replicas.values()) {
      await r.waitForOutput(/campaigning for the Lease/, { timeout: 120 });
    }
    const first = await leader(replicas);
    const other = first === "a" ? "b" : "a";
    await create(ns, "before");
    assert.equal(await handledBy(ns, "before"), first);
    // A slow handler is running on the leader when it loses the Lease: it is signalled.
    await create(ns, "slow", { ms: 20_000 });
    await replicas.get(first)!.waitForOutput(/run-start slow /, { timeout: 30 });

    // An intruder takes the Lease by hand, with a renewTime an hour off (clock skew): the leader
    // steps down; the other sees the skew, and still waits a whole lease duration by its clock.
    const lease = await c.api("GET", leasePath(ns));
    const editAt = Date.now();
    await c.api("PUT", leasePath(ns), {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: "intruder",
        renewTime: new Date(Date.now() - 3_600_000).toISOString().replace("Z", "000Z"),
      },
    });
    await replicas.get(first)!.waitForOutput(
      /Lease \S+ is held by intruder, not by this replica \(edited by hand\?\); stepping down/,
      { timeout: 15 },
    );
    await replicas.get(first)!.waitForOutput(new RegExp(`signalled slow ${first} `), {
      timeout: 10,
    });
    await replicas.get(other)!.waitForOutput(
      /of intruder has renewTime .* off this replica's clock/,
      {
        timeout: 15,
      },
    );
    await create(ns, "during");
    // Nobody handles it while the intruder's lease is valid (15 s from when it was seen).
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const during = await c.api("GET", `${kexes(ns)}/during`);
    assert.equal(during.status?.create_fn, undefined, "handled while the intruder held the Lease");
    const next = await leader(replicas, 30);
    assert.ok(Date.now() - editAt >= 14_000, "taken over before the intruder's lease expired");
    assert.equal(await handledBy(ns, "during"), next);
    // The slow object is finished by the next leader (after the first run was cut short).
    assert.equal(await handledBy(ns, "slow", 60), next);

    // The Lease deleted by hand: the leader creates it again and keeps leading; the other, which
    // may see it absent meanwhile, does not take it (it would lead while the leader still does).
    const linesBefore = new Map([...replicas].map(([n, r]) => [n, r.output.length]));
    await c.api("DELETE", leasePath(ns));
    await replicas.get(next)!.waitForOutput(/the Lease \S+ was deleted; creating it again/, {
      timeout: 15,
    });
    await create(ns, "after");
    const by = await handledBy(ns, "after");
    assert.equal(by, next);
    await new Promise((resolve) => setTimeout(resolve, 5_000)); // a few more retry periods
    for (const [n, r] of replicas) {
      const since = r.output.slice(linesBefore.get(n));
      assert.doesNotMatch(since, n === next ? /does not lead any more/ : /leads now/, n);
    }
    const runs = [...replicas.values()].flatMap((r) => runsIn(r.output));
    assertNoOverlaps(runs);
    assert.deepEqual(
      runs.map((r) => r.name).sort(),
      ["after", "before", "during", "slow", "slow"],
      "each object handled once (the slow one: cut short, then again by the next leader)",
    );
    for (const r of replicas.values()) {
      assert.doesNotMatch(r.output, /Traceback| {4}at /, "no stack trace in the log");
    }
  } finally {
    for (const r of replicas.values()) await r.stop().catch(() => {});
    await c.deleteNamespace(ns);
  }
});
