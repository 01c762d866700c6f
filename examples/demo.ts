/**
 * The quick start (`deno task demo`): an operator at work, from nothing.
 *
 * 1. Finds a cluster: `$KUBECONFIG` or `~/.kube/config`; without either, brings up the local
 *    control plane of this repository (`tests/cluster/cluster.sh up`; the first time it builds
 *    kube-apiserver and etcd from the Go module proxy, which takes a while).
 * 2. Applies the examples' CRD (`examples/crd.yaml`).
 * 3. Runs an example operator through `kopf run`, in the background (default:
 *    `examples/99-all-at-once/example.ts`, which has every kind of handler; or the file given as
 *    the first argument, e.g. `examples/01-minimal/example.ts`).
 * 4. Creates, updates and deletes `examples/obj.yaml` in the namespace `kopf-demo`, and shows
 *    what the handlers did: the operator's log lines and the object's status.
 * 5. Stops the operator.
 *
 * ```sh
 * deno task demo
 * deno task demo examples/01-minimal/example.ts
 * ```
 *
 * @module
 */
import { load } from "js-yaml";
import { KopfRunner } from "@kopf/kopf/testing";
import { KubeClient } from "../src/kube/client.ts";
import { ApiError } from "../src/kube/errors.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const NAMESPACE = "kopf-demo";
const CRD_NAME = "kopfexamples.kopf.dev";
const DIFF_BASE = "kopf.zalando.org/last-handled-configuration";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

