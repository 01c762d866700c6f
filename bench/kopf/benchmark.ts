/**
 * The whole benchmark: prepares the control plane and the benchmark's CRD, runs the scenario
 * against each target of each variant one at a time, and writes the table, the raw JSON and the
 * charts.
 *
 * @module
 */
import type { TestCluster } from "../../tests/support/cluster.ts";
import { type PythonKopf, pythonKopf } from "../../tests/support/python_kopf.ts";
import { waitFor } from "../../tests/support/wait.ts";
import { handledChart } from "./chart.ts";
import { DriverApi } from "./driver_api.ts";
import { type OperatorIdentity, prepareIdentity } from "./identity.ts";
import { markdownTable, notes } from "./report.ts";
import {
  type Plane,
  RESOURCE,
  runScenario,
  type ScenarioOptions,
  type Target,
  type TargetResult,
} from "./scenario.ts";
import { floorTarget, kopfTarget, type Variant } from "./targets.ts";
import { buildCtrlrt, ctrlrtTarget } from "./ctrlrt.ts";

const HERE = new URL(".", import.meta.url).pathname;

/** Which operators the benchmark can measure. */
export type TargetId =
  | "kopf"
  | "kopf-best"
  | "ours"
  | "ours-best"
  | "ours-metrics"
  | "floor"
  | "ctrlrt"
  | "ctrlrt-10";

/** Every target id, in the order the usage lists them. */
export const TARGET_IDS: TargetId[] = [
  "kopf",
  "kopf-best",
  "ours",
  "ours-best",
  "ours-metrics",
  "floor",
  "ctrlrt",
  "ctrlrt-10",
];

/** Benchmark options. */
export interface BenchOptions extends ScenarioOptions {
  targets: TargetId[];
  variants: Variant[];
  /** Where to write results (created). */
  outDir: string;
  /** Seconds to pause between targets, so one's trailing work does not land in the next. */
  pauseSeconds: number;
  /** Called with progress lines. */
  log?: (line: string) => void;
}

/** Where and on what the benchmark ran. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  deno: string;
  python: string | null;
  kopf: string | null;
  kubernetes: string;
}

/** The raw result of a run (written as results.json). */
export interface BenchResult {
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  options: Omit<BenchOptions, "log">;
  /** Targets that were asked for but could not run, with the reason. */
  skipped: { id: string; variant: string; reason: string }[];
  results: TargetResult[];
}

/** Ours (`best`: with its labelled non-default settings), or why it cannot run. */
export type OursFactory = (
  variant: Variant,
  best?: boolean,
  metrics?: boolean,
) => Promise<Target | string>;

async function text(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(out.stdout).trim() ||
      new TextDecoder().decode(out.stderr).trim();
  } catch {
    return "";
  }
}

async function machineInfo(api: DriverApi, kopf: PythonKopf | undefined): Promise<MachineInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const version = await api.request("GET", "/version").catch(() => ({}));
  return {
    cpu: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0) / 1024 / 1024),
    kernel: await text("uname", ["-r"]),
    deno: Deno.version.deno,
    python: kopf ? await text(kopf.python, ["--version"]) : null,
    kopf: kopf?.version ?? null,
    kubernetes: version.gitVersion ?? "unknown",
  };
}

async function pidOf(file: string): Promise<number | undefined> {
  try {
    return Number((await Deno.readTextFile(file)).trim()) || undefined;
  } catch {
    return undefined;
  }
}

/** The plane as the scenario needs it, from the test harness's cluster. */
export async function planeOf(c: TestCluster, operator: OperatorIdentity): Promise<Plane> {
  return {
    endpoint: { server: c.server, token: c.token, caPem: c.caPem },
    caFile: c.caFile,
    operator,
    apiserverPid: await pidOf(`${c.runDir}/kube-apiserver.pid`),
    etcdPid: await pidOf(`${c.runDir}/etcd.pid`),
  };
}

/** Applies the benchmark CRD and waits until its storage serves lists (not 429). */
export async function prepareCrd(c: TestCluster): Promise<void> {
  await c.applyCrd(`${HERE}crd.yaml`);
  const api = new DriverApi({ server: c.server, token: c.token, caPem: c.caPem });
  try {
    await waitFor(async () => {
      await api.request(
        "GET",
        `/apis/${RESOURCE.group}/${RESOURCE.version}/${RESOURCE.plural}?limit=1`,
      );
      return true;
    }, { timeout: 60, message: "the benchmark CRD to serve lists" });
  } finally {
    api.close();
  }
}

