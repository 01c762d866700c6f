/**
 * What a chaos scenario counts, from the journal of handler calls, the observer's timelines and
 * the operator runs: handler calls per object and cause, repeats classified as allowed (the
 * process of the earlier call was killed before that call's outcome was stored) or violations,
 * objects that lost a create, an update or a delete, stuck finalizers, recovery times, restarts.
 * Printed as a table per scenario, and merged into a JSON file when `KOPF_CHAOS_REPORT` names one.
 *
 * @module
 */
import { AssertionError } from "node:assert/strict";
import type { JournalLine } from "./_journal.ts";
import { diffBaseVersion, FINALIZER, type Timeline } from "./_observer.ts";
import type { OperatorRun } from "./_supervisor.ts";
import type { Obj } from "../support/cluster.ts";

/** What the suite does with an object, which decides what is expected of the operator. */
export type Group =
  /** Created before the burst; the operator's first handled object. */
  | "warmup"
  /** Created right after a fault is injected; its handling times the recovery. */
  | "probe"
  /** Created, updated twice, kept. */
  | "keep"
  /** Created, updated, deleted. */
  | "update-delete"
  /** Created, deleted a little later. */
  | "delete"
  /** Created and deleted at once: deleted while its first handler runs. */
  | "quick-delete";

/** An object as the suite made it. */
export interface PlannedObject {
  name: string;
  group: Group;
  /** Its uid, once created. */
  uid?: string;
  /** The last `spec.v` the suite wrote. */
  v: number;
  /** The suite deleted it. */
  deleted: boolean;
}

/** One injected fault and how long until the operator handled the next new object. */
export interface Recovery {
  fault: string;
  /** When the fault was injected (ms since the epoch). */
  at: number;
  /** Seconds from the fault to the probe's creation outcome stored; null: never. */
  seconds: number | null;
  /** Seconds from the fault until the API server accepted the probe (the outage as seen). */
  apiSeconds: number;
}

/** Everything a scenario hands over to be counted. */
export interface CountInputs {
  scenario: string;
  objects: PlannedObject[];
  calls: JournalLine[];
  tornLines: number;
  timelines: Map<string, Timeline>;
  runs: OperatorRun[];
  /** The objects as listed after the settle time. */
  final: Obj[];
  recoveries: Recovery[];
  /** When the burst of creations began. */
  burstStartedAt: number;
  /** Seconds from the operator's start to the warm-up object handled. */
  startupSeconds: number | null;
  /** Scenario-specific figures (e.g. writes per object), reported as they are. */
  figures?: Record<string, unknown>;
  /** Where the operator logs and the journal are. */
  logDir: string;
}

/** Histogram: how many objects (or object versions) got 0, 1, 2, … calls. */
export type Histogram = Record<string, number>;

/** The counts of one scenario (JSON). */
export interface ScenarioCounts {
  scenario: string;
  objects: number;
  /** SIGKILLs sent by the suite. */
  kills: number;
  /** Operator runs that ended on their own. */
  unexpectedExits: number;
  /** Exit code of the last run after the suite's SIGTERM (null: killed or still running). */
  finalExitCode: number | null;
  /** Calls per object (create, delete) and per object version (update). */
  calls: { create: Histogram; update: Histogram; delete: Histogram };
  /** Calls of other causes (e.g. resume), which this operator does not register: expected 0. */
  otherCalls: number;
  /** Calls for objects the suite did not make: expected 0. */
  unknownCalls: number;
  repeats: { allowed: number; violations: number; details: string[] };
  /** Kept objects whose create handler was never called. */
  missedCreates: string[];
  /** Kept objects whose last version no handler saw, or whose diff-base never caught up. */
  lostUpdates: string[];
  /** Deleted objects whose create handler ran but whose delete handler never did. */
  lostDeletes: string[];
  /** Deleted objects still present after the settle time (held by a finalizer). */
  stuckFinalizers: string[];
  tornJournalLines: number;
  recoveries: Recovery[];
  /** Burst objects handled per second, from the first creation to the last creation outcome. */
  objectsPerSecond: number | null;
  startupSeconds: number | null;
  figures: Record<string, unknown>;
  /** Where the operator logs and the journal are (removed when the scenario passes). */
  logDir: string;
}