function say(text: string): void {
  console.log(Deno.noColor ? `\n==> ${text}` : `\n\x1b[1m==> ${text}\x1b[0m`);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function wait<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  seconds = 60,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${seconds}s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The kubeconfig to use: the user's, or the local control plane's (started if needed). */
async function findCluster(): Promise<{ kubeconfig: string; local: boolean }> {
  const configured = Deno.env.get("KUBECONFIG");
  if (configured) {
    say(`Using the cluster of KUBECONFIG=${configured}`);
    return { kubeconfig: configured, local: false };
  }
  const home = Deno.env.get("HOME");
  if (home && exists(`${home}/.kube/config`)) {
    say(`Using the cluster of ${home}/.kube/config`);
    return { kubeconfig: `${home}/.kube/config`, local: false };
  }
  say("No cluster is configured: starting the local control plane (tests/cluster/cluster.sh up)");
  console.log(
    "    The first start builds kube-apiserver and etcd from the Go module proxy (minutes).",
  );
  const child = new Deno.Command("bash", {
    args: [`${ROOT}tests/cluster/cluster.sh`, "up"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const { code, stdout } = await child.output();
  const last = new TextDecoder().decode(stdout).trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !last.startsWith("KUBECONFIG=")) {
    throw new Error(`the local control plane did not start (exit code ${code}); see above`);
  }
  return { kubeconfig: last.slice("KUBECONFIG=".length), local: true };
}

async function applyCrd(client: KubeClient): Promise<void> {
  say(`Applying the CRD ${CRD_NAME} (examples/crd.yaml)`);
  const crd = load(await Deno.readTextFile(`${ROOT}examples/crd.yaml`));
  const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`;
  await client.request("PATCH", path, {
    query: { fieldManager: "kopf-demo", force: true },
    body: JSON.stringify(crd),
    contentType: "application/apply-patch+yaml",
  });
  await wait("the CRD to be established", async () => {
    const got = await client.request<Obj>("GET", path);
    const ok = got.status?.conditions?.some((c: Obj) =>
      c.type === "Established" && c.status === "True"
    );
    return ok ? true : undefined;
  });
}

async function ensureNamespace(client: KubeClient): Promise<void> {
  try {
    await client.request("POST", "/api/v1/namespaces", { body: { metadata: { name: NAMESPACE } } });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409)) throw error;
  }
}

async function getObject(client: KubeClient, path: string): Promise<Obj | undefined> {
  try {
    return await client.request<Obj>("GET", path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

/** An object left by an earlier run that nobody serves any more: release and delete it. */
async function removeLeftover(client: KubeClient, path: string): Promise<void> {
  if (!await getObject(client, path)) return;
  await client.request("PATCH", path, {
    body: { metadata: { finalizers: null } },
    contentType: "application/merge-patch+json",
  });
  await client.request("DELETE", path).catch(() => {});
  await wait(
    "the leftover object to go",
    async () => (await getObject(client, path)) ? undefined : true,
  );
}

function showStatus(obj: Obj): void {
  const status = JSON.stringify(obj.status ?? {}, null, 2).replaceAll("\n", "\n    ");
  console.log(`    status: ${status}`);
  console.log(`    finalizers: ${JSON.stringify(obj.metadata?.finalizers ?? [])}`);
}

function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
  );
}

/** Waits until the operator has handled the object's current spec (its diff-base matches it). */
async function handled(client: KubeClient, path: string, spec: Obj): Promise<Obj> {
  return await wait("the operator to handle the object", async () => {
    const obj = await getObject(client, path);
    const base = obj?.metadata?.annotations?.[DIFF_BASE];
    if (!obj || !base) return undefined;
    return canonical(JSON.parse(base).spec) === canonical(spec) ? obj : undefined;
  });
}

async function main(): Promise<number> {
  // Every kind of handler (startup, create, update, field, delete, event, cleanup) by default:
  // the minimal example has a creation handler only, so the update and delete steps showed nothing.
  const example = Deno.args[0] ?? "examples/99-all-at-once/example.ts";
  const { kubeconfig, local } = await findCluster();
  const client = await KubeClient.connect({ kubeconfig });
  const obj = load(await Deno.readTextFile(`${ROOT}examples/obj.yaml`)) as Obj;
  const name: string = obj.metadata.name;
  const path = `/apis/kopf.dev/v1/namespaces/${NAMESPACE}/kopfexamples/${name}`;
  let runner: KopfRunner | undefined;
  try {
    await applyCrd(client);
    await ensureNamespace(client);
    await removeLeftover(client, path);

    say(`Starting the operator: kopf run --standalone -n ${NAMESPACE} ${example}`);
    runner = new KopfRunner(
      ["run", "--standalone", "--log-format", "plain", "-n", NAMESPACE, `${ROOT}${example}`],
      {
        env: { KUBECONFIG: kubeconfig },
        cwd: ROOT,
        timeout: 30,
        onOutput: (line) => console.log(`    operator | ${line}`),
      },
    );

    say(`Creating ${NAMESPACE}/${name} (examples/obj.yaml)`);
    await client.request("POST", `/apis/kopf.dev/v1/namespaces/${NAMESPACE}/kopfexamples`, {
      body: { ...obj, metadata: { ...obj.metadata, namespace: NAMESPACE } },
    });
    showStatus(await handled(client, path, obj.spec));

    const spec = { ...obj.spec, field: "changed", lst: ["a", "b"] };
    say(`Updating it: spec.field = "changed", spec.lst = ["a", "b"]`);
    await client.request("PATCH", path, {
      body: { spec: { field: "changed", lst: ["a", "b"] } },
      contentType: "application/merge-patch+json",
    });
    showStatus(await handled(client, path, spec));

    say(`Deleting it`);
    await client.request("DELETE", path);
    await wait(
      "the object to be deleted",
      async () => (await getObject(client, path)) ? undefined : true,
    );
    console.log("    gone: the operator's finalizer (if any) was released");
  } finally {
    if (runner) {
      say("Stopping the operator (SIGTERM)");
      const code = await runner.stop();
      console.log(`    the operator exited with code ${code}`);
      const ok = (runner.output.match(/Handler '.+?' succeeded\./g) ?? []).length;
      console.log(`    handler calls that succeeded: ${ok}`);
    }
    client.close();
  }
  say("Done.");
  if (local) {
    console.log("    The local control plane keeps running: `deno task cluster:down` stops it.");
  }
  console.log(`    The namespace ${NAMESPACE} and the CRD ${CRD_NAME} stay in the cluster.`);
  return runner?.exitCode === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`demo: error: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
