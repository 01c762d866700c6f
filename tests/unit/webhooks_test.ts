// The parts of admission webhooks that need no API server: registration checks, the webhook
// configurations built from handlers, review checks and answers (the real registry and invoke()
// path), server URLs, certificate names, the CLI flags, permissions and RBAC.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { operatorOptionsOf } from "../../src/cli/options.ts";
import { operatorPermissions, webhookListenAddressOf } from "../../src/cli/permissions.ts";
import { rbacManifests } from "../../src/cli/rbac.ts";
import type { ApiTarget } from "../../src/cli/api_target.ts";
import { kex } from "../support/engines.ts";
import { admissionFn, checkReview, cutAfter } from "../../src/webhooks/admission.ts";
import {
  certificateNames,
  decryptedKey,
  generateCertificates,
} from "../../src/webhooks/certificates.ts";
import { buildWebhooks, injectHandlerId, webhookName } from "../../src/webhooks/configurations.ts";
import { hostFromCertificate } from "../../src/webhooks/detection.ts";
import { sslPeerOf } from "../../src/webhooks/listening.ts";
import { accessibleHost, buildUrl, serverFromUrl } from "../../src/webhooks/servers.ts";
import { parseServerUrl } from "../../src/webhooks/urls.ts";

Deno.test("registration refuses bad admission options with one line naming them", () => {
  const registry = new kopf.Registry();
  const fn = () => {};
  assert.throws(
    () => registry.on.validate("kex", { operation: "PATCH" as kopf.Operation }, fn),
    /operation must be one of "CREATE", "UPDATE", "DELETE", "CONNECT", got "PATCH"/,
  );
  assert.throws(
    () => registry.on.mutate("kex", { timeout: 31 }, fn),
    /timeout must be whole seconds from 1 to 30/,
  );
  assert.throws(
    () => registry.on.validate("kex", { retries: 3 } as kopf.WebhookOptions, fn),
    /retries cannot be given: admission handlers are not retried/,
  );
  assert.throws(() => registry.on.validate("kex", { operations: [] }, fn), /non-empty array/);
  assert.throws(() => registry.on.validate("kex", { subresource: "" }, fn), /subresource/);
  assert.throws(
    () => registry.on.validate("kex", { ignore_failures: true } as kopf.WebhookOptions, fn),
    /ignore_failures/,
  );
  registry.on.validate("kex", { operations: ["CREATE", "UPDATE"], timeout: 5 }, fn);
  const [handler] = registry.webhookHandlers();
  assert.deepEqual(handler.operations, ["CREATE", "UPDATE"]);
  assert.equal(handler.timeout, 5);
  assert.equal(registry.selectors().length, 0, "admission handlers watch nothing");
});

