/**
 * The benchmark's report: one markdown table per variant (rows: metrics; columns: every target
 * that ran — Kopf, Kopf with its best settings, ours, floor, controller-runtime with 1 and 10
 * workers — then ours/Kopf, ours/floor and, when they ran, ours/ctrlrt and ours/ctrlrt-10).
 *
 * @module
 */
import type { PhaseResult, TargetResult } from "./scenario.ts";

/** A value in a cell, or text when there is no number to show. */
interface Cell {
  value: number | null;
  text?: string;
}

/** One row of the table. */
export interface Row {
  label: string;
  /** Decimal places. */
  digits: number;
  cell(target: TargetResult): Cell;
}

const MIB = 1024 * 1024;

function phaseOf(target: TargetResult, name: PhaseResult["phase"]): PhaseResult | undefined {
  return target.phases.find((p) => p.phase === name);
}

/** A cell from a phase figure; an incomplete phase shows how far it got instead. */
function fromPhase(
  name: PhaseResult["phase"],
  pick: (p: PhaseResult, t: TargetResult) => number | null | undefined,
  needsComplete = true,
): (t: TargetResult) => Cell {
  return (t) => {
    const p = phaseOf(t, name);
    if (!p) return { value: null, text: "not run" };
    if (needsComplete && !p.complete) {
      return { value: null, text: `incomplete: ${p.handled}/${p.expected}` };
    }
    const v = pick(p, t);
    return { value: v ?? null };
  };
}

function sumPhases(
  t: TargetResult,
  names: PhaseResult["phase"][],
  pick: (p: PhaseResult) => number | null,
): Cell {
  let sum = 0;
  for (const name of names) {
    const p = phaseOf(t, name);
    if (!p) return { value: null, text: "not run" };
    const v = pick(p);
    if (v === null) return { value: null };
    sum += v;
  }
  return { value: sum };
}

const BURSTS: PhaseResult["phase"][] = ["create", "update", "delete"];

/** The rows of the table. `idleSeconds` scales the idle counts to an hour. */
export function rows(idleSeconds: number): Row[] {
  const perHour = (n: number) => idleSeconds > 0 ? n * 3600 / idleSeconds : null;
  const out: Row[] = [
    {
      label: "start → first object handled (s)",
      digits: 2,
      cell: (t) => ({ value: t.startToFirstHandledSeconds }),
    },
    {
      label: "startup: operator CPU to the first object handled (s)",
      digits: 2,
      cell: (t) => ({ value: t.startupCpuSeconds ?? null }),
    },
    {
      label: "RSS started and idle, before the bursts (MiB)",
      digits: 1,
      cell: (t) => ({ value: t.startedRssBytes == null ? null : t.startedRssBytes / MIB }),
    },
  ];
  for (const phase of BURSTS) {
    out.push(
      {
        label: `${phase}: wall time until all handled (s)`,
        digits: 2,
        cell: fromPhase(phase, (p) => p.wallSeconds),
      },
      {
        label: `${phase}: handled objects/s`,
        digits: 1,
        cell: fromPhase(phase, (p) => p.perSecond),
      },
      {
        label: `${phase}: latency p50 (ms)`,
        digits: 0,
        cell: fromPhase(phase, (p) => p.latencyMs?.p50),
      },
      {
        label: `${phase}: latency p99 (ms)`,
        digits: 0,
        cell: fromPhase(phase, (p) => p.latencyMs?.p99),
      },
      {
        label: `${phase}: writes per object`,
        digits: 2,
        cell: fromPhase(phase, (p) => p.traffic.writes / p.expected, false),
      },
      {
        label: `${phase}: operator CPU (s)`,
        digits: 2,
        cell: fromPhase(phase, (p) => p.cpuSeconds, false),
      },
    );
  }
  out.push(
    {
      label: "writes per object, create→delete",
      digits: 2,
      cell: (t) => {
        const c = sumPhases(t, ["create", "delete"], (p) => p.traffic.writes);
        return c.value === null ? c : { value: c.value / t.n };
      },
    },
    {
      label: "writes per object, create→update→delete",
      digits: 2,
      cell: (t) => {
        const c = sumPhases(t, BURSTS, (p) => p.traffic.writes);
        return c.value === null ? c : { value: c.value / t.n };
      },
    },
    {
      label: "LIST requests, bursts",
      digits: 0,
      cell: (t) => sumPhases(t, BURSTS, (p) => p.traffic.lists),
    },
    {
      label: "WATCH requests opened, bursts",
      digits: 0,
      cell: (t) => sumPhases(t, BURSTS, (p) => p.traffic.watches),
    },
    {
      label: "GET requests, bursts",
      digits: 0,
      cell: (t) => sumPhases(t, BURSTS, (p) => p.traffic.gets),
    },
    {
      label: "Events written, bursts",
      digits: 0,
      cell: (t) => sumPhases(t, BURSTS, (p) => p.traffic.events),
    },
    {
      label: "other requests, bursts",
      digits: 0,
      cell: (t) => sumPhases(t, BURSTS, (p) => p.traffic.other),
    },
    {
      label: "startup: LIST requests",
      digits: 0,
      cell: fromPhase("startup", (p) => p.traffic.lists, false),
    },
    {
      label: "startup: WATCH requests opened",
      digits: 0,
      cell: fromPhase("startup", (p) => p.traffic.watches, false),
    },
    {
      label: "startup: all requests (incl. the warm-up object)",
      digits: 0,
      cell: fromPhase(
        "startup",
        (p) => Object.values(p.requests).reduce((a, b) => a + b, 0),
        false,
      ),
    },
    {
      label: "idle: LIST requests per hour",
      digits: 0,
      cell: fromPhase("idle", (p) => perHour(p.traffic.lists)),
    },
    {
      label: "idle: WATCH requests opened per hour",
      digits: 0,
      cell: fromPhase("idle", (p) => perHour(p.traffic.watches)),
    },
    {
      label: "idle: all requests per hour",
      digits: 0,
      cell: fromPhase("idle", (p) => perHour(p.traffic.total)),
    },
    { label: "idle: operator CPU (s)", digits: 2, cell: fromPhase("idle", (p) => p.cpuSeconds) },
    {
      label: "peak RSS (MiB)",
      digits: 1,
      cell: (t) => ({ value: t.peakRssBytes === null ? null : t.peakRssBytes / MIB }),
    },
    {
      label: "steady RSS, end of run (MiB)",
      digits: 1,
      cell: (t) => ({ value: t.steadyRssBytes === null ? null : t.steadyRssBytes / MIB }),
    },
    { label: "operator CPU, whole run (s)", digits: 2, cell: (t) => ({ value: t.cpuSeconds }) },
    {
      label: "kube-apiserver CPU, bursts (s)",
      digits: 2,
      cell: (t) => sumPhases(t, BURSTS, (p) => p.apiserverCpuSeconds),
    },
    {
      label: "etcd CPU, bursts (s)",
      digits: 2,
      cell: (t) => sumPhases(t, BURSTS, (p) => p.etcdCpuSeconds),
    },
  );
  return out;
}