function bump(histogram: Histogram, n: number): void {
  const bin = n >= 3 ? "3+" : String(n);
  histogram[bin] = (histogram[bin] ?? 0) + 1;
}

/** Counts a scenario. */
export function countScenario(inputs: CountInputs): ScenarioCounts {
  const byUid = new Map(inputs.objects.filter((o) => o.uid).map((o) => [o.uid!, o]));
  const runs = new Map(inputs.runs.map((r) => [r.pid, r]));
  // When a process died: killed by the suite, or ended on its own.
  const diedAt = (pid: number): number | undefined => {
    const run = runs.get(pid);
    return run?.killedAt ?? (run?.unexpected ? run.endedAt : undefined);
  };
  const keyed = new Map<string, JournalLine[]>();
  let otherCalls = 0;
  let unknownCalls = 0;
  for (const call of inputs.calls) {
    if (!byUid.has(call.uid)) {
      unknownCalls++;
      continue;
    }
    if (!["create", "update", "delete"].includes(call.cause)) {
      otherCalls++;
      continue;
    }
    const key = call.cause === "update"
      ? `${call.uid} update ${call.v}`
      : `${call.uid} ${call.cause}`;
    if (!keyed.has(key)) keyed.set(key, []);
    keyed.get(key)!.push(call);
  }
  const callsOf = (uid: string | undefined, cause: string): JournalLine[] =>
    uid === undefined ? [] : inputs.calls.filter((c) => c.uid === uid && c.cause === cause);

  // When a call's outcome became visible on the object.
  const storedAt = (call: JournalLine): number | undefined => {
    const t = inputs.timelines.get(call.uid);
    if (!t) return undefined;
    if (call.cause === "create") return t.diffBaseAt;
    if (call.cause === "delete") return t.releasedAt;
    let first: number | undefined;
    for (const [v, at] of t.diffBaseVersions) {
      if (call.v !== null && v >= call.v && (first === undefined || at < first)) first = at;
    }
    return first;
  };

  const repeats = { allowed: 0, violations: 0, details: [] as string[] };
  for (const calls of keyed.values()) {
    calls.sort((a, b) => a.at - b.at);
    for (let i = 1; i < calls.length; i++) {
      const [earlier, later] = [calls[i - 1], calls[i]];
      const died = diedAt(earlier.pid);
      const stored = storedAt(earlier);
      const allowed = earlier.pid !== later.pid && died !== undefined && died >= earlier.at &&
        died <= later.at && (stored === undefined || stored > died);
      if (allowed) {
        repeats.allowed++;
        continue;
      }
      repeats.violations++;
      const what = `${later.handler}${later.cause === "update" ? ` (v${later.v})` : ""}`;
      const fate = earlier.pid === later.pid
        ? "in the same process"
        : died === undefined
        ? `in pid ${later.pid}; pid ${earlier.pid} did not die`
        : `in pid ${later.pid}; pid ${earlier.pid} died ${
          died - earlier.at
        } ms after the first call`;
      const outcome = stored === undefined
        ? "its outcome never seen stored"
        : `its outcome stored ${stored - earlier.at} ms after the first call`;
      repeats.details.push(
        `${later.name}: ${what} called again ${later.at - earlier.at} ms later ${fate}; ${outcome}`,
      );
    }
  }

  const calls = { create: {} as Histogram, update: {} as Histogram, delete: {} as Histogram };
  const finalByName = new Map(inputs.final.map((o) => [o.metadata.name as string, o]));
  const missedCreates: string[] = [];
  const lostUpdates: string[] = [];
  const lostDeletes: string[] = [];
  const stuckFinalizers: string[] = [];
  for (const o of inputs.objects) {
    const creates = callsOf(o.uid, "create");
    bump(calls.create, creates.length);
    const final = finalByName.get(o.name);
    if (o.deleted) {
      const deletes = callsOf(o.uid, "delete");
      bump(calls.delete, deletes.length);
      if (creates.length > 0 && deletes.length === 0) lostDeletes.push(o.name);
      if (final) {
        const holds = (final.metadata.finalizers ?? []).includes(FINALIZER);
        stuckFinalizers.push(holds ? o.name : `${o.name} (not gone, no finalizer of ours)`);
      }
      continue;
    }
    if (creates.length === 0) missedCreates.push(o.name);
    const seen = [...creates, ...callsOf(o.uid, "update")].some((c) => c.v === o.v);
    const stored = final ? diffBaseVersion(final) : undefined;
    if (!seen || stored !== o.v) {
      lostUpdates.push(
        `${o.name} (v${o.v}: ${seen ? "handled" : "no handler saw it"}, diff-base ${
          stored === undefined ? "absent" : `v${stored}`
        })`,
      );
    }
  }
  for (const [key, list] of keyed) {
    if (key.includes(" update ")) bump(calls.update, list.length);
  }

  const burst = inputs.objects.filter((o) => o.group !== "warmup" && o.group !== "probe");
  const handledAt = burst
    .map((o) => (o.uid ? inputs.timelines.get(o.uid)?.diffBaseAt : undefined))
    .filter((at): at is number => at !== undefined);
  const last = Math.max(...handledAt);
  const objectsPerSecond = handledAt.length > 0 && last > inputs.burstStartedAt
    ? handledAt.length / ((last - inputs.burstStartedAt) / 1000)
    : null;

  const lastRun = inputs.runs.at(-1);
  return {
    scenario: inputs.scenario,
    objects: inputs.objects.length,
    kills: inputs.runs.filter((r) => r.killedAt !== undefined).length,
    unexpectedExits: inputs.runs.filter((r) => r.unexpected).length,
    finalExitCode: lastRun?.stoppedAt !== undefined && lastRun.status?.signal === null
      ? lastRun.status.code
      : null,
    calls,
    otherCalls,
    unknownCalls,
    repeats,
    missedCreates,
    lostUpdates,
    lostDeletes,
    stuckFinalizers,
    tornJournalLines: inputs.tornLines,
    recoveries: inputs.recoveries,
    objectsPerSecond,
    startupSeconds: inputs.startupSeconds,
    figures: inputs.figures ?? {},
    logDir: inputs.logDir,
  };
}