Deno.test("webhook configurations: one webhook per handler, as Kopf builds them", () => {
  const registry = new kopf.Registry();
  registry.on.validate("kex", {
    id: "check_it",
    labels: { a: "1", b: kopf.PRESENT, c: kopf.ABSENT, d: () => true },
  }, () => {});
  registry.on.validate("kex", {
    id: "status_fn",
    subresource: "status",
    operation: "UPDATE",
    ignoreFailures: true,
    sideEffects: true,
    persistent: true,
    timeout: 7,
  }, () => {});
  registry.on.validate("pods", { id: "pods_fn" }, () => {});
  const handlers = registry.webhookHandlers("validating");
  const webhooks = buildWebhooks(handlers, {
    resources: [kex],
    suffix: "auto.kopf.dev",
    clientConfig: { url: "https://127.0.0.1:9443/hooks/", caBundle: "Q0E=" },
  });
  assert.deepEqual(webhooks[0], {
    name: "check-it.auto.kopf.dev",
    sideEffects: "None",
    failurePolicy: "Fail",
    matchPolicy: "Equivalent",
    rules: [{
      apiGroups: ["kopf.dev"],
      apiVersions: ["v1"],
      resources: ["kopfexamples"],
      operations: ["*"],
      scope: "*",
    }],
    objectSelector: {
      matchExpressions: [
        { key: "a", operator: "In", values: ["1"] },
        { key: "b", operator: "Exists" },
        { key: "c", operator: "DoesNotExist" },
      ],
    },
    clientConfig: { url: "https://127.0.0.1:9443/hooks/check_it", caBundle: "Q0E=" },
    timeoutSeconds: 30,
    admissionReviewVersions: ["v1", "v1beta1"],
  });
  assert.equal(webhooks[1].failurePolicy, "Ignore");
  assert.equal(webhooks[1].sideEffects, "NoneOnDryRun");
  assert.equal(webhooks[1].timeoutSeconds, 7);
  assert.deepEqual(
    (webhooks[1].rules as { resources: string[]; operations: string[] }[])[0].resources,
    ["kopfexamples/status"],
  );
  assert.deepEqual((webhooks[1].rules as { operations: string[] }[])[0].operations, ["UPDATE"]);
  assert.equal("objectSelector" in webhooks[1], false);
  assert.deepEqual(webhooks[2].rules, [], "pods are not among the resources given");
  const persistent = buildWebhooks(handlers, {
    resources: [kex],
    suffix: "x",
    clientConfig: {},
    persistentOnly: true,
  });
  assert.deepEqual(persistent.map((w) => w.name), ["status-fn.x"]);
  assert.equal(webhookName("fn/spec.field", "s"), "fn.spec.field.s");
  assert.equal(webhookName("Fn:ü", ""), "fn3ac3bc");
  assert.deepEqual(
    injectHandlerId({ service: { namespace: "n", name: "s", path: "/p" } }, "fn/spec.x"),
    {
      service: { namespace: "n", name: "s", path: "/p/fn/spec.x" },
    },
  );
  assert.deepEqual(injectHandlerId({ url: "https://h:1" }, "a b"), { url: "https://h:1/a%20b" });
});

function review(request: Record<string, unknown>) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "u1",
      resource: { group: "kopf.dev", version: "v1", resource: "kopfexamples" },
      operation: "CREATE",
      userInfo: { username: "me" },
      object: {
        apiVersion: "kopf.dev/v1",
        kind: "KopfExample",
        metadata: { name: "x", namespace: "ns" },
        spec: {},
      },
      ...request,
    },
  } as unknown as kopf.AdmissionReview;
}

Deno.test("answers: first AdmissionError wins, other errors 500, warnings, JSON patch of mutations", async () => {
  const registry = new kopf.Registry();
  const calls: string[] = [];
  registry.on.mutate("kex", { id: "m" }, ({ patch, warnings, dryrun, userinfo }) => {
    calls.push("m");
    patch.spec.size = 1;
    patch.metadata.labels.x = "y";
    warnings.push(`dry=${dryrun} user=${userinfo.username}`);
  });
  registry.on.validate("kex", { id: "v", operations: ["UPDATE"] }, ({ old, new: new_, diff }) => {
    calls.push("v");
    if (diff.length && old && new_) throw new Error("changed\nmore");
  });
  registry.on.validate("kex", { id: "code", field: "spec.bad", value: kopf.PRESENT }, () => {
    calls.push("code");
    throw new kopf.AdmissionError("bad is bad", { code: 418 });
  });
  const fn = admissionFn({
    registry,
    resources: () => [kex],
    execution: new kopf.Settings().execution,
  });
  const created = await fn(review({ dryRun: true }), { webhook: "m" });
  assert.equal(created.response?.allowed, true);
  assert.deepEqual(created.response?.warnings, ["dry=true user=me"]);
  assert.equal(created.response?.patchType, "JSONPatch");
  assert.deepEqual(JSON.parse(atob(created.response!.patch!)), [
    { op: "add", path: "/metadata/labels", value: { x: "y" } },
    { op: "add", path: "/spec/size", value: 1 },
  ]);
  // All handlers (no webhook named): the operation and the field filter choose.
  const updated = await fn(review({
    operation: "UPDATE",
    oldObject: { metadata: { name: "x" }, spec: { a: 1 } },
    object: { metadata: { name: "x" }, spec: { a: 2, bad: true } },
  }));
  assert.deepEqual(updated.response?.status, { code: 418, message: "bad is bad" });
  assert.equal(updated.response?.allowed, false);
  assert.equal(updated.response?.patch, undefined, "no patch with a rejection");
  const other = await fn(
    review({
      operation: "UPDATE",
      oldObject: { metadata: { name: "x" }, spec: { a: 1 } },
      object: { metadata: { name: "x" }, spec: { a: 2 } },
    }),
    { webhook: "v" },
  );
  assert.deepEqual(other.response?.status, { code: 500, message: "changed" });
  // DELETE: mutating handlers are not called; the old object is the body.
  const deleted = await fn(
    review({ operation: "DELETE", object: null, oldObject: { metadata: { name: "x" } } }),
  );
  assert.equal(deleted.response?.allowed, true);
  assert.deepEqual(calls, ["m", "m", "v", "code", "v"]);
});

