import assert from "node:assert/strict";
import { UsageError } from "../../src/cli/errors.ts";
import { loggingOptionsOf, operatorOptionsOf } from "../../src/cli/options.ts";

Deno.test("operator flags become run() options", () => {
  assert.deepEqual(operatorOptionsOf({ namespace: ["a", "b-*", "!b-x"] }), {
    namespaces: ["a", "b-*", "!b-x"],
  });
  assert.deepEqual(
    operatorOptionsOf({
      allNamespaces: true,
      context: "kind",
      kubeconfig: "/k",
      liveness: "http://0.0.0.0:8080/healthz",
      metrics: "http://0.0.0.0:8080/metrics",
      standalone: true,
      priority: "10",
    }),
    {
      clusterwide: true,
      context: "kind",
      kubeconfig: "/k",
      liveness: "http://0.0.0.0:8080/healthz",
      metrics: "http://0.0.0.0:8080/metrics",
      standalone: true,
      priority: 10,
    },
  );
  assert.deepEqual(operatorOptionsOf({ dev: true }), { priority: 666 });
  assert.deepEqual(operatorOptionsOf({}), {});
});

Deno.test("conflicting or malformed operator flags are UsageErrors", () => {
  const bad = [
    { namespace: ["a"], allNamespaces: true },
    { priority: "high" },
    { priority: "1.5" },
    { dev: true, priority: "1" },
    { liveness: "tcp://0.0.0.0:1" },
    { metrics: "https://0.0.0.0:9090/metrics" },
    { metrics: "0.0.0.0:9090" },
    { namespace: [""] },
    { context: "" },
  ];
  for (const flags of bad) assert.throws(() => operatorOptionsOf(flags), UsageError);
});

Deno.test("logging flags: verbosity, format, prefix and refkey", () => {
  assert.deepEqual(loggingOptionsOf({}), { format: "full", verbosity: "normal" });
  assert.deepEqual(loggingOptionsOf({ verbose: true, logFormat: "json" }), {
    format: "json",
    verbosity: "verbose",
  });
  assert.equal(loggingOptionsOf({ debug: true, verbose: true }).verbosity, "debug");
  assert.equal(loggingOptionsOf({ quiet: true }).verbosity, "quiet");
  assert.deepEqual(loggingOptionsOf({ logPrefix: false, logRefkey: "k8s" }), {
    format: "full",
    verbosity: "normal",
    prefix: false,
    refKey: "k8s",
  });
  assert.throws(() => loggingOptionsOf({ quiet: true, debug: true }), UsageError);
  assert.throws(() => loggingOptionsOf({ logFormat: "xml" }), UsageError);
});
