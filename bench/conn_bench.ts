/**
 * Dead-connection benchmark against the real local API server (not a test: it asserts nothing,
 * it prints a markdown table). The client's default health check: 30 s of silence, then 15 s
 * for a probe.
 *
 *     deno run -A bench/conn_bench.ts [--runs 3] [--idle 10] [--skip-freeze] [--skip-idle]
 *
 * 1. Failover: a client whose connection goes through the TCP relay of the tests
 *    (tests/support/tcp_relay.ts) has a watch open and a merge patch of an object's `/status`
 *    in flight when the relay freezes the connection (no bytes either way, no FIN/RST). Measured
 *    from the freeze: when the connection is declared dead, when the patch succeeds on the new
 *    connection (the first successful request), and when the watch failed with the dead
 *    connection's error (from there a watch loop re-opens it after its backoff).
 * 2. Idle cost: an operator with one handler on a resource without objects runs for `--idle`
 *    minutes; its probes per hour (every probe is one `GET /version`), and its other requests.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { KubeClient } from "../src/kube/client.ts";
import type { Resource } from "../src/kube/resource.ts";
import { runOperator } from "../src/reactor/running.ts";
import * as kopf from "../mod.ts";
import { cluster } from "../tests/support/cluster.ts";
import { createObject, testResource } from "../tests/support/engine.ts";
import { TcpRelay } from "../tests/support/tcp_relay.ts";
import { waitFor } from "../tests/support/wait.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    idle: { type: "string", default: "10" },
    "skip-freeze": { type: "boolean", default: false },
    "skip-idle": { type: "boolean", default: false },
  },
});

const c = await cluster();
const res = await testResource(c, "connbenches");
const resource: Resource = {
  group: res.group,
  version: res.version,
  plural: res.plural,
  kind: res.kind,
  singular: res.plural.replace(/s$/, ""),
  shortcuts: [],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
  subresources: ["status"],
};

const seconds = (ms: number) => (ms / 1000).toFixed(1);

async function failover(run: number): Promise<string> {
  const ns = await c.namespace(`conn-bench-${run}`);
  const relay = await TcpRelay.start(c);
  const client = await KubeClient.connect({ kubeconfig: relay.kubeconfig });
  try {
    await createObject(c, res, ns, "kex");
    const watch = await client.stream(res.path(ns), {
      query: { watch: true, allowWatchBookmarks: true, timeoutSeconds: 600 },
    });
    let watchFailedAt = 0;
    const reading = watch.text().catch(() => watchFailedAt = performance.now());
    const frozenAt = performance.now();
    relay.freeze();
    let deadAt = 0;
    const deadWatch = waitFor(() => client.metrics.deadConnections === 1, {
      timeout: 90,
      interval: 20,
    }).then(() => deadAt = performance.now());
    await client.patch(resource, "kex", { status: { run } }, {
      namespace: ns,
      subresource: "status",
    });
    const patchedAt = performance.now();
    await deadWatch;
    await reading;
    return `| ${run} | ${seconds(deadAt - frozenAt)} | ${seconds(patchedAt - frozenAt)} | ${
      seconds(watchFailedAt - frozenAt)
    } | ${client.metrics.probes} | ${relay.stats.accepted} |`;
  } finally {
    client.close();
    await relay.close();
    await c.deleteNamespace(ns);
  }
}

async function idleOperator(minutes: number): Promise<string[]> {
  const ns = await c.namespace("conn-bench-idle");
  const client = await KubeClient.connect({ kubeconfig: c.kubeconfig });
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "noop" }, () => {});
  const stop = new AbortController();
  const ready = Promise.withResolvers<void>();
  const done = runOperator({
    registry,
    namespaces: [ns],
    signal: stop.signal,
    ready: () => ready.resolve(),
  }, { client });
  try {
    await Promise.race([ready.promise, done]);
    await new Promise((r) => setTimeout(r, 2000));
    const before = client.metrics;
    const started = performance.now();
    await new Promise((r) => setTimeout(r, minutes * 60_000));
    const hours = (performance.now() - started) / 3_600_000;
    const after = client.metrics;
    const probes = after.probes - before.probes;
    // Probes bypass the request counters (and the rate limit): these are all other requests.
    const requests = Object.entries(after.requests)
      .map(([verb, n]) => [verb, n - (before.requests[verb] ?? 0)] as const)
      .filter(([, n]) => n > 0)
      .map(([verb, n]) => `${verb} ${n}`);
    return [
      `| idle window | ${(hours * 60).toFixed(1)} min |`,
      `| probes | ${probes} (${(probes / hours).toFixed(0)} per hour) |`,
      `| watch streams opened in the window | ${after.streams - before.streams} |`,
      `| other requests, by method (watch re-opens included) | ${requests.join(", ") || "none"} |`,
      `| dead connections | ${after.deadConnections - before.deadConnections} |`,
    ];
  } finally {
    stop.abort();
    await done;
    client.close();
    await c.deleteNamespace(ns);
  }
}

if (!values["skip-freeze"]) {
  console.log("## Failover after a freeze (default 30 s + 15 s)\n");
  console.log(
    "| run | dead after (s) | patch in flight succeeded after (s) | watch failed after (s) | probes | connections |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (let run = 1; run <= Number(values.runs); run++) console.log(await failover(run));
}
if (!values["skip-idle"]) {
  console.log("\n## An idle operator on a resource without objects\n");
  console.log("| | |\n| --- | --- |");
  for (const line of await idleOperator(Number(values.idle))) console.log(line);
}
Deno.exit(0);