Deno.test("reviews the operator cannot answer are WebhookErrors with their HTTP codes", async () => {
  const registry = new kopf.Registry();
  registry.on.validate("kex", { id: "v" }, () => {});
  const fn = admissionFn({ registry, resources: () => [kex] });
  const code = async (r: unknown, webhook?: string) => {
    try {
      await fn(r as kopf.AdmissionReview, { webhook });
      return 200;
    } catch (error) {
      assert.ok(error instanceof kopf.WebhookError, String(error));
      return error.status;
    }
  };
  assert.equal(await code([]), 400);
  assert.equal(await code({ kind: "AdmissionReview" }), 400);
  assert.equal(await code(review({ uid: "" })), 400);
  assert.equal(await code(review({ operation: "PATCH" })), 400);
  assert.equal(await code(review({ userInfo: null })), 400);
  assert.equal(await code(review({ object: null })), 400);
  assert.equal(
    await code(review({ resource: { group: "x", version: "v1", resource: "ys" } })),
    404,
  );
  assert.equal(await code(review({}), "nope"), 404);
  assert.equal(await code(review({}), "v"), 200);
  assert.throws(() => checkReview("text"), /not a JSON object/);
  assert.equal(cutAfter(30), 29);
  assert.equal(cutAfter(1), 0.5);
});

