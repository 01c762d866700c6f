/**
 * Admission round-trips through the real kube-apiserver: dry-run creates of a CRD's objects, each
 * of which the API server sends to a trivial validating webhook — ours (`kopf run
 * --webhook-server`, as launched by default and without `--optimize-for-size`) vs Python Kopf
 * 1.45's WebhookServer — next to the same requests with no webhook (the floor). Each target has a
 * CRD of its own (webhooks apply cluster-wide), all operators run at once, and the targets take
 * turns, round after round, so that the machine's load drifts over all of them alike; the
 * figures are the medians over the rounds. Also measured: what `@peculiar/x509` costs when a
 * self-signed certificate is generated (import time and RSS, in a fresh process), since it is
 * loaded only then.
 *
 * ```sh
 * KOPF_CLUSTER_DIR=/tmp/kopf-cluster-webhooks deno run -A bench/admission_bench.ts \
 *   [--n 1000] [--rounds 5] [--concurrency 8]
 * ```
 *
 * Not a test: nothing is asserted.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { cluster, type Obj } from "../tests/support/cluster.ts";
import { type TestResource, testResource } from "../tests/support/engine.ts";
import { OperatorProcess } from "../tests/support/operator_process.ts";
import { pythonKopf } from "../tests/support/python_kopf.ts";
import { generateCertificates } from "../src/webhooks/certificates.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string" },
    rounds: { type: "string" },
    concurrency: { type: "string" },
  },
});
const N = Number(args.n ?? 1000);
const ROUNDS = Number(args.rounds ?? 5);
const CONCURRENCY = Number(args.concurrency ?? 8);
const WARMUP = 100;

const c = await cluster();
const http = Deno.createHttpClient({ caCerts: [c.caPem] });

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function dryCreate(res: TestResource, ns: string, i: number): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${c.server}${res.path(ns)}?dryRun=All`, {
    method: "POST",
    client: http,
    headers: { Authorization: `Bearer ${c.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      apiVersion: res.apiVersion,
      kind: res.kind,
      metadata: { name: `b-${i}` },
      spec: { i },
    }),
  });
  await response.body?.cancel();
  if (response.status !== 201) throw new Error(`dry-run create: HTTP ${response.status}`);
  return performance.now() - started;
}

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** `count` dry-run creates, CONCURRENCY in flight; their latencies if `into` is given. */
async function burst(res: TestResource, ns: string, count: number): Promise<Figures> {
  let next = 0;
  const latencies: number[] = [];
  const worker = async () => {
    while (true) {
      const i = next++;
      if (i >= count) return;
      latencies.push(await dryCreate(res, ns, i));
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    perSecond: count / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

async function waitForWebhook(name: string, operator: OperatorProcess, timeout = 90) {
  const deadline = Date.now() + timeout * 1000;
  while (Date.now() < deadline) {
    try {
      const config: Obj = await c.api(
        "GET",
        `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${name}`,
      );
      if (config.webhooks?.length) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the webhook configuration ${name} did not appear:\n${operator.output()}`);
}

/** Import and first-use cost of @peculiar/x509, in a fresh process. */
async function x509Cost(): Promise<{ ms: number; rssMb: number }> {
  const script = `
    const { generateCertificates } = await import(${
    JSON.stringify(`${ROOT}src/webhooks/certificates.ts`)
  });
    const rss0 = Deno.memoryUsage().rss;
    const t0 = performance.now();
    await generateCertificates(["127.0.0.1"]); // loads @peculiar/x509, then generates
    const t1 = performance.now();
    const rss1 = Deno.memoryUsage().rss;
    await generateCertificates(["127.0.0.1"]); // generation only
    const t2 = performance.now();
    console.log(JSON.stringify({ ms: (t1 - t0) - (t2 - t1), rssMb: (rss1 - rss0) / 2 ** 20 }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", `${ROOT}deno.json`, script],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

interface Target {
  label: string;
  plural: string;
  res?: TestResource;
  ns?: string;
  operator?: OperatorProcess;
  rounds: Figures[];
}

function ours(file: string, extra: string[]) {
  return (ns: string, name: string) =>
    OperatorProcess.start({
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        `${ROOT}cli.ts`,
        "run",
        "--quiet",
        "--standalone",
        "-n",
        ns,
        "--webhook-server",
        `https://127.0.0.1:${freePort()}`,
        "--webhook-managed",
        name,
        ...extra,
        `${ROOT}bench/admission/${file}`,
      ],
      env: { KUBECONFIG: c.kubeconfig },
    });
}

const loadAvg = async () => (await Deno.readTextFile("/proc/loadavg")).split(" ")[0];
const loadBefore = await loadAvg();
const x509 = await x509Cost();
const kopf = await pythonKopf();
const dir = await Deno.makeTempDir();
const certs = await generateCertificates(["127.0.0.1"]);
await Deno.writeTextFile(`${dir}/tls.crt`, certs.certPem);
await Deno.writeTextFile(`${dir}/tls.key`, certs.keyPem);
await Deno.writeTextFile(`${dir}/ca.crt`, certs.caPem);

const starts: Record<string, ((ns: string, name: string) => OperatorProcess) | undefined> = {
  benchfloor: undefined,
  benchours: ours("ours.ts", []),
  // The launcher sizes the operator for memory (--optimize-for-size) unless V8 flags are given.
  benchoursfast: ours("ours_fast.ts", ["--deno-flag=--v8-flags=--no-optimize-for-size"]),
  benchkopf: (ns, name) =>
    OperatorProcess.start({
      command: kopf.kopf,
      args: ["run", "--quiet", "--standalone", "-n", ns, `${ROOT}bench/admission/kopf_operator.py`],
      env: {
        KUBECONFIG: c.kubeconfig,
        PYTHONUNBUFFERED: "1",
        BENCH_WEBHOOK_PORT: String(freePort()),
        BENCH_CERT_FILE: `${dir}/tls.crt`,
        BENCH_KEY_FILE: `${dir}/tls.key`,
        BENCH_CA_FILE: `${dir}/ca.crt`,
        BENCH_MANAGED: name,
        BENCH_PLURAL: "benchkopf",
      },
    }),
};
const targets: Target[] = [
  { label: "none (API server floor)", plural: "benchfloor", rounds: [] },
  { label: "ours (`kopf run --webhook-server`)", plural: "benchours", rounds: [] },
  {
    label: "ours, `--deno-flag=--v8-flags=--no-optimize-for-size`",
    plural: "benchoursfast",
    rounds: [],
  },
  { label: `Python Kopf ${kopf.version}`, plural: "benchkopf", rounds: [] },
];

try {
  for (const target of targets) {
    target.res = await testResource(c, target.plural);
    target.ns = await c.namespace("bench-adm");
    const start = starts[target.plural];
    if (start) {
      const name = `${target.ns}.kopf.dev`;
      target.operator = start(target.ns, name);
      await waitForWebhook(name, target.operator);
    }
    await burst(target.res, target.ns, WARMUP);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      const figures = await burst(target.res!, target.ns!, N);
      target.rounds.push(figures);
      console.error(`round ${round + 1} ${target.label}: ${JSON.stringify(figures)}`);
    }
  }
} finally {
  for (const target of targets) {
    if (target.operator) {
      const status = await target.operator.stop();
      if (!status.success) console.error(target.operator.output().slice(-2000));
    }
    if (target.ns) {
      for (const kind of ["validating", "mutating"]) {
        await c.api(
          "DELETE",
          `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${target.ns}.kopf.dev`,
        ).catch(() => {});
      }
      await c.deleteNamespace(target.ns);
    }
  }
  await Deno.remove(dir, { recursive: true });
}

const row = (t: Target) =>
  `| ${t.label} | ${median(t.rounds.map((f) => f.perSecond)).toFixed(0)} | ${
    median(t.rounds.map((f) => f.p50)).toFixed(1)
  } | ${median(t.rounds.map((f) => f.p99)).toFixed(1)} |`;
console.log(
  [
    `Admission round-trips: ${ROUNDS} rounds of ${N} dry-run creates per target, ` +
    `${CONCURRENCY} in flight; medians over the rounds. Load average ${loadBefore} before, ` +
    `${await loadAvg()} after (${navigator.hardwareConcurrency} CPUs).`,
    "",
    "| webhook | round-trips/s | p50 ms | p99 ms |",
    "| --- | ---: | ---: | ---: |",
    ...targets.map(row),
    "",
    `@peculiar/x509 on first certificate generation: +${x509.ms.toFixed(0)} ms, ` +
    `+${x509.rssMb.toFixed(1)} MB RSS (fresh process).`,
  ].join("\n"),
);
