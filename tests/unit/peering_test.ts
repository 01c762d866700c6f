/**
 * The pure parts of peering: Kopf's peer records judged (dead, higher, same priority), client-go's
 * timing rules, which gates the settings ask for, the Lease grant of `kopf rbac`, and the CLI's
 * peering flags. The behaviour against the API server is in tests/e2e/peering_test.ts and
 * tests/e2e/leader_election_test.ts.
 */
import assert from "node:assert/strict";
import { peersOf, verdict } from "../../src/peering/kopf.ts";
import { timingProblem } from "../../src/peering/leases.ts";
import { admittedIntervals, fnv1a64, Ring, shardSelector } from "../../src/peering/shards.ts";
import { processingGate } from "../../src/peering/gates.ts";
import { Settings } from "../../src/settings/settings.ts";
import { rbacManifests } from "../../src/cli/rbac.ts";
import { operatorOptionsOf } from "../../src/cli/options.ts";

const NOW = Date.parse("2026-12-03T10:00:00Z");

Deno.test("Kopf's peer records: dead after lastseen + lifetime; higher and same priorities pause", () => {
  const peers = peersOf({
    me: { priority: 5, lifetime: 60, lastseen: "2026-12-03T09:59:59+00:00" },
    high: { priority: 100, lifetime: 60, lastseen: "2026-12-03T09:59:30.123456+00:00" },
    same: { priority: 5, lifetime: 60, lastseen: "2026-12-03T09:59:50Z" },
    low: { priority: 0, lifetime: 60, lastseen: "2026-12-03T09:59:50Z" },
    gone: { priority: 999, lifetime: 10, lastseen: "2026-12-03T09:59:50Z" },
    removed: null,
  }, NOW);
  assert.deepEqual(peers.map((p) => [p.identity, p.dead]), [
    ["me", false],
    ["high", false],
    ["same", false],
    ["low", false],
    ["gone", true],
  ]);
  const v = verdict(peers, "me", 5);
  assert.equal(v.pause, true);
  assert.deepEqual(v.higher.map((p) => p.identity), ["high"]);
  assert.deepEqual(v.same.map((p) => p.identity), ["same"]);
  assert.deepEqual(v.dead.map((p) => p.identity), ["gone"]);
  assert.equal(verdict(peers, "me", 101).pause, false, "only lower and dead peers: runs");
  assert.deepEqual(peersOf(undefined, NOW), []);
});

Deno.test("client-go's timing rules are checked with one line naming the setting", () => {
  assert.equal(timingProblem({ leaseDuration: 15, renewDeadline: 10, retryPeriod: 2 }), undefined);
  assert.match(
    timingProblem({ leaseDuration: 10, renewDeadline: 10, retryPeriod: 2 }) ?? "",
    /leaseDuration \(10\) must be greater than renewDeadline \(10\)/,
  );
  assert.match(
    timingProblem({ leaseDuration: 15, renewDeadline: 2, retryPeriod: 2 }) ?? "",
    /renewDeadline \(2\) must be greater than 1.2 × retryPeriod \(2\)/,
  );
  const settings = new Settings();
  settings.peering.leaderElection = true;
  settings.peering.renewDeadline = 20;
  assert.throws(() => processingGate(settings), /leaseDuration \(15\) must be greater/);
});

Deno.test("which gates the settings ask for: none when standalone without leader election", () => {
  const settings = new Settings();
  assert.equal(processingGate(settings)?.name, "kopf-peering"); // Kopf's auto-detection
  settings.peering.standalone = true;
  assert.equal(processingGate(settings), undefined);
  settings.peering.leaderElection = true;
  assert.equal(processingGate(settings)?.name, "leader-election");
  settings.peering.standalone = false;
  assert.equal(processingGate(settings)?.name, "kopf-peering+leader-election");
});

Deno.test("kopf rbac with leader election grants the Lease in its namespace", () => {
  const resources = [{
    group: "kopf.dev",
    plural: "kopfexamples",
    namespaced: true,
    patch: true,
    status: true,
  }];
  const without = rbacManifests(resources, { namespaces: ["ops"] });
  assert.ok(!JSON.stringify(without).includes("leases"));
  const docs = rbacManifests(resources, { namespaces: ["ops"], leases: {} });
  const role = docs.find((d) => d.kind === "Role" && d.metadata.name === "kopf-operator-leases");
  assert.deepEqual(role, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "kopf-operator-leases", namespace: "ops" },
    rules: [{
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "list", "create", "update", "delete"],
    }],
  });
  const elsewhere = rbacManifests(resources, { namespaces: ["ops"], leases: { namespace: "x" } });
  assert.ok(elsewhere.some((d) => d.kind === "RoleBinding" && d.metadata.namespace === "x"));
});

Deno.test("kopf rbac --peering grants Kopf's peering objects of the operator's scope", () => {
  const rule = (plural: string) => ({
    apiGroups: ["kopf.dev", "zalando.org"],
    resources: [plural],
    verbs: ["get", "list", "watch", "patch"],
  });
  const namespaced = rbacManifests([], { namespaces: ["ops"], peering: true });
  const role = namespaced.find((d) => d.kind === "Role" && d.metadata.namespace === "ops");
  assert.deepEqual((role as { rules: unknown[] }).rules.at(-1), rule("kopfpeerings"));
  const clusterwide = rbacManifests([], { peering: true });
  const cluster = clusterwide.find((d) => d.kind === "ClusterRole");
  assert.deepEqual((cluster as { rules: unknown[] }).rules.at(-1), rule("clusterkopfpeerings"));
  assert.ok(!JSON.stringify(rbacManifests([], {})).includes("peering"));
});

