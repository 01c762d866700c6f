import assert from "node:assert/strict";
import {
  ApiError,
  ConfigError,
  ConnectionError,
  describeCause,
  RequestTimeoutError,
} from "../../src/kube/errors.ts";

Deno.test("ApiError names the verb, the resource, the status and the reason", () => {
  const error = ApiError.from(
    "PATCH",
    "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/name?fieldManager=x",
    422,
    {
      kind: "Status",
      status: "Failure",
      reason: "Invalid",
      message: 'KopfExample.kopf.dev "name" is invalid: spec.field: Invalid value',
      details: {
        name: "name",
        group: "kopf.dev",
        kind: "KopfExample",
        causes: [{ field: "spec" }],
      },
      code: 422,
    },
  );
  assert.equal(
    error.message,
    'PATCH kopfexamples.kopf.dev ns/name: 422 Invalid: KopfExample.kopf.dev "name" is invalid: spec.field: Invalid value',
  );
  assert.equal(error.name, "ApiError");
  assert.equal(error.status, 422);
  assert.equal(error.reason, "Invalid");
  assert.equal(error.code, 422);
  assert.equal(error.verb, "PATCH");
  assert.equal(error.path, "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/name");
  assert.equal(error.details?.kind, "KopfExample");
  assert.ok(error instanceof Error);
});

Deno.test("ApiError describes core, cluster-scoped, subresource and collection paths", () => {
  const cases: [string, string][] = [
    ["/api/v1/namespaces/default/pods/web/status", "GET pods/status default/web: 404 NotFound"],
    ["/api/v1/namespaces/default", "GET namespaces default: 404 NotFound"],
    [
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.y",
      "GET customresourcedefinitions.apiextensions.k8s.io x.y: 404 NotFound",
    ],
    ["/api/v1/namespaces/ns/configmaps", "GET configmaps in ns: 404 NotFound"],
    ["/apis/kopf.dev/v1/kopfexamples", "GET kopfexamples.kopf.dev: 404 NotFound"],
    ["/version", "GET /version: 404 NotFound"],
  ];
  for (const [path, message] of cases) {
    assert.equal(ApiError.from("GET", path, 404, undefined).message, message);
  }
});

Deno.test("ApiError copes with non-Status bodies", () => {
  const text = ApiError.from("GET", "/api/v1/pods", 502, "<html>\n Bad   gateway\n</html>");
  assert.equal(text.message, "GET pods: 502 BadGateway: <html> Bad gateway </html>");
  assert.equal(text.reason, "BadGateway");
  const odd = ApiError.from("GET", "/api/v1/pods", 418, { unexpected: true });
  assert.equal(odd.message, "GET pods: 418 Error");
  const long = ApiError.from("GET", "/api/v1/pods", 500, "x".repeat(2_000));
  assert.ok(long.message.length < 600);
});

Deno.test("ApiError takes Retry-After from the header or the Status details", () => {
  assert.equal(ApiError.from("GET", "/api", 429, {}, 3).retryAfterSeconds, 3);
  const fromDetails = ApiError.from("GET", "/api", 429, {
    reason: "TooManyRequests",
    details: { retryAfterSeconds: 7 },
  });
  assert.equal(fromDetails.retryAfterSeconds, 7);
});

Deno.test("ConfigError is one line naming the file and the field", () => {
  const error = new ConfigError("cannot read /x/admin.crt: no such file", {
    source: "/home/me/.kube/config",
    field: "users[admin].client-certificate",
  });
  assert.equal(
    error.message,
    "kubeconfig /home/me/.kube/config: users[admin].client-certificate: cannot read /x/admin.crt: no such file",
  );
  assert.equal(error.name, "ConfigError");
  assert.equal(error.field, "users[admin].client-certificate");
  assert.equal(
    new ConfigError("KUBERNETES_SERVICE_HOST must be set", { source: "in-cluster" }).message,
    "in-cluster config: KUBERNETES_SERVICE_HOST must be set",
  );
  assert.equal(new ConfigError("nothing found").message, "nothing found");
});

Deno.test("ConnectionError names the host and the innermost cause", () => {
  const cause = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (https://127.0.0.1:39099/api): client error (Connect): " +
        "tcp connect error: Connection refused (os error 111)",
    ),
  });
  const error = new ConnectionError({
    verb: "GET",
    url: "https://127.0.0.1:39099/api?x=1",
    cause,
    attempts: 4,
  });
  assert.equal(
    error.message,
    "GET https://127.0.0.1:39099/api: cannot connect to 127.0.0.1:39099 (after 4 attempts): " +
      "tcp connect error: Connection refused (os error 111)",
  );
  assert.equal(error.host, "127.0.0.1:39099");
  assert.equal(error.attempts, 4);
  assert.equal(error.cause, cause);
});

Deno.test("describeCause() strips Deno's request prefix", () => {
  assert.equal(
    describeCause(
      new Error(
        "error sending request from 127.0.0.1:1 for http://127.0.0.1:2/ (127.0.0.1:2): " +
          "client error (SendRequest): connection closed before message completed",
      ),
    ),
    "connection closed before message completed",
  );
  assert.equal(describeCause("plain"), "plain");
  const node = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
    code: "ECONNREFUSED",
  });
  assert.equal(describeCause(node), "connect ECONNREFUSED 127.0.0.1:1");
});

Deno.test("RequestTimeoutError says what timed out", () => {
  const error = new RequestTimeoutError({
    verb: "GET",
    path: "/api/v1/namespaces/a/pods",
    timeoutMs: 1500,
    attempts: 2,
  });
  assert.equal(error.message, "GET pods in a: no response within 1.5 s (after 2 attempts)");
});
