// Activities (startup, cleanup, probe, login): retries until success, failures for good,
// results by id, settings and memo; login credentials: priority, expiration, re-login on 401.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { ActivityError, runActivity } from "../../src/engines/activities.ts";
import { ConnectionInfo, loginConfig, LoginCredentials } from "../../src/engines/login.ts";
import { Settings } from "../../src/settings/settings.ts";
import { ManualClock } from "../support/engines.ts";

Deno.test("an activity retries its handlers per their errors until all succeed; results by id", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.startup({ id: "simple" }, ({ memo, settings }) => {
    calls.push("simple");
    memo.lock = "made";
    settings.networking.qps = 7;
  });
  registry.on.startup({ id: "retried" }, ({ retry }) => {
    calls.push(`retried:${retry}`);
    if (retry < 3) throw new kopf.TemporaryError("not yet", { delay: 1 });
    return { ok: true };
  });
  const clock = new ManualClock();
  const settings = new Settings();
  const memo: kopf.Memo = {};
  const running = runActivity({ registry, activity: "startup", settings, memo, clock });
  await clock.advance(5000);
  assert.deepEqual(await running, { retried: { ok: true } });
  assert.deepEqual(calls, ["simple", "retried:0", "retried:1", "retried:2", "retried:3"]);
  assert.equal(settings.networking.qps, 7, "startup handlers may change the settings");
  assert.equal(memo.lock, "made", "activities share the operator memo");
});

Deno.test("an activity with a handler failing for good rejects with ActivityError", async () => {
  const registry = new kopf.Registry();
  registry.on.startup({ id: "bad" }, () => {
    throw new kopf.PermanentError("Unable to start!");
  });
  registry.on.startup({ id: "good" }, () => 1);
  await assert.rejects(
    runActivity({ registry, activity: "startup", settings: new Settings(), memo: {} }),
    (error: unknown) =>
      error instanceof ActivityError && error.errors.has("bad") && !error.errors.has("good") &&
      /Unable to start!/.test(error.message),
  );
});

Deno.test("an activity stops retrying when its signal aborts", async () => {
  const registry = new kopf.Registry();
  registry.on.cleanup(() => {
    throw new Error("always");
  });
  const controller = new AbortController();
  const running = runActivity({
    registry,
    activity: "cleanup",
    settings: new Settings(),
    memo: {},
    signal: controller.signal,
  });
  controller.abort(new Error("stop"));
  await assert.rejects(running, /stop/);
});

Deno.test("login credentials: highest priority first, the next after a 401, re-login when none is left", async () => {
  const registry = new kopf.Registry();
  let logins = 0;
  registry.on.login({ id: "low" }, () => ({ server: "https://h:1/", token: `low-${logins}` }));
  registry.on.login({ id: "high" }, () => {
    logins += 1;
    return new ConnectionInfo({
      server: "https://h:1/",
      token: `high-${logins}`,
      priority: 10,
      caData: btoa("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n"),
    });
  });
  const config = await loginConfig({ registry, settings: new Settings(), memo: {} });
  assert.ok(config);
  assert.equal(config.server, "https://h:1");
  assert.match(config.tls.caPem ?? "", /BEGIN CERTIFICATE/, "base64 CA data is decoded");
  const credentials = config.credentials;
  const header = async () => (await credentials.get()).headers[0][1];
  assert.equal(await header(), "Bearer high-1");
  assert.equal(credentials.invalidate(), true);
  assert.equal(await header(), "Bearer low-0");
  credentials.invalidate();
  assert.equal(await header(), "Bearer high-2", "the vault ran empty: logged in again");
  assert.equal((credentials as LoginCredentials).logins, 2);
});

Deno.test("login credentials expire and are refreshed; basic auth and client certificates are supported", async () => {
  const registry = new kopf.Registry();
  let n = 0;
  let now = 0;
  registry.on.login(() => {
    n += 1;
    return {
      server: "https://h:1",
      username: "u",
      password: `p${n}`,
      certificateData: "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n",
      privateKeyData: "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n",
      expiration: new Date(now + 30_000),
    };
  });
  const credentials = new LoginCredentials({
    registry,
    settings: new Settings(),
    memo: {},
    now: () => now,
  });
  const first = await credentials.get();
  assert.deepEqual(first.headers, [["Authorization", `Basic ${btoa("u:p1")}`]]);
  assert.match(first.certPem ?? "", /CERTIFICATE/);
  assert.match(first.keyPem ?? "", /PRIVATE KEY/);
  now = 10_000;
  assert.deepEqual((await credentials.get()).headers, first.headers, "still valid");
  now = 31_000;
  assert.deepEqual((await credentials.get()).headers, [["Authorization", `Basic ${btoa("u:p2")}`]]);
});

Deno.test("without login handlers the usual configuration applies; bad results fail the login", async () => {
  const none = new kopf.Registry();
  assert.equal(await loginConfig({ registry: none, settings: new Settings(), memo: {} }), null);
  const bad = new kopf.Registry();
  bad.on.login({ id: "bad", errors: "permanent" }, () => ({ token: "no server" }));
  await assert.rejects(
    loginConfig({ registry: bad, settings: new Settings(), memo: {} }),
    /no connection info/,
  );
});