Deno.test("the CLI's peering flags: --peering, --leader-election, --lease-namespace", () => {
  assert.deepEqual(
    operatorOptionsOf({ peering: "example", leaderElection: true, leaseNamespace: "ops" }),
    { peering: "example", leaderElection: true, leaseNamespace: "ops" },
  );
  assert.throws(
    () => operatorOptionsOf({ peering: "Bad Name" }),
    /--peering must be an object name/,
  );
  assert.throws(
    () => operatorOptionsOf({ peering: "x", standalone: true }),
    /--peering and --standalone cannot be used together/,
  );
  assert.throws(() => operatorOptionsOf({ leaseNamespace: "a/b" }), /--lease-namespace must be/);
});

Deno.test("FNV-1a 64 over metadata.uid: the hash kube-apiserver's shardRange uses", () => {
  // Checked against kube-apiserver v1.36.3 with ShardedListAndWatch: this uid was listed by
  // shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000'), and
  // a6b…'s hash is above the middle.
  assert.equal(fnv1a64("d4077920-be17-49dc-9ce2-14900c8642a9"), 0x2a3be766c3793c51n);
  assert.equal(fnv1a64(""), 0xcbf29ce484222325n);
});

Deno.test("the ring splits 600 uids over 3 members within ±20 %, and hand-overs never admit one hash twice", () => {
  const uids = Array.from({ length: 600 }, () => crypto.randomUUID());
  const members = ["pod-a_1", "pod-b_2", "pod-c_3"];
  const ring = new Ring(members);
  const counts = new Map<string, number>();
  for (const uid of uids) {
    const owner = ring.owner(fnv1a64(uid))!;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  for (const m of members) {
    const share = (counts.get(m) ?? 0) / 200;
    assert.ok(share > 0.8 && share < 1.2, `${m}: ${counts.get(m)} of 600`);
  }
  // Stable: every member admits exactly its own under the shared view.
  const views = new Map(members.map((m) => [m, ring]));
  const admitted = (me: string, published: Map<string, Ring>) =>
    admittedIntervals(me, published.get(me)!, new Map([...published].filter(([m]) => m !== me)));
  const inside = (intervals: [bigint, bigint][], h: bigint) =>
    intervals.some(([s, e]) => h >= s && h < e);
  const check = (published: Map<string, Ring>) => {
    const sets = [...published.keys()].map((m) => admitted(m, published));
    for (const uid of uids) {
      const h = fnv1a64(uid);
      const n = sets.filter((set) => inside(set, h)).length;
      assert.ok(n <= 1, `${uid} admitted by ${n} members`);
    }
    return sets;
  };
  const stable = check(views);
  for (const uid of uids) {
    assert.equal(stable.filter((set) => inside(set, fnv1a64(uid))).length, 1);
  }
  // A fourth joins with the new view while the others still publish the old one: it gets nothing
  // of theirs; once they publish the new view too, every hash has exactly one owner again.
  const four = new Ring([...members, "pod-d_4"]);
  const joining = new Map([...views, ["pod-d_4", four]]);
  const during = check(joining);
  assert.equal(during.at(-1)!.length, 0, "the newcomer takes nothing still claimed");
  const moved = new Map([...joining].map(([m]) => [m, four]));
  const after = check(moved);
  for (const uid of uids) {
    assert.equal(after.filter((set) => inside(set, fnv1a64(uid))).length, 1);
  }
});

Deno.test("the ring's slots: even shares, few ranges for a shardSelector, few moves on a join", () => {
  const space = 1n << 64n;
  const width = (ranges: [bigint, bigint][]) => ranges.reduce((sum, [s, e]) => sum + e - s, 0n);
  for (const count of [1, 2, 3, 5, 16, 17, 40]) {
    const members = Array.from({ length: count }, (_, i) => `replica-${i}_${i * 7919}`);
    const ring = new Ring(members);
    const slots = ring.cuts.length;
    assert.ok(slots >= 64 && slots >= 4 * count, `${count} members: ${slots} slots`);
    let total = 0n;
    for (const m of members) {
      const ranges = ring.ranges(m);
      const owned = width(ranges);
      total += owned;
      // ⌊slots/members⌋ or one more slot each.
      const least = BigInt(Math.floor(slots / count)) * (space / BigInt(slots));
      assert.ok(owned >= least && owned <= least + space / BigInt(slots), `${m}: ${owned}`);
      assert.ok(ranges.length <= Math.ceil(slots / count), `${m}: ${ranges.length} ranges`);
      for (const [s, e] of ranges) {
        assert.equal(ring.owner(s), m);
        assert.equal(ring.owner(e - 1n), m);
      }
    }
    assert.equal(total, space, "every hash has an owner");
  }
  // A fourth member takes about a quarter; the others keep most of what they had.
  const three = new Ring(["a_1", "b_2", "c_3"]);
  const four = new Ring(["a_1", "b_2", "c_3", "d_4"]);
  const moved = three.cuts.filter((cut) => three.owner(cut) !== four.owner(cut)).length;
  assert.ok(moved <= 64 / 4 + 6, `${moved} of 64 slots moved`);
  assert.equal(
    shardSelector(three.ranges("a_1"))!.split(" || ").length,
    three.ranges("a_1").length,
  );
  assert.equal(shardSelector([[0n, space]]), undefined);
  assert.equal(
    shardSelector([[1n << 63n, space]]),
    "shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')",
  );
});
