/**
 * `deno task bench:kopf`: the benchmark against Python Kopf on a local control plane.
 *
 *     deno run -A bench/kopf/main.ts [--n 1000] [--idle 300] [--targets kopf,ours,floor,…]
 *       [--variants single,three] [--plane private|shared] [--out DIR]
 *
 * `--plane private` (the default) starts a control plane of its own in /tmp/kopf-bench-plane (and
 * stops it afterwards if it started it): the apiserver's request counters carry no client label,
 * so other work on a shared plane (tests deleting namespaces, say) would be counted as the
 * operator's. `--plane shared` uses the tests' plane (`tests/cluster/cluster.sh up`).
 *
 * @module
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { cluster } from "../../tests/support/cluster.ts";
import { reportMarkdown, runBenchmark, TARGET_IDS, type TargetId } from "./benchmark.ts";
import { oursFactory } from "./ours.ts";
import type { Variant } from "./targets.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const USAGE = `usage: deno task bench:kopf [options]
  --n N                  objects per burst (default 1000)
  --idle SECONDS         idle window after the deletions (default 300)
  --targets LIST         of kopf,kopf-best,ours,ours-best,ours-metrics,floor,ctrlrt,ctrlrt-10
                         (default: kopf,kopf-best,ours,ours-best,floor; ours-metrics is ours
                         with --metrics on and scraped every 5 s; *-best are the labelled
                         non-default settings; ctrlrt and ctrlrt-10 are the controller-runtime
                         operator in bench/controller-runtime/ with 1 (its default) and 10
                         workers, built with \`go build\` on first use; *-best and ctrlrt* run
                         for the single variant only)
  --variants LIST        of single,three (default: both; the idle window runs with the first)
  --plane private|shared own control plane in /tmp/kopf-bench-plane (default) or the tests' one
  --keep-plane           leave the private plane running afterwards
  --out DIR              results folder (default bench/results/<timestamp>)
  --concurrency N        driver requests in flight during a burst (default 32)
  --settle SECONDS       quiet time that closes a phase (default 2)
  --phase-timeout SEC    give up on a phase after this (default max(300, N/2))
  --pause SECONDS        between targets (default 5)`;

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1000" },
    idle: { type: "string", default: "300" },
    targets: { type: "string", default: "kopf,kopf-best,ours,ours-best,floor" },
    variants: { type: "string", default: "single,three" },
    plane: { type: "string", default: "private" },
    "keep-plane": { type: "boolean", default: false },
    out: { type: "string" },
    concurrency: { type: "string", default: "32" },
    settle: { type: "string", default: "2" },
    "phase-timeout": { type: "string" },
    pause: { type: "string", default: "5" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const n = Number(values.n);
const targets = values.targets!.split(",") as TargetId[];
const variants = values.variants!.split(",") as Variant[];
for (const t of targets) {
  if (!TARGET_IDS.includes(t)) {
    throw new Error(`unknown target ${t}\n${USAGE}`);
  }
}
for (const v of variants) {
  if (!["single", "three"].includes(v)) throw new Error(`unknown variant ${v}\n${USAGE}`);
}

const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const outDir = resolve(values.out ?? `${ROOT}bench/results/${stamp}`);
const planeScript = `${ROOT}tests/cluster/cluster.sh`;
let startedPlane = false;
if (values.plane === "private") {
  Deno.env.set("KOPF_CLUSTER_DIR", Deno.env.get("KOPF_BENCH_PLANE_DIR") ?? "/tmp/kopf-bench-plane");
  const status = await new Deno.Command("bash", {
    args: [planeScript, "status"],
    stdout: "null",
    stderr: "null",
  })
    .output();
  startedPlane = !status.success;
} else if (values.plane !== "shared") {
  throw new Error(`--plane must be private or shared\n${USAGE}`);
}

const log = (line: string) => console.error(`bench: ${line}`);
try {
  const c = await cluster();
  log(`plane ${c.server} (${values.plane}); results in ${outDir}`);
  const result = await runBenchmark(c, {
    n,
    idleSeconds: Number(values.idle),
    concurrency: Number(values.concurrency),
    settleSeconds: Number(values.settle),
    phaseTimeoutSeconds: Number(values["phase-timeout"] ?? Math.max(300, n / 2)),
    sampleMs: 1000,
    targets,
    variants,
    outDir,
    pauseSeconds: Number(values.pause),
    log,
  }, oursFactory);
  console.log(reportMarkdown(result));
  log(`wrote ${outDir}/report.md, results.json, handled-*.svg and the operators' logs`);
} finally {
  if (startedPlane && !values["keep-plane"]) {
    await new Deno.Command("bash", {
      args: [planeScript, "down"],
      stdout: "null",
      stderr: "inherit",
    }).output();
  }
}
