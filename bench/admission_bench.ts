/**
 * Admission round-trips through the real kube-apiserver: dry-run creates of a CRD's objects, each
 * of which the API server sends to a trivial validating webhook — ours (`kopf run
 * --webhook-server`) vs Python Kopf 1.45's WebhookServer, one operator process at a time on the
 * same plane, next to the same requests with no webhook (the floor). Also measured: what
 * `@peculiar/x509` costs when a self-signed certificate is generated (import time and RSS, in a
 * fresh process), since it is loaded only then.
 *
 * ```sh
 * KOPF_CLUSTER_DIR=/tmp/kopf-cluster-webhooks deno run -A bench/admission_bench.ts [--n 2000] [--concurrency 8]
 * ```
 *
 * One run; the figures vary with the machine's load. Not a test: nothing is asserted.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { cluster, type Obj } from "../tests/support/cluster.ts";
import { testResource } from "../tests/support/engine.ts";
import { OperatorProcess } from "../tests/support/operator_process.ts";
import { pythonKopf } from "../tests/support/python_kopf.ts";
import { generateCertificates } from "../src/webhooks/certificates.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const { values: args } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string" }, concurrency: { type: "string" } },
});
const N = Number(args.n ?? 2000);
const CONCURRENCY = Number(args.concurrency ?? 8);
const WARMUP = 100;

const c = await cluster();
const res = await testResource(c, "benchadmissions");
const http = Deno.createHttpClient({ caCerts: [c.caPem] });

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function dryCreate(ns: string, i: number): Promise<number> {
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

/** N dry-run creates, CONCURRENCY in flight; after WARMUP unmeasured ones. */
async function drive(ns: string): Promise<Figures> {
  let next = 0;
  const worker = async (count: number, into?: number[]) => {
    while (true) {
      const i = next++;
      if (i >= count) return;
      const ms = await dryCreate(ns, i);
      into?.push(ms);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(WARMUP)));
  next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(N, latencies)));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    perSecond: N / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

async function waitForWebhook(name: string, timeout = 60): Promise<void> {
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
  throw new Error(`the webhook configuration ${name} did not appear`);
}

async function measure(
  label: string,
  start: (ns: string, name: string) => Promise<OperatorProcess | undefined>,
): Promise<Figures> {
  const ns = await c.namespace("bench-adm");
  const name = `${ns}.kopf.dev`;
  const operator = await start(ns, name);
  try {
    if (operator) await waitForWebhook(name);
    const figures = await drive(ns);
    console.error(`${label}: ${JSON.stringify(figures)}`);
    return figures;
  } finally {
    if (operator) {
      const status = await operator.stop();
      if (!status.success) console.error(operator.output().slice(-2000));
    }
    for (const kind of ["validating", "mutating"]) {
      await c.api(
        "DELETE",
        `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${name}`,
      ).catch(() => {});
    }
    await c.deleteNamespace(ns);
  }
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

const x509 = await x509Cost();
const floor = await measure("floor (no webhook)", () => Promise.resolve(undefined));
const ours = await measure("ours", (ns, name) => {
  const port = freePort();
  const operator = OperatorProcess.start({
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
      `https://127.0.0.1:${port}`,
      "--webhook-managed",
      name,
      `${ROOT}bench/admission/ours.ts`,
    ],
    env: { KUBECONFIG: c.kubeconfig },
  });
  return Promise.resolve(operator);
});
const kopf = await pythonKopf();
const dir = await Deno.makeTempDir();
const certs = await generateCertificates(["127.0.0.1"]);
await Deno.writeTextFile(`${dir}/tls.crt`, certs.certPem);
await Deno.writeTextFile(`${dir}/tls.key`, certs.keyPem);
await Deno.writeTextFile(`${dir}/ca.crt`, certs.caPem);
const theirs = await measure(
  `Kopf ${kopf.version}`,
  (ns, name) =>
    Promise.resolve(OperatorProcess.start({
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
      },
    })),
);
await Deno.remove(dir, { recursive: true });

const row = (label: string, f: Figures) =>
  `| ${label} | ${f.perSecond.toFixed(0)} | ${f.p50.toFixed(1)} | ${f.p99.toFixed(1)} |`;
console.log(
  [
    `Admission round-trips: ${N} dry-run creates, ${CONCURRENCY} in flight, after ${WARMUP} warm-up.`,
    "",
    "| webhook | round-trips/s | p50 ms | p99 ms |",
    "| --- | ---: | ---: | ---: |",
    row("none (API server floor)", floor),
    row("ours (kopf run --webhook-server)", ours),
    row(`Python Kopf ${kopf.version}`, theirs),
    "",
    `@peculiar/x509 on first certificate generation: +${x509.ms.toFixed(0)} ms, ` +
    `+${x509.rssMb.toFixed(1)} MB RSS (fresh process).`,
  ].join("\n"),
);
