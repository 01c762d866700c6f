/**
 * The test harness for the real control plane: starts it once per test process (reusing a running
 * one), gives each test a fresh namespace, applies manifests, and counts API requests from the
 * apiserver's own `/metrics`.
 *
 * It talks to the API server with plain `fetch` and the admin token, independent of the
 * framework's own client, so a broken client cannot make a test pass.
 *
 * Tests that break the plane (restart the API server, stop etcd) take one of their own with
 * {@linkcode privateCluster}, in a directory of its own, and bring it down when done.
 *
 * @module
 */
import { loadAll } from "js-yaml";
import { waitFor } from "./wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const SCRIPT = `${ROOT}tests/cluster/cluster.sh`;

/** A Kubernetes object as plain JSON. */
// deno-lint-ignore no-explicit-any
export type Obj = Record<string, any>;

/** An HTTP error from the API server, as seen by the harness. */
export class HarnessApiError extends Error {
  constructor(readonly status: number, readonly body: Obj | string, what: string) {
    super(`${what}: HTTP ${status}: ${typeof body === "string" ? body : body.message ?? ""}`);
  }
}

/** One filter over `apiserver_request_total` series. Omitted labels match anything. */
export interface RequestFilter {
  verb?: string;
  resource?: string;
  group?: string;
  subresource?: string;
  code?: string;
  scope?: string;
}

interface Series {
  labels: Record<string, string>;
  value: number;
}

/** A snapshot of `apiserver_request_total`, or the difference of two snapshots. */
export class RequestCounts {
  constructor(readonly series: Series[]) {}

  /** Sum of the series matching the filter (verbs are upper-case: LIST, WATCH, PATCH, …). */
  count(filter: RequestFilter = {}): number {
    let sum = 0;
    for (const { labels, value } of this.series) {
      if (Object.entries(filter).every(([k, v]) => v === undefined || labels[k] === v)) {
        sum += value;
      }
    }
    return sum;
  }

  /** Requests made after `earlier` was taken. */
  since(earlier: RequestCounts): RequestCounts {
    const key = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort());
    const before = new Map(earlier.series.map((s) => [key(s.labels), s.value]));
    return new RequestCounts(
      this.series
        .map((s) => ({ labels: s.labels, value: s.value - (before.get(key(s.labels)) ?? 0) }))
        .filter((s) => s.value > 0),
    );
  }

  /** A compact table of non-zero series (verb resource/subresource code: n), for failure messages. */
  toString(): string {
    return this.series
      .map((s) =>
        `${s.labels.verb} ${s.labels.resource || "-"}${
          s.labels.subresource ? "/" + s.labels.subresource : ""
        } ${s.labels.code}: ${s.value}`
      )
      .sort()
      .join("\n");
  }
}

/** Parses Prometheus text for `apiserver_request_total`. */
export function parseRequestTotals(text: string): RequestCounts {
  const series: Series[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const close = line.lastIndexOf("}");
    const labels: Record<string, string> = {};
    for (const m of line.slice(line.indexOf("{") + 1, close).matchAll(/(\w+)="([^"]*)"/g)) {
      labels[m[1]] = m[2];
    }
    series.push({ labels, value: Number(line.slice(close + 1).trim()) });
  }
  return new RequestCounts(series);
}

/** A running local control plane, as the tests see it. */
export interface TestCluster {
  /** Path of a kubeconfig with contexts `ktest` (token, current) and `ktest-cert` (client cert). */
  kubeconfig: string;
  /** `https://127.0.0.1:<port>`. */
  server: string;
  /** The admin bearer token (user in `system:masters`). */
  token: string;
  caFile: string;
  caPem: string;
  caKeyFile: string;
  /** Admin client certificate and key (CN=kube-admin, O=system:masters). */
  certFile: string;
  keyFile: string;
  /** The plane's directory: pki/, logs/, kubeconfig, env. */
  runDir: string;
  /** The CRD of Kopf's examples, `kopfexamples.kopf.dev`. */
  kopfExampleCrd: string;
  /** A raw admin request; parsed JSON back; throws {@linkcode HarnessApiError} on non-2xx. */
  api(method: string, path: string, body?: unknown, options?: { contentType?: string }): Promise<
    Obj
  >;
  /** Creates a fresh namespace `<prefix>-<random>` and returns its name. */
  namespace(prefix?: string): Promise<string>;
  /** Deletes a namespace (without waiting for it to go). */
  deleteNamespace(name: string): Promise<void>;
  /** Server-side-applies every object of a YAML file or text; returns the applied objects. */
  apply(source: string | Obj | Obj[], options?: { namespace?: string }): Promise<Obj[]>;
  /** Applies a CRD YAML and waits until it is Established. */
  applyCrd(path: string): Promise<void>;
  /** Snapshot of the apiserver's request counters. */
  metrics(): Promise<RequestCounts>;
  /** Stops and starts kube-apiserver (etcd keeps the data). */
  restartApiserver(): Promise<void>;
  /** The last lines of every component's log (to print when a test fails). */
  logs(): Promise<string>;
  /** Deletes every namespace this harness created. */
  cleanup(): Promise<void>;
}

