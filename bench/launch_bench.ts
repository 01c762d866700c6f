/**
 * What `kopf run` spends before the operator's handlers run: the launcher's plan — above all the
 * module graph (`deno info`) — and the whole way from `deno run cli.ts run` to a handler file
 * that exits as soon as it is imported.
 *
 * ```sh
 * deno run -A bench/launch_bench.ts [--runs 15] [--kubeconfig PATH] [--cli OTHER/cli.ts]
 * ```
 *
 * Without `--kubeconfig` it uses `$KUBECONFIG`; nothing connects to the cluster (the handler
 * exits at import), but the launcher reads the kubeconfig. `--cli` times another checkout's
 * `cli.ts` too (e.g. the commit before a change), with the same handler file.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { planLaunch } from "../src/cli/run.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "15" },
    kubeconfig: { type: "string" },
    cli: { type: "string", multiple: true, default: [] },
  },
});
const runs = Number(values.runs);
const kubeconfig = values.kubeconfig ?? Deno.env.get("KUBECONFIG");
if (!kubeconfig) throw new Error("pass --kubeconfig or set KUBECONFIG");

const ROOT = new URL("..", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "kopf-launch-bench-" });

function handlerFor(cli: string): string {
  const mod = cli.replace(/cli\.ts$/, "mod.ts");
  return `import * as kopf from ${JSON.stringify(mod)};
import { helper } from "./helper.ts";
kopf.on.create("kopfexamples", function create_fn() { return helper(); });
Deno.exit(0);
`;
}

function stats(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `median ${at(0.5).toFixed(0)} ms, p90 ${at(0.9).toFixed(0)} ms, min ${
    sorted[0].toFixed(0)
  } ms (${samples.length} runs)`;
}

try {
  await Deno.writeTextFile(`${dir}/helper.ts`, `export const helper = () => ({ ok: true });\n`);

  // The plan alone, in this process: resolve, list the graph, build the context's kubeconfig.
  await Deno.writeTextFile(`${dir}/handlers.ts`, handlerFor(`${ROOT}cli.ts`));
  const plans: number[] = [];
  const graphs: number[] = [];
  let files = 0;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const plan = await planLaunch({
      files: [`${dir}/handlers.ts`],
      operator: { kubeconfig },
      logging: {},
    });
    plans.push(performance.now() - started);
    graphs.push(plan.graph.millis);
    files = plan.graph.files.length;
  }
  console.log(`module graph (deno info ×2, ${files} files granted): ${stats(graphs)}`);
  console.log(`whole plan: ${stats(plans)}`);

  // End to end: `deno run -A cli.ts run handlers.ts` until the handler file exits.
  for (const cli of [`${ROOT}cli.ts`, ...values.cli]) {
    await Deno.writeTextFile(`${dir}/handlers.ts`, handlerFor(cli));
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, "run", `${dir}/handlers.ts`, "-A", "--kubeconfig", kubeconfig],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      samples.push(performance.now() - started);
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    }
    console.log(`kopf run to the handler's exit, ${cli}: ${stats(samples)}`);
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
