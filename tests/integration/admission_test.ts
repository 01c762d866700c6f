// Admission webhooks against the real kube-apiserver: the operator's WebhookServer listens on
// 127.0.0.1 with a self-signed CA it generated, writes the managed webhook configurations with
// that CA bundle, and the API server calls it over TLS for every matching API request. Handler
// calls are counted by the handlers themselves; configuration writes by the API server's
// `apiserver_request_total`. The "operator down" cases are the real thing: the operator stopped,
// its persistent webhooks left pointing at a port nobody listens on.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { createObject, getObject, logs, startOperator, testResource } from "../support/engine.ts";
import { waitFor } from "../support/wait.ts";
import { generateCertificates } from "../../src/webhooks/certificates.ts";

const c = await cluster();
const res = await testResource(c, "admissions");
const http = Deno.createHttpClient({ caCerts: [c.caPem] });

/** A raw API request that keeps the status, the Warning headers and the body. */
async function request(
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<{ status: number; warnings: string[]; body: Obj }> {
  const response = await fetch(`${c.server}${path}`, {
    method,
    client: http,
    headers: { Authorization: `Bearer ${c.token}`, "Content-Type": contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const warnings = (response.headers.get("warning") ?? "").split(/,\s*(?=299 )/).filter(Boolean);
  return { status: response.status, warnings, body: await response.json() };
}

function object(name: string, spec: Obj = {}, labels: Record<string, string> = {}): Obj {
  return { apiVersion: res.apiVersion, kind: res.kind, metadata: { name, labels }, spec };
}

async function configuration(kind: "validating" | "mutating", name: string): Promise<Obj | null> {
  try {
    return await c.api(
      "GET",
      `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${name}`,
    );
  } catch (error) {
    if ((error as { status?: number }).status === 404) return null;
    throw error;
  }
}

/** Settings with a self-signed local server and the managed configurations named `name`. */
function settingsFor(name: string, server: kopf.WebhookServerProtocol = new kopf.WebhookServer()) {
  const settings = new kopf.Settings();
  settings.admission.server = server;
  settings.admission.managed = name;
  return settings;
}

const counter = () => {
  const calls: Record<string, number> = {};
  return { calls, count: (id: string) => calls[id] = (calls[id] ?? 0) + 1 };
};

Deno.test("validating and mutating handlers answer the API server; configurations come and go", async () => {
  const ns = await c.namespace("adm");
  const name = `basic-${ns}.kopf.dev`;
  const { calls, count } = counter();
  const registry = new kopf.Registry();
  registry.on.validate(
    res.plural,
    { id: "check_size" },
    ({ spec, warnings, userinfo, headers }) => {
      count("check_size");
      if (spec.size === 1) warnings.push("size 1 is the minimum");
      if (typeof spec.size === "number" && spec.size < 1) {
        throw new kopf.AdmissionError("spec.size must be positive.", { code: 422 });
      }
      if (spec.size === 13) throw new Error("unlucky\nsecond line");
      assert.equal(userinfo.username, "kube-admin");
      assert.match(headers["content-type"] ?? "", /json/);
    },
  );
  const dryruns: boolean[] = [];
  registry.on.mutate(
    res.plural,
    { id: "defaults", operations: ["CREATE"] },
    ({ spec, patch, dryrun, warnings }) => {
      count("defaults");
      dryruns.push(dryrun);
      if (spec.size === undefined) {
        patch.spec.size = 1;
        warnings.push("size is not given; 1 is assumed");
      }
      patch.metadata.labels["admission.kopf.dev/mutated"] = "yes";
    },
  );
  registry.on.validate(res.plural, { id: "updates_only", operation: "UPDATE" }, () => {
    count("updates_only");
  });
  registry.on.validate(res.plural, { id: "only_db", labels: { tier: "db" } }, () => {
    count("only_db");
  });
  registry.on.validate(
    res.plural,
    { id: "status_only", subresource: "status" },
    ({ subresource, status }) => {
      count("status_only");
      if (subresource !== "status") throw new Error(`subresource is ${subresource}`);
      if (status.phase === "Broken") {
        throw new kopf.AdmissionError("no broken status", {
          code: 400,
        });
      }
    },
  );
  const before = await c.metrics();
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    settings: settingsFor(name),
  });
  try {
    const writes = (await c.metrics()).since(before);
    const validating = await configuration("validating", name);
    const mutating = await configuration("mutating", name);
    assert.equal(validating?.webhooks.length, 4);
    assert.equal(mutating?.webhooks.length, 1);
    assert.equal(
      writes.count({ verb: "POST", resource: "validatingwebhookconfigurations" }) +
        writes.count({ verb: "POST", resource: "mutatingwebhookconfigurations" }),
      2,
      "one create per configuration",
    );
    assert.equal(writes.count({ verb: "PATCH", resource: "validatingwebhookconfigurations" }), 0);
    const onlyDb = validating!.webhooks.find((w: Obj) => w.name === `only-db.${name}`);
    assert.deepEqual(onlyDb.objectSelector, {
      matchExpressions: [{ key: "tier", operator: "In", values: ["db"] }],
    });
    assert.match(onlyDb.clientConfig.url, /^https:\/\/127\.0\.0\.1:\d+\/only_db$/);
    assert.ok(onlyDb.clientConfig.caBundle);
    assert.equal(onlyDb.failurePolicy, "Fail");
    assert.equal(onlyDb.sideEffects, "None");

    // Rejected with the handler's message and code.
    const bad = await request("POST", res.path(ns), object("bad", { size: 0 }));
    assert.equal(bad.status, 422);
    assert.match(bad.body.message, /spec\.size must be positive\./);
    // Any other error: 500 and the first line of its message.
    const buggy = await request("POST", res.path(ns), object("buggy", { size: 13 }));
    assert.equal(buggy.status, 500);
    assert.match(buggy.body.message, /unlucky/);
    assert.doesNotMatch(buggy.body.message, /second line/);
    // Admitted, with the warning, and mutated.
    const good = await request("POST", res.path(ns), object("good"));
    assert.equal(good.status, 201, JSON.stringify(good));
    // Warnings of both: the mutating webhook's, then the validating one's (which saw the patch).
    assert.equal(good.warnings.length, 2, JSON.stringify(good.warnings));
    assert.match(good.warnings[0], /size is not given; 1 is assumed/);
    assert.match(good.warnings[1], /size 1 is the minimum/);
    const stored = await getObject(c, res, ns, "good");
    assert.equal(stored?.spec.size, 1);
    assert.equal(stored?.metadata.labels["admission.kopf.dev/mutated"], "yes");
    // A dry run reaches the handlers with dryrun: true and stores nothing.
    const dry = await request("POST", `${res.path(ns)}?dryRun=All`, object("dry", { size: 2 }));
    assert.equal(dry.status, 201);
    assert.equal(dry.body.spec.size, 2);
    assert.equal(dry.body.metadata.labels["admission.kopf.dev/mutated"], "yes");
    assert.equal(await getObject(c, res, ns, "dry"), null);
    assert.deepEqual(dryruns.slice(-2), [false, true]);
    // The mutation was not called for the rejected ones' validation order: every create once.
    assert.equal(calls.defaults, 4, "the mutating handler: bad, buggy, good, dry");
    assert.equal(calls.check_size, 4);
    assert.equal(calls.updates_only, undefined, "no call for CREATE");
    assert.equal(calls.only_db, undefined, "no call for objects without tier=db");
    // Labels: only matching objects reach the webhook at all.
    await createObject(c, res, ns, "db1", { size: 3 }, { labels: { tier: "db" } });
    await createObject(c, res, ns, "web1", { size: 3 }, { labels: { tier: "web" } });
    assert.equal(calls.only_db, 1);
    // Operation: UPDATE.
    await c.api("PATCH", res.path(ns, "good"), { spec: { size: 5 } }, {
      contentType: "application/merge-patch+json",
    });
    assert.equal(calls.updates_only, 1);
    assert.equal(calls.defaults, 6, "CREATE only: not called for the update");
    // Subresource: only status writes reach it.
    assert.equal(calls.status_only, undefined);
    const status = await request(
      "PATCH",
      `${res.path(ns, "good")}/status`,
      { status: { phase: "Broken" } },
      "application/merge-patch+json",
    );
    assert.equal(status.status, 400);
    assert.match(status.body.message, /no broken status/);
    assert.equal(calls.status_only, 1);
    // One line per rejection in the operator's log, no stack.
    const line = logs.find((l) => l.message.includes("failed: unlucky"));
    assert.ok(line, "the failing handler is logged");
    assert.doesNotMatch(line.message, /\n/);
  } finally {
    await operator.stop();
  }
  // Nothing persistent: both configurations are gone.
  assert.equal(await configuration("validating", name), null);
  assert.equal(await configuration("mutating", name), null);
  const after = await request("POST", res.path(ns), object("after", { size: 0 }));
  assert.equal(after.status, 201, "no webhook is left to reject it");
  await c.deleteNamespace(ns);
});

Deno.test("persistent webhooks stay; with the operator down, ignoreFailures admits, the default rejects", async () => {
  const ns = await c.namespace("admdown");
  const name = `down-${ns}.kopf.dev`;
  const registry = new kopf.Registry();
  registry.on.validate(
    res.plural,
    { id: "strict", persistent: true, labels: { policy: "strict" } },
    () => {},
  );
  registry.on.validate(res.plural, {
    id: "lenient",
    persistent: true,
    ignoreFailures: true,
    sideEffects: true,
    labels: { policy: "lenient" },
  }, () => {});
  registry.on.validate(res.plural, { id: "passing", labels: { policy: "strict" } }, () => {});
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    settings: settingsFor(name),
  });
  try {
    assert.equal(
      (await request("POST", res.path(ns), object("s1", {}, { policy: "strict" }))).status,
      201,
    );
  } finally {
    await operator.stop();
  }
  try {
    const left = await configuration("validating", name);
    assert.deepEqual(left?.webhooks.map((w: Obj) => w.name).sort(), [
      `lenient.${name}`,
      `strict.${name}`,
    ]);
    assert.equal(
      left?.webhooks.find((w: Obj) => w.name === `lenient.${name}`).failurePolicy,
      "Ignore",
    );
    assert.equal(
      left?.webhooks.find((w: Obj) => w.name === `lenient.${name}`).sideEffects,
      "NoneOnDryRun",
    );
    assert.equal(await configuration("mutating", name), null, "no mutating handlers at all");
    const strict = await request("POST", res.path(ns), object("s2", {}, { policy: "strict" }));
    assert.equal(strict.status, 500);
    assert.match(strict.body.message, /failed calling webhook "strict\./);
    const lenient = await request("POST", res.path(ns), object("l2", {}, { policy: "lenient" }));
    assert.equal(lenient.status, 201);
  } finally {
    await c.api(
      "DELETE",
      `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${name}`,
    );
    await c.deleteNamespace(ns);
  }
});

Deno.test("a handler that never answers is cut at its timeout; the answer follows ignoreFailures", async () => {
  const ns = await c.namespace("admslow");
  const name = `slow-${ns}.kopf.dev`;
  const registry = new kopf.Registry();
  const aborted: string[] = [];
  const hang = (id: string) => ({ signal }: kopf.AdmissionContext) =>
    new Promise<void>(() => signal.addEventListener("abort", () => aborted.push(id)));
  registry.on.validate(
    res.plural,
    { id: "hangs", timeout: 3, labels: { slow: "fail" } },
    hang("hangs"),
  );
  registry.on.validate(res.plural, {
    id: "hangs_lenient",
    timeout: 3,
    ignoreFailures: true,
    labels: { slow: "ignore" },
  }, hang("hangs_lenient"));
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    settings: settingsFor(name),
  });
  try {
    const failed = await request("POST", res.path(ns), object("f", {}, { slow: "fail" }));
    assert.equal(failed.status, 500);
    assert.match(failed.body.message, /timed out|timeout/i);
    const admitted = await request("POST", res.path(ns), object("i", {}, { slow: "ignore" }));
    assert.equal(admitted.status, 201);
    assert.deepEqual(aborted.sort(), ["hangs", "hangs_lenient"], "the cut handlers' signals abort");
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test("the managed configurations follow a certificate change of the server's files", async () => {
  const ns = await c.namespace("admcert");
  const name = `cert-${ns}.kopf.dev`;
  const dir = await Deno.makeTempDir();
  const write = async () => {
    const certs = await generateCertificates(["127.0.0.1"]);
    await Deno.writeTextFile(`${dir}/tls.crt`, certs.certPem);
    await Deno.writeTextFile(`${dir}/tls.key`, certs.keyPem);
    await Deno.writeTextFile(`${dir}/ca.crt`, certs.caPem);
    return btoa(certs.caPem);
  };
  const first = await write();
  const server = new kopf.WebhookServer({
    certFile: `${dir}/tls.crt`,
    pkeyFile: `${dir}/tls.key`,
    caFile: `${dir}/ca.crt`,
    fileCheckInterval: 0.5,
  });
  let called = 0;
  const registry = new kopf.Registry();
  // Only this test's objects (other tests' namespaces are being deleted meanwhile).
  registry.on.validate(res.plural, { id: "check", labels: { test: ns } }, () => void called++);
  const before = await c.metrics();
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    settings: settingsFor(name, server),
  });
  try {
    assert.equal(
      (await configuration("validating", name))?.webhooks[0].clientConfig.caBundle,
      first,
    );
    assert.equal(
      (await request("POST", res.path(ns), object("one", {}, { test: ns }))).status,
      201,
    );
    const second = await write();
    await waitFor(
      async () =>
        (await configuration("validating", name))?.webhooks[0].clientConfig.caBundle === second,
      {
        timeout: 30,
        message: "the new CA bundle in the configuration",
      },
    );
    // The API server now trusts only the new CA: the server must serve the new certificate.
    assert.equal(
      (await request("POST", res.path(ns), object("two", {}, { test: ns }))).status,
      201,
    );
    assert.equal(called, 2);
    const writes = (await c.metrics()).since(before);
    // Create both, then one patch of each for the one change.
    assert.equal(writes.count({ verb: "POST", resource: "validatingwebhookconfigurations" }), 1);
    assert.equal(writes.count({ verb: "PATCH", resource: "validatingwebhookconfigurations" }), 1);
    assert.equal(writes.count({ verb: "PATCH", resource: "mutatingwebhookconfigurations" }), 1);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad requests get a 4xx with a one-line reason and the server keeps serving", async () => {
  const registry = new kopf.Registry();
  let calls = 0;
  registry.on.validate(res.plural, { id: "check" }, () => void calls++);
  const seen: kopf.WebhookClientConfig[] = [];
  const inner = new kopf.WebhookServer({ maxBodySize: 4096 });
  // The operator's own server, wrapped only to learn its URL and CA.
  const server: kopf.WebhookServerProtocol = async function* (fn, context) {
    for await (const config of inner.serve(fn, context)) {
      seen.push(config);
      yield config;
    }
  };
  const settings = new kopf.Settings();
  settings.admission.server = server;
  const operator = await startOperator(c, { registry, namespaces: ["default"], settings });
  const client = Deno.createHttpClient({ caCerts: [atob(seen[0].caBundle!)] });
  const url = seen[0].url!;
  const post = async (path: string, body: string) => {
    const response = await fetch(`${url}${path}`, { method: "POST", body, client });
    return { status: response.status, text: await response.text() };
  };
  const review = (request: Obj) =>
    JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request });
  try {
    const cases: [string, string, number, RegExp][] = [
      ["/check", "{not json", 400, /the body is not JSON/],
      ["/check", JSON.stringify({ kind: "Pod" }), 400, /not an AdmissionReview/],
      ["/check", review({ uid: "u1" }), 400, /request\.resource/],
      [
        "/check",
        review({
          uid: "u2",
          resource: { group: res.group, version: "v1", resource: res.plural },
          operation: "CREATE",
          userInfo: {},
        }),
        400,
        /Either old or new object is missing/,
      ],
      [
        "/check",
        review({
          uid: "u3",
          resource: { group: "nope.dev", version: "v1", resource: "nopes" },
          operation: "CREATE",
          userInfo: {},
          object: {},
        }),
        404,
        /has no admission handlers/,
      ],
      ["/check", "x".repeat(5000), 413, /over 4096 bytes/],
      ["/unknown", review({}), 404, /no admission handler has the id "unknown"/],
      ["", review({}), 404, /no webhook is named/],
    ];
    for (const [path, body, status, reason] of cases) {
      const answer = await post(path, body);
      assert.equal(answer.status, status, `${path} ${body.slice(0, 40)}: ${answer.text}`);
      assert.match(answer.text, reason);
      assert.equal(answer.text.trim().split("\n").length, 1, "one line");
    }
    const get = await fetch(`${url}/check`, { client });
    assert.equal(get.status, 405);
    await get.body?.cancel();
    // Still serving, and answering properly.
    const ok = await post(
      "/check",
      review({
        uid: "u4",
        resource: { group: res.group, version: "v1", resource: res.plural },
        operation: "CREATE",
        userInfo: { username: "someone" },
        object: object("direct"),
      }),
    );
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.text).response, { uid: "u4", allowed: true });
    assert.equal(calls, 1);
    const refusals = logs.filter((l) => l.message.startsWith("Webhook request refused"));
    assert.equal(refusals.length, cases.length + 1, "one warning per refusal");
  } finally {
    client.close();
    await operator.stop();
  }
});

