/**
 * What a login helper costs the operator: `kopf run` of a handler file whose login handler is
 * `kopf.loginWithKubeconfig` (the framework's own loader) or `kopf.loginViaClient`
 * (`@kubernetes/client-node`, imported on that call), against the local control plane. Reports, per
 * run, the milliseconds from the start to "Initial authentication has finished." and the
 * operator's resident memory (VmRSS, and the peak VmHWM) two seconds later.
 *
 * ```sh
 * KOPF_CLUSTER_DIR=/tmp/kopf-cluster deno run -A bench/login_bench.ts --runs 3
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { cluster } from "../tests/support/cluster.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
const runs = Number(values.runs);
const MOD = new URL("../mod.ts", import.meta.url).href;
const CLI = new URL("../cli.ts", import.meta.url).href;
const c = await cluster();
const ns = await c.namespace("login-bench");

function status(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
    const match = line.match(/^(VmRSS|VmHWM):\s+(\d+) kB/);
    if (match) out[match[1]] = Number(match[2]) / 1024;
  }
  return out;
}

async function once(helper: string): Promise<{ ms: number; rss: number; hwm: number }> {
  const dir = await Deno.makeTempDir({ prefix: "kopf-login-bench-" });
  await Deno.writeTextFile(
    `${dir}/handlers.ts`,
    `import * as kopf from "${MOD}";
kopf.on.login(kopf.${helper});
kopf.on.probe(function alive() { return true; });
`,
  );
  const started = performance.now();
  // `kopf run` becomes the operator (execve): the child's pid is the operator's.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "run", "--standalone", "-n", ns, `${dir}/handlers.ts`],
    env: { KUBECONFIG: c.kubeconfig },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let text = "";
  let ms = NaN;
  for await (const chunk of child.stderr) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes("Initial authentication has finished.")) {
      ms = performance.now() - started;
      break;
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const { VmRSS, VmHWM } = status(child.pid);
  child.kill("SIGTERM");
  await child.status;
  return { ms, rss: VmRSS, hwm: VmHWM };
}

try {
  for (const helper of ["loginWithKubeconfig", "loginViaClient"]) {
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await once(helper));
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
    console.log(
      `${helper.padEnd(20)} to logged in (ms): ${fmt(results.map((r) => r.ms))}; ` +
        `RSS (MiB): ${fmt(results.map((r) => r.rss))}; peak (MiB): ${
          fmt(results.map((r) => r.hwm))
        }`,
    );
  }
} finally {
  await c.deleteNamespace(ns);
}