/** A control plane of a test's own, which it may break and must bring down. */
export interface PrivateCluster extends TestCluster {
  /** Stops kube-apiserver (etcd keeps the data). */
  stopApiserver(): Promise<void>;
  /** Starts the stopped kube-apiserver; resolves when it is ready. */
  startApiserver(): Promise<void>;
  /** Stops etcd (the API server stays up and fails its requests). */
  stopEtcd(): Promise<void>;
  /** Starts the stopped etcd on its data; resolves when the API server is ready again. */
  startEtcd(): Promise<void>;
  /** Stops every component and removes the plane's directory. */
  down(): Promise<void>;
}

let shared: Promise<TestCluster> | undefined;

/** The control plane for this test process: started (or reused) once, then shared. */
export function cluster(): Promise<TestCluster> {
  shared ??= start();
  return shared;
}

/**
 * A control plane in `dir` (`KOPF_CLUSTER_DIR` of `cluster.sh`), started or reused, never the
 * shared one: for tests that restart or stop its components.
 */
export async function privateCluster(
  dir: string,
  options: { featureGates?: string } = {},
): Promise<PrivateCluster> {
  const base = await start(dir, options.featureGates);
  return {
    ...base,
    stopApiserver: async () => void await runScript(dir, ["stop-apiserver"]),
    startApiserver: async () => void await runScript(dir, ["start-apiserver"]),
    stopEtcd: async () => void await runScript(dir, ["stop-etcd"]),
    startEtcd: async () => void await runScript(dir, ["start-etcd"]),
    down: async () => void await runScript(dir, ["down"]),
  };
}

/**
 * Where the tests' plane with the `ShardedListAndWatch` feature gate lives (a private plane: the
 * shared one runs without it, so that both sides of sharding are tested for real).
 */
export function shardedPlaneDir(): string {
  return `${Deno.env.get("KOPF_CLUSTER_DIR") ?? "/tmp/kopf-cluster"}-sharded`;
}

/** Runs `cluster.sh` on the plane in `dir` (default: `KOPF_CLUSTER_DIR` or the script's own). */
async function runScript(
  dir: string | undefined,
  args: string[],
  extra: Record<string, string> = {},
): Promise<string> {
  const env: Record<string, string> = dir === undefined
    ? extra
    : { KOPF_CLUSTER_DIR: dir, ...extra };
  const out = await new Deno.Command("bash", { args: [SCRIPT, ...args], env, stderr: "piped" })
    .output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(`cluster.sh ${args.join(" ")} failed:\n${stderr}`);
  }
  return stdout;
}