Deno.test("with client verification on, a client without the right certificate is refused", async () => {
  const registry = new kopf.Registry();
  const peers: kopf.SSLPeer[] = [];
  registry.on.validate(res.plural, { id: "check" }, ({ sslpeer }) => void peers.push(sslpeer));
  const seen: kopf.WebhookClientConfig[] = [];
  const inner = new kopf.WebhookServer({ verifyCaData: c.caPem, verifyMode: "required" });
  const server: kopf.WebhookServerProtocol = async function* (fn, context) {
    for await (const config of inner.serve(fn, context)) {
      seen.push(config);
      yield config;
    }
  };
  const settings = new kopf.Settings();
  settings.admission.server = server;
  const operator = await startOperator(c, { registry, namespaces: ["default"], settings });
  const caCerts = [atob(seen[0].caBundle!)];
  const body = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "u1",
      resource: { group: res.group, version: "v1", resource: res.plural },
      operation: "CREATE",
      userInfo: {},
      object: object("peer"),
    },
  });
  try {
    const anonymous = Deno.createHttpClient({ caCerts });
    await assert.rejects(
      fetch(`${seen[0].url}/check`, { method: "POST", body, client: anonymous }),
      "no client certificate: the handshake fails",
    );
    anonymous.close();
    const other = await generateCertificates(["intruder"]);
    const intruder = Deno.createHttpClient({ caCerts, cert: other.certPem, key: other.keyPem });
    await assert.rejects(
      fetch(`${seen[0].url}/check`, { method: "POST", body, client: intruder }),
      "a certificate of another CA: refused",
    );
    intruder.close();
    const admin = Deno.createHttpClient({
      caCerts,
      cert: await Deno.readTextFile(c.certFile),
      key: await Deno.readTextFile(c.keyFile),
    });
    const response = await fetch(`${seen[0].url}/check`, { method: "POST", body, client: admin });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).response.allowed, true);
    admin.close();
    assert.equal(peers.length, 1, "only the verified client reached the handler");
    assert.deepEqual(peers[0].subject, [[["organizationName", "system:masters"]], [[
      "commonName",
      "kube-admin",
    ]]]);
  } finally {
    await operator.stop();
  }
});