/**
 * Asserts that a scenario shows 0 of everything bad and recoveries within the bound; removes its
 * logs when it does, and names them when not.
 */
export async function assertClean(
  counts: ScenarioCounts,
  expect: { recoveryBoundSeconds?: number; kills?: boolean },
): Promise<void> {
  const problems = problemsOf(counts, expect);
  if (problems.length === 0) {
    await Deno.remove(counts.logDir, { recursive: true }).catch(() => {});
    return;
  }
  throw new AssertionError({
    message: `chaos ${counts.scenario}: ${problems.length} problems (logs and journal in ` +
      `${counts.logDir}):\n- ${problems.join("\n- ")}`,
  });
}

/** What a scenario must show: 0 of everything bad, recoveries within the bound. */
export function problemsOf(
  counts: ScenarioCounts,
  expect: { recoveryBoundSeconds?: number; kills?: boolean },
): string[] {
  const problems: string[] = [];
  const none = (what: string, list: string[]) => {
    if (list.length > 0) problems.push(`${what}: ${list.length} (${list.slice(0, 10).join("; ")})`);
  };
  if (counts.repeats.violations > 0) {
    problems.push(
      `repeated calls that no kill explains: ${counts.repeats.violations} (${
        counts.repeats.details.slice(0, 10).join("; ")
      })`,
    );
  }
  if (!expect.kills && counts.repeats.allowed > 0) {
    problems.push(`repeats without kills: ${counts.repeats.allowed}`);
  }
  none("missed creates", counts.missedCreates);
  none("lost updates", counts.lostUpdates);
  none("lost deletes", counts.lostDeletes);
  none("stuck finalizers", counts.stuckFinalizers);
  if (counts.otherCalls > 0) problems.push(`calls of unexpected causes: ${counts.otherCalls}`);
  if (counts.unknownCalls > 0) problems.push(`calls for unknown objects: ${counts.unknownCalls}`);
  if (counts.tornJournalLines > 0) problems.push(`torn journal lines: ${counts.tornJournalLines}`);
  if (counts.unexpectedExits > 0) problems.push(`operator exits: ${counts.unexpectedExits}`);
  if (counts.finalExitCode !== 0) {
    problems.push(`the last run's exit after SIGTERM: ${counts.finalExitCode ?? "none"}`);
  }
  if (expect.recoveryBoundSeconds !== undefined) {
    for (const r of counts.recoveries) {
      if (r.seconds === null || r.seconds > expect.recoveryBoundSeconds) {
        problems.push(
          `recovery after ${r.fault}: ${
            r.seconds ?? "never"
          } s (bound ${expect.recoveryBoundSeconds} s)`,
        );
      }
    }
  }
  return problems;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function histogramCells(h: Histogram): string {
  return ["0", "1", "2", "3+"].map((bin) => String(h[bin] ?? 0).padStart(5)).join("");
}

/** The counts as a table, for the test output. */
export function formatCounts(c: ScenarioCounts): string {
  const lines = [
    `── chaos: ${c.scenario} — ${c.objects} objects, ${c.kills} SIGKILLs, ${c.unexpectedExits} ` +
    `unexpected exits, last exit ${c.finalExitCode ?? "none"}`,
    `calls per object          ×0   ×1   ×2  ×3+`,
    `  create               ${histogramCells(c.calls.create)}`,
    `  update (per version) ${histogramCells(c.calls.update)}`,
    `  delete               ${histogramCells(c.calls.delete)}`,
    `repeats: ${c.repeats.allowed} allowed (killed before the outcome was stored), ` +
    `${c.repeats.violations} violations; other causes ${c.otherCalls}, unknown objects ` +
    `${c.unknownCalls}, torn journal lines ${c.tornJournalLines}`,
    `missed creates ${c.missedCreates.length} · lost updates ${c.lostUpdates.length} · ` +
    `lost deletes ${c.lostDeletes.length} · stuck finalizers ${c.stuckFinalizers.length}`,
  ];
  const byFault = new Map<string, Recovery[]>();
  for (const r of c.recoveries) {
    if (!byFault.has(r.fault)) byFault.set(r.fault, []);
    byFault.get(r.fault)!.push(r);
  }
  for (const [fault, list] of byFault) {
    const done = list.map((r) => r.seconds).filter((s): s is number => s !== null).sort((a, b) =>
      a - b
    );
    const never = list.length - done.length;
    const api = list.map((r) => r.apiSeconds).sort((a, b) => a - b);
    lines.push(
      `recovery after ${fault} ×${list.length}: ` +
        (done.length
          ? `p50 ${percentile(done, 0.5).toFixed(1)} s, max ${done.at(-1)!.toFixed(1)} s`
          : "") +
        (never ? `, never ${never}` : "") +
        ` (the API took the probe after p50 ${percentile(api, 0.5).toFixed(1)} s, max ${
          api.at(-1)!.toFixed(1)
        } s)`,
    );
  }
  lines.push(
    `objects/s ${c.objectsPerSecond?.toFixed(1) ?? "-"} · operator start → first object handled ${
      c.startupSeconds?.toFixed(1) ?? "-"
    } s`,
  );
  for (const [name, value] of Object.entries(c.figures)) {
    lines.push(`${name}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  }
  for (
    const detail of [
      ...c.repeats.details.map((d) => `violation: ${d}`),
      ...c.missedCreates.map((d) => `missed create: ${d}`),
      ...c.lostUpdates.map((d) => `lost update: ${d}`),
      ...c.lostDeletes.map((d) => `lost delete: ${d}`),
      ...c.stuckFinalizers.map((d) => `stuck finalizer: ${d}`),
    ].slice(0, 30)
  ) lines.push(`  ${detail}`);
  return lines.join("\n");
}

/**
 * Merges a scenario's counts into the JSON file named by `KOPF_CHAOS_REPORT`, if set: one object
 * keyed by scenario name, so every test file of a run adds to the same report.
 */
export async function writeSummary(scenario: string, counts: unknown): Promise<void> {
  const path = Deno.env.get("KOPF_CHAOS_REPORT");
  if (!path) return;
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(await Deno.readTextFile(path));
  } catch { /* a new report */ }
  all[scenario] = counts;
  await Deno.writeTextFile(path, JSON.stringify(all, null, 2) + "\n");
}