async function start(dir?: string, featureGates = ""): Promise<TestCluster> {
  const gates: Record<string, string> = featureGates
    ? { KOPF_CLUSTER_FEATURE_GATES: featureGates }
    : {};
  const stdout = await runScript(dir, ["up"], gates);
  const last = stdout.trim().split("\n").at(-1) ?? "";
  if (!last.startsWith("KUBECONFIG=")) throw new Error(`cluster.sh up printed no KUBECONFIG line`);
  const kubeconfig = last.slice("KUBECONFIG=".length);
  const runDir = kubeconfig.slice(0, kubeconfig.lastIndexOf("/"));
  const env = Object.fromEntries(
    (await Deno.readTextFile(`${runDir}/env`)).trim().split("\n").map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  const caPem = await Deno.readTextFile(`${runDir}/pki/ca.crt`);
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  const server: string = env.K8S_SERVER;
  const token: string = env.K8S_TOKEN;
  const created = new Set<string>();

  async function api(
    method: string,
    path: string,
    body?: unknown,
    options: { contentType?: string } = {},
  ): Promise<Obj> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${token}`,
      Accept: path === "/metrics" ? "text/plain" : "application/json",
    };
    if (body !== undefined) headers["Content-Type"] = options.contentType ?? "application/json";
    const response = await fetch(`${server}${path}`, {
      method,
      headers,
      client,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: Obj | string = text;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch { /* not JSON (e.g. /metrics) */ }
    if (!response.ok) throw new HarnessApiError(response.status, parsed, `${method} ${path}`);
    return typeof parsed === "string" ? { text: parsed } : parsed;
  }

  const pluralCache = new Map<string, { plural: string; namespaced: boolean }>();
  async function pathOf(obj: Obj, namespace?: string): Promise<string> {
    const apiVersion: string = obj.apiVersion;
    const key = `${apiVersion}/${obj.kind}`;
    if (!pluralCache.has(key)) {
      const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const list = await waitFor(
        async () => (await api("GET", base)).resources?.find((r: Obj) => r.kind === obj.kind),
        { timeout: 30, message: `${obj.kind} to be served under ${base}` },
      );
      pluralCache.set(key, { plural: list.name, namespaced: list.namespaced });
    }
    const { plural, namespaced } = pluralCache.get(key)!;
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = obj.metadata?.namespace ?? namespace ?? "default";
    return namespaced
      ? `${base}/namespaces/${ns}/${plural}/${obj.metadata.name}`
      : `${base}/${plural}/${obj.metadata.name}`;
  }

  async function apply(source: string | Obj | Obj[], options: { namespace?: string } = {}) {
    let objs: Obj[];
    if (typeof source === "string") {
      const text = source.includes("\n") ? source : await Deno.readTextFile(source);
      objs = (loadAll(text) as Obj[]).filter((o) => o && typeof o === "object");
    } else {
      objs = Array.isArray(source) ? source : [source];
    }
    const applied: Obj[] = [];
    for (const obj of objs) {
      const path = await pathOf(obj, options.namespace);
      applied.push(
        await api("PATCH", `${path}?fieldManager=kopf-tests&force=true`, obj, {
          contentType: "application/apply-patch+yaml",
        }),
      );
    }
    return applied;
  }

  const self: TestCluster = {
    kubeconfig,
    server,
    token,
    caFile: `${runDir}/pki/ca.crt`,
    caPem,
    caKeyFile: `${runDir}/pki/ca.key`,
    certFile: `${runDir}/pki/admin.crt`,
    keyFile: `${runDir}/pki/admin.key`,
    runDir,
    kopfExampleCrd: `${ROOT}examples/crd.yaml`,
    api,
    apply,
    async namespace(prefix = "test") {
      const suffix = crypto.randomUUID().slice(0, 8);
      const name = `${prefix.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 40)}-${suffix}`;
      await api("POST", "/api/v1/namespaces", { metadata: { name } });
      created.add(name);
      return name;
    },
    async deleteNamespace(name) {
      created.delete(name);
      try {
        await api("DELETE", `/api/v1/namespaces/${name}`);
      } catch (error) {
        if (!(error instanceof HarnessApiError && error.status === 404)) throw error;
      }
    },
    async applyCrd(path) {
      const [crd] = await apply(path);
      await waitFor(async () => {
        const got = await api(
          "GET",
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
        );
        return got.status?.conditions?.some((c: Obj) =>
          c.type === "Established" && c.status === "True"
        );
      }, { timeout: 60, message: `CRD ${crd.metadata.name} to be Established` });
    },
    async metrics() {
      const { text } = await api("GET", "/metrics");
      return parseRequestTotals(text);
    },
    async restartApiserver() {
      await runScript(dir, ["restart-apiserver"]);
    },
    async logs() {
      return await runScript(dir, ["logs"]).catch((e) => String(e));
    },
    async cleanup() {
      await Promise.all([...created].map((name) => self.deleteNamespace(name)));
    },
  };
  return self;
}