Deno.test("misconfiguration stops the operator at start with one line saying what is wrong", async () => {
  const registry = new kopf.Registry();
  registry.on.validate(res.plural, { id: "check" }, () => {});
  // No server at all.
  await assert.rejects(
    startOperator(c, { registry, namespaces: ["default"], settings: new kopf.Settings() }),
    /Admission handlers exist \(check\), but no webhook server is configured in settings\.admission\.server/,
  );
  // A port that is taken.
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const settings = settingsFor("taken.kopf.dev", new kopf.WebhookServer({ port }));
    await assert.rejects(
      startOperator(c, { registry, namespaces: ["default"], settings }),
      new RegExp(`the webhook server could not listen on 127\\.0\\.0\\.1:${port}: .*in use`, "i"),
    );
  } finally {
    taken.close();
  }
  assert.equal(await configuration("validating", "taken.kopf.dev"), null);
});

Deno.test("insecure: plain HTTP when asked (behind a TLS-terminating proxy), no CA bundle", async () => {
  const registry = new kopf.Registry();
  registry.on.validate(res.plural, { id: "check" }, ({ spec }) => {
    if (spec.bad) throw new kopf.AdmissionError("bad", { code: 403 });
  });
  const seen: kopf.WebhookClientConfig[] = [];
  const inner = new kopf.WebhookServer({ insecure: true, path: "/hooks" });
  const settings = new kopf.Settings();
  settings.admission.server = async function* (fn, context) {
    for await (const config of inner.serve(fn, context)) {
      seen.push(config);
      yield config;
    }
  };
  const operator = await startOperator(c, { registry, namespaces: ["default"], settings });
  try {
    assert.match(seen[0].url!, /^http:\/\/127\.0\.0\.1:\d+\/hooks$/);
    assert.equal(seen[0].caBundle, undefined);
    const response = await fetch(`${seen[0].url}/check`, {
      method: "POST",
      body: JSON.stringify({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: {
          uid: "u1",
          resource: { group: res.group, version: "v1", resource: res.plural },
          operation: "CREATE",
          userInfo: {},
          object: object("plain", { bad: true }),
        },
      }),
    });
    assert.deepEqual((await response.json()).response, {
      uid: "u1",
      allowed: false,
      status: { code: 403, message: "bad" },
    });
  } finally {
    await operator.stop();
  }
});

Deno.test("a webhook server that fails after it started stops the operator, which removes its webhooks", async () => {
  const name = `fails-${crypto.randomUUID().slice(0, 8)}.kopf.dev`;
  const registry = new kopf.Registry();
  registry.on.validate(res.plural, { id: "check", labels: { never: "matches" } }, () => {});
  const crash = Promise.withResolvers<void>();
  const inner = new kopf.WebhookServer();
  const settings = settingsFor(name, async function* (fn, context) {
    for await (const config of inner.serve(fn, context)) {
      yield config;
      await crash.promise;
      throw new Error("the listener broke");
    }
  });
  const operator = await startOperator(c, { registry, namespaces: ["default"], settings });
  assert.ok(await configuration("validating", name), "configured while serving");
  crash.resolve();
  await assert.rejects(operator.done, /^Error: The webhook server failed: the listener broke$/);
  assert.equal(await configuration("validating", name), null, "removed as at any exit");
  assert.equal(await configuration("mutating", name), null);
  assert.equal(
    logs.filter((l) => l.message.includes("The webhook server failed; the operator stops")).length,
    1,
  );
});
