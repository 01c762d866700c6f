/**
 * The pure parts of peering: Kopf's peer records judged (dead, higher, same priority), client-go's
 * timing rules, which gates the settings ask for, the Lease grant of `kopf rbac`, and the CLI's
 * peering flags. The behaviour against the API server is in tests/e2e/peering_test.ts and
 * tests/e2e/leader_election_test.ts.
 */
import assert from "node:assert/strict";
import { peersOf, verdict } from "../../src/peering/kopf.ts";
import { timingProblem } from "../../src/peering/leases.ts";
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
      verbs: ["get", "create", "update"],
    }],
  });
  const elsewhere = rbacManifests(resources, { namespaces: ["ops"], leases: { namespace: "x" } });
  assert.ok(elsewhere.some((d) => d.kind === "RoleBinding" && d.metadata.namespace === "x"));
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