Deno.test("server URLs, hosts and certificate names", async () => {
  assert.deepEqual(parseServerUrl("https://0.0.0.0:9443/hooks/"), {
    scheme: "https",
    hostname: "0.0.0.0",
    port: 9443,
    path: "/hooks",
  });
  assert.throws(() => parseServerUrl("https://127.0.0.1/x"), /needs a port/);
  assert.throws(() => parseServerUrl("ftp://127.0.0.1:1"), /https:\/\/ or http:\/\//);
  assert.throws(() => parseServerUrl("https://127.0.0.1:1/?q"), /no query/);
  const server = serverFromUrl("http://[::1]:8080");
  assert.equal(server.addr, "::1");
  assert.equal(server.options.insecure, true);
  assert.equal(server.host, "::1");
  assert.equal(buildUrl("https", "::1", 8443, "/p"), "https://[::1]:8443/p");
  assert.equal(buildUrl("https", "example.com", 443, ""), "https://example.com");
  assert.equal(accessibleHost("0.0.0.0"), "127.0.0.1");
  assert.equal(new kopf.WebhookK3dServer().host, "host.k3d.internal");
  assert.equal(new kopf.WebhookMinikubeServer().addr, "0.0.0.0");
  assert.equal(new kopf.WebhookDockerDesktopServer({ host: "me" }).host, "me");
  assert.throws(
    () => new kopf.WebhookServer({ certFile: "x" }),
    /certFile and pkeyFile go together/,
  );
  assert.throws(
    () => new kopf.WebhookServer({ cadump: "x" } as kopf.WebhookServerOptions),
    /unknown option "cadump"/,
  );
  assert.deepEqual(certificateNames(["localhost", "0.0.0.0", "127.0.0.1", "localhost", "[::1]"]), {
    commonName: "localhost",
    dns: ["localhost"],
    ips: ["127.0.0.1", "::1"],
  });
  assert.equal(hostFromCertificate({ subjectCN: "k3s" }), "host.k3d.internal");
  assert.equal(hostFromCertificate({ issuerCN: "minikubeCA" }), "host.minikube.internal");
  assert.equal(hostFromCertificate({ names: ["docker-for-desktop"] }), "host.docker.internal");
  assert.equal(hostFromCertificate({ subjectCN: "kube-apiserver" }), undefined);
  const certs = await generateCertificates(["127.0.0.1", "webhook.local"]);
  const { X509Certificate } = await import("node:crypto");
  const cert = new X509Certificate(certs.certPem);
  assert.equal(cert.subjectAltName, "DNS:webhook.local, IP Address:127.0.0.1");
  assert.ok(cert.verify(new X509Certificate(certs.caPem).publicKey), "signed by the CA");
  assert.equal(await decryptedKey(certs.keyPem), certs.keyPem);
  await assert.rejects(decryptedKey("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"), /no password/);
  assert.deepEqual(
    sslPeerOf({ subject: { CN: "a", O: ["b", "c"] }, subjectaltname: "DNS:x, IP Address:1.2.3.4" }),
    {
      subject: [[["commonName", "a"]], [["organizationName", "b"]], [["organizationName", "c"]]],
      issuer: [],
      version: 3,
      subjectAltName: [["DNS", "x"], ["IP Address", "1.2.3.4"]],
    },
  );
  assert.deepEqual(sslPeerOf(null), {});
});

Deno.test("CLI: --webhook-server grants listening on exactly its address; RBAC adds the verbs", () => {
  assert.deepEqual(
    operatorOptionsOf({ webhookServer: "https://127.0.0.1:9443", webhookManaged: "auto.kopf.dev" }),
    { webhookServer: "https://127.0.0.1:9443", webhookManaged: "auto.kopf.dev" },
  );
  assert.throws(
    () => operatorOptionsOf({ webhookServer: "https://127.0.0.1" }),
    /--webhook-server: a webhook server URL needs a port/,
  );
  assert.throws(
    () => operatorOptionsOf({ webhookManaged: "auto.kopf.dev" }),
    /needs --webhook-server/,
  );
  assert.throws(
    () => operatorOptionsOf({ webhookServer: "https://127.0.0.1:1", webhookManaged: "Auto" }),
    /DNS subdomain/,
  );
  assert.equal(webhookListenAddressOf("https://[::]:9443/x"), "[::]:9443");
  const target: ApiTarget = {
    source: "kubeconfig",
    server: "https://127.0.0.1:6443",
    netAddress: "127.0.0.1:6443",
    context: "k",
    kubeconfigs: ["/k"],
    readPaths: ["/k"],
    envNames: [],
    execCommands: [],
    extraNet: [],
    warnings: [],
  };
  const flags = operatorPermissions({
    target,
    listen: [webhookListenAddressOf("https://0.0.0.0:9443")],
  })
    .toFlags();
  assert.ok(flags.includes("--allow-net=127.0.0.1:6443,0.0.0.0:9443"), flags.join(" "));
  const rule = (docs: ReturnType<typeof rbacManifests>) =>
    docs.find((d) => d.kind === "ClusterRole")!.rules.find((r: { apiGroups: string[] }) =>
      r.apiGroups.includes("admissionregistration.k8s.io")
    );
  assert.equal(rule(rbacManifests([])), undefined);
  assert.deepEqual(rule(rbacManifests([], { webhooks: true })), {
    apiGroups: ["admissionregistration.k8s.io"],
    resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
    verbs: ["create", "patch", "delete"],
  });
});