/** Runs the benchmark; writes results under `options.outDir`; returns the raw result. */
export async function runBenchmark(
  c: TestCluster,
  options: BenchOptions,
  ours?: OursFactory,
): Promise<BenchResult> {
  const log = options.log ?? (() => {});
  const startedAt = new Date().toISOString();
  await Deno.mkdir(options.outDir, { recursive: true });
  await prepareCrd(c);
  const plane = await planeOf(c, await prepareIdentity(c, `${options.outDir}/identity`, RESOURCE));
  const kopf = options.targets.includes("kopf") ? await pythonKopf() : undefined;
  const kopfBest = options.targets.includes("kopf-best")
    ? await pythonKopf({ uvloop: true })
    : undefined;
  // The Go operator is built once, before any target runs (so a build never lands in a phase);
  // a failed build skips both of its columns with the one line that says why.
  const ctrlrt = options.targets.some((t) => t.startsWith("ctrlrt"))
    ? await buildCtrlrt(log).then((binary) => ({ binary }), (error: Error) => error.message)
    : "not asked for";
  const api = new DriverApi(plane.endpoint);
  const machine = await machineInfo(api, kopf ?? kopfBest);
  api.close();

  const skipped: BenchResult["skipped"] = [];
  const results: TargetResult[] = [];
  for (const [index, variant] of options.variants.entries()) {
    // The idle window is measured once, with the first variant: handler count does not change it.
    const scenario = { ...options, idleSeconds: index === 0 ? options.idleSeconds : 0 };
    for (const id of options.targets) {
      let target: Target | string;
      if (id === "kopf") target = kopfTarget(kopf!, variant);
      else if (id === "kopf-best") {
        target = variant === "single"
          ? kopfTarget(kopfBest!, variant, true)
          : "run for the single variant only";
      } else if (id === "floor") target = floorTarget(variant);
      else if (id === "ctrlrt" || id === "ctrlrt-10") {
        target = typeof ctrlrt === "string"
          ? ctrlrt
          : ctrlrtTarget(ctrlrt.binary, variant, id === "ctrlrt" ? 1 : 10);
      } else if (!ours) target = "no factory for ours was given";
      else target = await ours(variant, id === "ours-best", id === "ours-metrics");
      if (typeof target === "string") {
        skipped.push({ id, variant, reason: target });
        log(`skip ${id}/${variant}: ${target}`);
        continue;
      }
      log(`run ${target.label} / ${variant}: n=${scenario.n}, idle=${scenario.idleSeconds}s`);
      const logFile = `${options.outDir}/${id}-${variant}.log`;
      const result = await runScenario(plane, target, scenario, logFile, log);
      results.push(result);
      log(
        `  ${result.error ? `PROBLEM: ${result.error.split("\n")[0]}` : "complete"}; ` +
          result.phases.map((p) => `${p.phase} ${p.wallSeconds?.toFixed(2) ?? "-"}s`).join(", "),
      );
      await new Promise((resolve) => setTimeout(resolve, options.pauseSeconds * 1000));
    }
  }
  const result: BenchResult = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    options: { ...options, log: undefined } as Omit<BenchOptions, "log">,
    skipped,
    results,
  };
  await writeResults(result, options.outDir);
  return result;
}

/** The report as markdown: a header, one table per variant, notes. */
export function reportMarkdown(result: BenchResult): string {
  const { machine, options } = result;
  const out = [
    `# Kopf for Deno vs Python Kopf${
      result.results.some((r) => r.id.startsWith("ctrlrt")) ? " and controller-runtime" : ""
    } — ${result.startedAt}`,
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}; ` +
    `Deno ${machine.deno}; ${machine.python ?? "no Python"}; Kopf ${machine.kopf ?? "—"}; ` +
    `kube-apiserver ${machine.kubernetes} (local, etcd in memory).`,
    `Scenario: N=${options.n} objects per burst, driver concurrency ${options.concurrency}, ` +
    `idle window ${options.idleSeconds} s (first variant only), phases settle ${options.settleSeconds} s after the last event.`,
    "",
  ];
  for (const variant of options.variants) {
    const targets = result.results.filter((r) => r.variant === variant);
    if (targets.length === 0) continue;
    out.push(
      `## ${
        variant === "single"
          ? "One create, one update, one delete handler"
          : "Three create handlers (+ update, delete)"
      }`,
      "",
      markdownTable(targets, variant === options.variants[0] ? options.idleSeconds : 0),
      "",
      notes(targets),
      "",
    );
  }
  for (const s of result.skipped) out.push(`- skipped ${s.id} (${s.variant}): ${s.reason}`);
  return out.join("\n") + "\n";
}

/** Writes results.json, report.md and one chart per variant. */
export async function writeResults(result: BenchResult, dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(result, null, 1));
  await Deno.writeTextFile(`${dir}/report.md`, reportMarkdown(result));
  for (const variant of result.options.variants) {
    const targets = result.results.filter((r) => r.variant === variant);
    if (targets.length === 0) continue;
    await Deno.writeTextFile(
      `${dir}/handled-${variant}.svg`,
      handledChart(targets, `Handled objects over time, N=${result.options.n} (${variant})`),
    );
  }
}
