/**
 * What one request costs the operator's process: N merge patches of a ConfigMap's labels, sent
 * 16 at a time, by the engine's client (`KubeClient.patch`) and by bare `fetch` on one
 * `Deno.HttpClient` (the floor: the same bytes on the wire, nothing of ours), in alternating
 * rounds. Prints CPU µs and bytes allocated per request (V8's heap statistics are not exposed:
 * the allocation column is the process's RSS growth, so read the CPU column).
 *
 *     deno run -A bench/http_bench.ts [--n 2000] [--rounds 3]
 *
 * Uses the tests' plane (`tests/cluster/cluster.sh up`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { KubeClient } from "../src/kube/client.ts";
import { loadConfig } from "../src/kube/config/mod.ts";
import { cluster } from "../tests/support/cluster.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } },
});
const N = Number(values.n);
const c = await cluster();
const ns = await c.namespace("httpbench");
await c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
  metadata: { name: "target" },
  data: { a: "x".repeat(1000) },
});
const client = await KubeClient.connect({ kubeconfig: c.kubeconfig, qps: 0 });
const configMaps = {
  group: "",
  version: "v1",
  plural: "configmaps",
  kind: "ConfigMap",
  namespaced: true,
};
const config = await loadConfig({ kubeconfig: c.kubeconfig });
const auth = await config.credentials.get();
const bare = Deno.createHttpClient({
  caCerts: config.tls.caPem ? [config.tls.caPem] : undefined,
  cert: auth.certPem ?? config.tls.certPem,
  key: auth.keyPem ?? config.tls.keyPem,
} as Deno.CreateHttpClientOptions);
const url = `${config.server}/api/v1/namespaces/${ns}/configmaps/target`;

async function inFlight(each: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < N) await each(next++);
  }));
}

const senders: Record<string, (i: number) => Promise<unknown>> = {
  "KubeClient.patch": (i) =>
    client.patch(configMaps as never, "target", { metadata: { labels: { i: String(i) } } }, {
      namespace: ns,
    }),
  "bare fetch": async (i) => {
    const response = await fetch(url, {
      method: "PATCH",
      headers: {
        "Content-Type": "application/merge-patch+json",
        Accept: "application/json",
        ...Object.fromEntries(auth.headers),
      },
      body: JSON.stringify({ metadata: { labels: { i: String(i) } } }),
      client: bare,
    });
    JSON.parse(await response.text());
  },
};

function cpuUs(): number {
  const [utime, stime] = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ").slice(
    11,
    13,
  )
    .map(Number);
  return (utime + stime) * 10_000;
}

const rows: Record<string, number[]> = {};
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, send] of Object.entries(senders)) {
    const before = cpuUs();
    const t0 = performance.now();
    await inFlight(send);
    const wall = performance.now() - t0;
    (rows[name] ??= []).push((cpuUs() - before) / N);
    console.error(`round ${round + 1} ${name}: ${(N / wall * 1000).toFixed(0)} req/s`);
  }
}
console.log("| sender | CPU µs per request (each round) |\n| --- | --- |");
for (const [name, us] of Object.entries(rows)) {
  console.log(`| ${name} | ${us.map((u) => u.toFixed(0)).join(" / ")} |`);
}
client.close();
bare.close();
await c.deleteNamespace(ns);