function format(cell: Cell, digits: number): string {
  if (cell.value === null || !Number.isFinite(cell.value)) return cell.text ?? "—";
  return cell.value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function ratio(a: Cell, b: Cell): string {
  if (
    a.value === null || b.value === null || !Number.isFinite(a.value) || !Number.isFinite(b.value)
  ) {
    return "—";
  }
  if (b.value === 0) return a.value === 0 ? "=" : "—";
  return `${(a.value / b.value).toFixed(2)}×`;
}

/**
 * The ratio columns: ours against Kopf and the floor always (a dash when absent), and against
 * each controller-runtime configuration when it ran.
 */
const RATIOS: { id: string; header: string; always: boolean }[] = [
  { id: "kopf", header: "ours/Kopf", always: true },
  { id: "floor", header: "ours/floor", always: true },
  { id: "ctrlrt", header: "ours/ctrlrt", always: false },
  { id: "ctrlrt-10", header: "ours/ctrlrt-10", always: false },
];

/** The markdown table of one variant's targets (in the order given). */
export function markdownTable(targets: TargetResult[], idleSeconds: number): string {
  const byId = (id: string) => targets.find((t) => t.id === id);
  const ours = byId("ours");
  const ratios = RATIOS.filter((r) => r.always || byId(r.id));
  const columns = targets.map((t) => t.label);
  const header = ["metric", ...columns, ...ratios.map((r) => r.header)];
  const lines = [
    `| ${header.join(" | ")} |`,
    `| ${header.map((_, i) => i === 0 ? "---" : "---:").join(" | ")} |`,
  ];
  for (const row of rows(idleSeconds)) {
    const cells = targets.map((t) => format(row.cell(t), row.digits));
    const none: Cell = { value: null };
    const o = ours ? row.cell(ours) : none;
    const versus = ratios.map((r) => {
      const other = byId(r.id);
      return other ? ratio(o, row.cell(other)) : "—";
    });
    lines.push(`| ${[row.label, ...cells, ...versus].join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Notes under a table: failures and what each column ran. */
export function notes(targets: TargetResult[]): string {
  const lines: string[] = [];
  for (const t of targets) {
    lines.push(`- ${t.label}: \`${t.command.join(" ")}\``);
    const { start, end } = t.loadAverage;
    if (start !== null && end !== null) {
      lines.push(
        `  - machine load average (1 min) at start/end: ${start.toFixed(2)} / ${end.toFixed(2)}`,
      );
    }
    if (t.error) lines.push(`  - **problem:** ${t.error.split("\n")[0]}`);
    if (t.processes.length > 1) {
      const each = t.processes.map((p) =>
        `${p.name} ${(p.rssBytes / MIB).toFixed(1)} MiB (peak ${(p.hwmBytes / MIB).toFixed(1)})`
      );
      lines.push(`  - processes at the end: ${each.join("; ")}`);
    }
    if (t.exitCode !== null && t.exitCode !== 0) {
      lines.push(`  - exit code after SIGTERM: ${t.exitCode}`);
    }
    if (t.observerErrors.length) {
      lines.push(`  - benchmark watch retried ${t.observerErrors.length}×`);
    }
  }
  return lines.join("\n");
}
