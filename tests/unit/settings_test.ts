// Settings groups and defaults (Kopf's names camel-cased, plus our documented differences).

import assert from "node:assert/strict";
import { allAtOnce, asap } from "../../src/settings/lifecycles.ts";
import { Settings } from "../../src/settings/settings.ts";
import { AnnotationsDiffBaseStorage } from "../../src/storage/diffbase.ts";
import { SmartProgressStorage } from "../../src/storage/progress.ts";

Deno.test("defaults follow Kopf where it makes sense and docs/settings.md elsewhere", () => {
  const s = new Settings();
  assert.equal(s.persistence.finalizer, "kopf.zalando.org/KopfFinalizerMarker");
  assert.ok(s.persistence.progressStorage instanceof SmartProgressStorage);
  assert.ok(s.persistence.diffbaseStorage instanceof AnnotationsDiffBaseStorage);
  assert.equal(s.persistence.consistencyTimeout, 5);
  assert.equal(s.execution.defaultBackoff, 60);
  assert.equal(s.execution.lifecycle, asap, "Kopf's default, run round after round in one cycle");
  assert.equal(s.posting.loggers, false);
  assert.equal(s.posting.eventNamePrefix, "kopf-event-");
  assert.equal(s.peering.lifetime, 60);
  assert.equal(s.queueing.workerLimit, 100, "bounded by default, unlike Kopf");
  assert.deepEqual(s.queueing.errorDelays.slice(0, 6), [1, 1, 2, 3, 5, 8]);
  assert.deepEqual(s.networking.errorBackoffs, [1, 1, 2, 3, 5, 8, 13, 21]);
  assert.equal(s.networking.requestTimeout, 300);
  assert.equal(s.networking.qps, 50);
  assert.equal(s.networking.maxQps, 1000);
  assert.equal(s.networking.burst, 100);
  assert.ok(s.networking.maxInFlight > 0);
  assert.equal(s.watching.idleTimeout, null);
  assert.equal(s.networking.readIdleTimeout, 30);
  assert.equal(s.networking.pingTimeout, 15);
  assert.equal(s.networking.readTimeout, 60);
  assert.equal(s.networking.writeTimeout, 75);
  assert.equal(s.networking.watchOpenTimeout, 30);
  assert.deepEqual(s.watching.serverTimeout, [300, 600]);
  assert.equal(s.background.cancellationPolling, 60);
});

Deno.test("settings instances are independent and mutable", () => {
  const a = new Settings();
  const b = new Settings();
  a.execution.lifecycle = allAtOnce;
  a.persistence.finalizer = "example.com/f";
  assert.equal(b.execution.lifecycle, asap);
  assert.equal(b.persistence.finalizer, "kopf.zalando.org/KopfFinalizerMarker");
  assert.notEqual(a.persistence.progressStorage, b.persistence.progressStorage);
});

Deno.test("Kopf's inactivityTimeout is an alias of idleTimeout", () => {
  const s = new Settings();
  s.watching.inactivityTimeout = 70;
  assert.equal(s.watching.idleTimeout, 70);
  assert.equal(s.watching.inactivityTimeout, 70);
});

// A setting accepted and ignored is a silent lie: unknown names, wrong types and the groups that
// do nothing yet are refused, naming the setting and the line of the assignment.
Deno.test("settings refuse unknown names, naming the setting, the line and the right name", () => {
  const s = new Settings() as unknown as Record<string, Record<string, unknown>>;
  assert.throws(
    () => s.execution.max_workers = 4,
    (e: Error) =>
      e.name === "SettingsError" &&
      /^settings\.execution\.max_workers \(settings_test\.ts:\d+\): no such setting; use settings\.execution\.maxWorkers\.$/
        .test(e.message),
  );
  assert.throws(
    () => s.networking.qsp = 10,
    /settings\.networking\.qsp .*no such setting; known: .*qps/,
  );
  assert.throws(() => s.queueing.exitTimeout = 1, /use settings\.process\.drainTimeout/);
  assert.throws(() => s.networking.trustEnv = true, /HTTP_PROXY/);
  assert.throws(() => s.posting = {}, /settings\.posting .*set its fields, not the group/);
  assert.throws(() => s.peeringg = {}, /no such group/);
  assert.throws(() => delete s.networking.qps, /cannot be deleted/);
  assert.throws(
    () => Object.assign(s.watching, { chunk_size: 10 }),
    /use settings\.watching\.chunkSize/,
  );
  // Known names, with their types, are fine — Kopf's names that are accessors too.
  s.networking.qps = 10;
  s.watching.inactivityTimeout = 70;
  s.watching.serverTimeout = [10, 20];
  s.queueing.workerLimit = null;
  assert.equal(s.watching.idleTimeout, 70);
});

Deno.test("settings refuse values of the wrong type; webhook servers and names checked", () => {
  const s = new Settings() as unknown as Record<string, Record<string, unknown>>;
  assert.throws(
    () => s.networking.qps = "50",
    /settings\.networking\.qps .*expects a number; got 50/,
  );
  assert.throws(() => s.networking.qps = NaN, /not NaN/);
  assert.throws(() => s.posting.enabled = "no", /expects a boolean/);
  assert.throws(() => s.persistence.finalizer = 1, /expects a string/);
  assert.throws(() => s.admission.managed = 1, /settings\.admission\.managed .*expects the name/);
  assert.throws(() => s.admission.managed = "Not A Name", /a DNS subdomain/);
  assert.throws(() => s.admission.server = "https://x", /expects a webhook server/);
  s.admission.managed = "auto.kopf.dev";
  s.admission.server = { serve: async function* () {} };
  s.admission.server = null;
});

Deno.test("peering settings: Kopf's, the Lease's and shards; shards only 'auto' or null", () => {
  const s = new Settings();
  s.peering.priority = 100;
  s.peering.name = "example";
  s.peering.standalone = true;
  s.peering.namespaced = false; // Kopf's inverse of clusterwide
  assert.equal(s.peering.clusterwide, true);
  s.peering.leaderElection = true;
  s.peering.leaseName = "my-operator";
  s.peering.shards = null;
  assert.deepEqual(
    [s.peering.leaseDuration, s.peering.renewDeadline, s.peering.retryPeriod],
    [15, 10, 2],
  );
  const raw = s as unknown as Record<string, Record<string, unknown>>;
  s.peering.shards = "auto";
  assert.throws(() => raw.peering.shards = 3, /settings\.peering\.shards .*expects "auto" or null/);
  assert.throws(() => raw.peering.priority = "high", /expects a number/);
  assert.throws(() => raw.peering.leaderElection = "yes", /expects a boolean/);
  assert.throws(() => raw.peering.leader_election = true, /use settings\.peering\.leaderElection/);
});
