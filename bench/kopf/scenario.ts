/**
 * The benchmark scenario for one operator on a fresh namespace: start it with one warm-up object
 * waiting (start → first handled), then create N objects in a burst and wait until every one is
 * handled, update all and wait, delete all and wait until gone, stay idle, stop it. Every phase
 * records wall time, throughput, latency, the operator's API requests, and its memory and CPU.
 *
 * @module
 */
import type { OperatorProcess } from "../../tests/support/operator_process.ts";
import { type ApiEndpoint, DriverApi } from "./driver_api.ts";
import type { OperatorIdentity } from "./identity.ts";
import { type HandledCriteria, Observer } from "./observer.ts";
import { parseStat, type ProcSample, TreeSampler } from "./proc_stats.ts";
import { latencies, type LatencySummary, summarizeLatencies } from "./stats.ts";
import {
  type ClassCounts,
  countsSince,
  parseClassCounts,
  summarize,
  type TrafficSummary,
} from "./traffic.ts";

/** The benchmark's resource (bench/kopf/crd.yaml). */
export const RESOURCE = {
  group: "bench.kopf.dev",
  version: "v1",
  plural: "benchobjects",
  kind: "BenchObject",
} as const;

/** The control plane the scenario runs on. */
export interface Plane {
  /** The admin's endpoint, for the driver. */
  endpoint: ApiEndpoint;
  caFile: string;
  /** The identity every operator under test runs as (its requests are counted by it). */
  operator: OperatorIdentity;
  /** Pids of kube-apiserver and etcd, for their CPU per phase (when known). */
  apiserverPid?: number;
  etcdPid?: number;
}

/** What a target needs to start its operator. */
export interface StartContext {
  plane: Plane;
  namespace: string;
  /** The collection path of the benchmark objects in the namespace. */
  collectionPath: string;
  logFile: string;
}

/** One operator to measure. */
export interface Target {
  /** Column id: `kopf`, `kopf-best`, `ours`, `floor`. */
  id: string;
  /** Human label with the version, e.g. `Kopf 1.45.2`. */
  label: string;
  /** `single` (one handler per cause) or `three` (three create handlers). */
  variant: string;
  criteria: HandledCriteria;
  /** The command line, for the record. */
  command: string[];
  start(context: StartContext): OperatorProcess;
}

/** Scenario knobs. */
export interface ScenarioOptions {
  /** Objects per burst. */
  n: number;
  /** Idle window after the deletions, seconds (0 skips it). */
  idleSeconds: number;
  /** Driver requests in flight during a burst. */
  concurrency: number;
  /** A phase ends this long after the last watch event (so trailing writes land in it), seconds. */
  settleSeconds: number;
  /** Give up on a phase after this long, seconds. */
  phaseTimeoutSeconds: number;
  /** Sampling interval of the operator's memory, milliseconds. */
  sampleMs: number;
}

/** The figures of one phase. */
export interface PhaseResult {
  phase: "startup" | "create" | "update" | "delete" | "idle" | "shutdown";
  expected: number;
  handled: number;
  complete: boolean;
  /** Epoch milliseconds: the first request of the phase was sent. */
  startedAt: number;
  /** Epoch milliseconds of the last object handled (`null` if none). */
  lastHandledAt: number | null;
  /** Epoch milliseconds when the phase's measurement closed (after settling). */
  endedAt: number;
  /** From the first request to the last object handled. */
  wallSeconds: number | null;
  /** Handled objects per second over `wallSeconds`. */
  perSecond: number | null;
  /** From the driver's call returning to the observer seeing the result. */
  latencyMs: LatencySummary | null;
  /** The operator's requests by class (see traffic.ts; watches count when opened). */
  requests: ClassCounts;
  traffic: TrafficSummary;
  cpuSeconds: number | null;
  rssEndBytes: number | null;
  rssMaxBytes: number | null;
  apiserverCpuSeconds: number | null;
  etcdCpuSeconds: number | null;
  /** Milliseconds after `startedAt` at which each object was handled, ascending. */
  timeline: number[];
}

/** Everything measured for one target. */
export interface TargetResult {
  id: string;
  label: string;
  variant: string;
  command: string[];
  n: number;
  namespace: string;
  /** Operator spawn → the warm-up object's create result seen in its status. */
  startToFirstHandledSeconds: number | null;
  /**
   * The operator's CPU seconds from spawn to the warm-up object handled (its launcher included):
   * what starting costs, with one object's handling.
   */
  startupCpuSeconds: number | null;
  /** RSS once started and idle: after the warm-up object was handled, deleted, and settled. */
  startedRssBytes: number | null;
  /** The highest RSS of the operator's process tree over the run. */
  peakRssBytes: number | null;
  /** RSS at the end of the idle window (or of the last phase run). */
  steadyRssBytes: number | null;
  /** Operator CPU seconds over the whole run (spawn to stop). */
  cpuSeconds: number | null;
  phases: PhaseResult[];
  exitCode: number | null;
  /** What went wrong, if anything (the figures that were produced are kept). */
  error: string | null;
  logFile: string;
  observerErrors: string[];
  /** How often the benchmark's own watch had to resume (see Observer.reconnects). */
  observerReconnects: number;
  /** The operator's processes at the end of the run (a launcher and its child count apart). */
  processes: ProcSample["processes"];
  /** The machine's 1-minute load average when the target started and ended (contention). */
  loadAverage: { start: number | null; end: number | null };
}

async function loadAverage(): Promise<number | null> {
  try {
    return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pool<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}

async function cpuOf(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const s = parseStat(await Deno.readTextFile(`/proc/${pid}/stat`));
    return (s.utime + s.stime) / 100;
  } catch {
    return null;
  }
}

interface Boundary {
  at: number;
  counts: ClassCounts;
  proc: ProcSample | undefined;
  apiserverCpu: number | null;
  etcdCpu: number | null;
}

class OperatorExited extends Error {}

/** Runs the whole scenario against one target. Never throws for the operator's failures. */
export async function runScenario(
  plane: Plane,
  target: Target,
  options: ScenarioOptions,
  logFile: string,
  log: (line: string) => void = () => {},
): Promise<TargetResult> {
  const api = new DriverApi(plane.endpoint);
  const namespace = `bench-${target.id}-${target.variant}-${crypto.randomUUID().slice(0, 6)}`;
  await api.request("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
  const collection =
    `/apis/${RESOURCE.group}/${RESOURCE.version}/namespaces/${namespace}/${RESOURCE.plural}`;
  const observer = new Observer(api, collection, target.criteria);
  const result: TargetResult = {
    id: target.id,
    label: target.label,
    variant: target.variant,
    command: target.command,
    n: options.n,
    namespace,
    startToFirstHandledSeconds: null,
    startupCpuSeconds: null,
    startedRssBytes: null,
    peakRssBytes: null,
    steadyRssBytes: null,
    cpuSeconds: null,
    phases: [],
    exitCode: null,
    error: null,
    logFile,
    observerErrors: observer.errors,
    observerReconnects: 0,
    loadAverage: { start: await loadAverage(), end: null },
    processes: [],
  };
  const names = Array.from({ length: options.n }, (_, i) => `obj-${String(i).padStart(5, "0")}`);
  const body = (name: string) => ({
    apiVersion: `${RESOURCE.group}/${RESOURCE.version}`,
    kind: RESOURCE.kind,
    metadata: { name },
    spec: { field: "v1" },
  });

  let operator: OperatorProcess | undefined;
  let sampler: TreeSampler | undefined;
  let exited = false;

  const boundary = async (): Promise<Boundary> => {
    const [metrics, proc, apiserverCpu, etcdCpu] = await Promise.all([
      api.metrics(),
      sampler?.sampleNow(),
      cpuOf(plane.apiserverPid),
      cpuOf(plane.etcdPid),
    ]);
    return { at: Date.now(), counts: parseClassCounts(metrics), proc, apiserverCpu, etcdCpu };
  };

  const waitUntil = async (what: string, done: () => boolean, timeoutSeconds: number) => {
    const deadline = Date.now() + timeoutSeconds * 1000;
    while (!done()) {
      if (exited) throw new OperatorExited(`the operator exited while waiting for ${what}`);
      if (Date.now() > deadline) return false;
      await sleep(20);
    }
    return true;
  };

  const settle = async () => {
    const deadline = Date.now() + 30_000;
    while (Date.now() - observer.lastEventAt < options.settleSeconds * 1000) {
      if (Date.now() > deadline || exited) break;
      await sleep(100);
    }
  };

  const close = (
    phase: PhaseResult["phase"],
    before: Boundary,
    after: Boundary,
    fields: {
      expected: number;
      startedAt: number;
      handledAt: number[];
      latencyMs: number[];
      complete: boolean;
    },
  ): PhaseResult => {
    const handledAt = [...fields.handledAt].sort((a, b) => a - b);
    const last = handledAt.at(-1) ?? null;
    const wall = fields.complete && last !== null ? (last - fields.startedAt) / 1000 : null;
    const requests = countsSince(before.counts, after.counts);
    const phaseSamples =
      sampler?.samples.filter((s) => s.at >= fields.startedAt && s.at <= after.at) ?? [];
    const diff = (a: number | null | undefined, b: number | null | undefined) =>
      a == null || b == null ? null : Math.round((b - a) * 100) / 100;
    const phaseResult: PhaseResult = {
      phase,
      expected: fields.expected,
      handled: handledAt.length,
      complete: fields.complete,
      startedAt: fields.startedAt,
      lastHandledAt: last,
      endedAt: after.at,
      wallSeconds: wall,
      perSecond: wall && wall > 0 ? handledAt.length / wall : null,
      latencyMs: summarizeLatencies(fields.latencyMs),
      requests,
      traffic: summarize(requests),
      cpuSeconds: diff(before.proc?.cpuSeconds, after.proc?.cpuSeconds),
      rssEndBytes: after.proc?.rssBytes ?? null,
      rssMaxBytes: phaseSamples.length ? Math.max(...phaseSamples.map((s) => s.rssBytes)) : null,
      apiserverCpuSeconds: diff(before.apiserverCpu, after.apiserverCpu),
      etcdCpuSeconds: diff(before.etcdCpu, after.etcdCpu),
      timeline: handledAt.map((t) => t - fields.startedAt),
    };
    result.phases.push(phaseResult);
    return phaseResult;
  };

  /** One burst phase: fire `call` for every object, wait until `handled` has them all. */
  const burst = async (
    phase: "create" | "update" | "delete",
    call: (name: string) => Promise<void>,
    handled: Map<string, number>,
  ): Promise<boolean> => {
    const before = await boundary();
    const returned = new Map<string, number>();
    const startedAt = Date.now();
    await pool(names, options.concurrency, async (name) => {
      await call(name);
      returned.set(name, Date.now());
    });
    const complete = await waitUntil(
      `${phase} of ${options.n} objects`,
      () => names.every((name) => handled.has(name)),
      options.phaseTimeoutSeconds,
    ).catch((error) => {
      result.error ??= String(error);
      return false;
    });
    await settle();
    const after = await boundary();
    const handledAt = names.flatMap((name) => handled.has(name) ? [handled.get(name)!] : []);
    log(`  ${phase}: ${handledAt.length}/${options.n} handled`);
    close(phase, before, after, {
      expected: options.n,
      startedAt,
      handledAt,
      latencyMs: latencies(returned, handled),
      complete,
    });
    if (!complete) result.error ??= `${phase}: only ${handledAt.length} of ${options.n} handled`;
    return complete;
  };

  try {
    await observer.start();
    // Startup: one object waits before the operator starts; its create result marks the first
    // handler run. It is deleted and gone before the bursts, so they start on an empty namespace.
    await api.request("POST", collection, body("warmup"));
    const s0 = await boundary();
    operator = target.start({ plane, namespace, collectionPath: collection, logFile });
    operator.status.then((status) => {
      exited = true;
      result.exitCode = status.code;
    });
    sampler = new TreeSampler(operator.pid, options.sampleMs);
    sampler.start();
    const startedAt = operator.startedAt;
    const warmed = await waitUntil(
      "the warm-up object",
      () => observer.createdAt.has("warmup"),
      options.phaseTimeoutSeconds,
    );
    if (warmed) {
      result.startToFirstHandledSeconds = (observer.createdAt.get("warmup")! - startedAt) / 1000;
      result.startupCpuSeconds = (await sampler.sampleNow())?.cpuSeconds ?? null;
      await api.request("DELETE", `${collection}/warmup`);
      await waitUntil("the warm-up object to go", () => observer.goneAt.has("warmup"), 60);
    }
    await settle();
    const s1 = await boundary();
    result.startedRssBytes = s1.proc?.rssBytes ?? null;
    close("startup", s0, s1, {
      expected: 1,
      startedAt,
      handledAt: warmed ? [observer.createdAt.get("warmup")!] : [],
      latencyMs: [],
      complete: warmed,
    });
    if (!warmed) throw new Error("the operator never handled the warm-up object");

    const created = await burst("create", async (name) => {
      await api.request("POST", collection, body(name));
    }, observer.createdAt);
    if (created) {
      observer.updateValue = "v2";
      const updated = await burst("update", async (name) => {
        await api.request(
          "PATCH",
          `${collection}/${name}`,
          { spec: { field: "v2" } },
          "application/merge-patch+json",
        );
      }, observer.updatedAt);
      if (updated) {
        const deleted = await burst("delete", async (name) => {
          await api.request("DELETE", `${collection}/${name}`);
        }, observer.goneAt);
        if (deleted && options.idleSeconds > 0) {
          const before = await boundary();
          const idleStart = Date.now();
          await sleep(options.idleSeconds * 1000);
          if (exited) throw new OperatorExited("the operator exited while idle");
          close("idle", before, await boundary(), {
            expected: 0,
            startedAt: idleStart,
            handledAt: [],
            latencyMs: [],
            complete: true,
          });
        }
      }
    }
  } catch (error) {
    result.error ??= error instanceof Error ? error.message : String(error);
  } finally {
    const last = sampler ? await sampler.sampleNow() : undefined;
    result.steadyRssBytes = last?.rssBytes ?? sampler?.samples.at(-1)?.rssBytes ?? null;
    result.processes = (last ?? sampler?.samples.at(-1))?.processes ?? [];
    result.cpuSeconds = (last ?? sampler?.samples.at(-1))?.cpuSeconds ?? null;
    if (operator) {
      const beforeStop = await boundary().catch(() => undefined);
      const stopAt = Date.now();
      log("  stopping the operator");
      const status = await operator.stop();
      result.exitCode = status.code;
      sampler?.stop();
      result.peakRssBytes = sampler?.peakRssBytes() ?? null;
      await observer.stop();
      result.observerReconnects = observer.reconnects;
      // The apiserver counts a watch when it closes; give the closing ones a moment to land.
      await sleep(1000);
      if (beforeStop) {
        close("shutdown", beforeStop, await boundary(), {
          expected: 0,
          startedAt: stopAt,
          handledAt: [],
          latencyMs: [],
          complete: true,
        });
      }
    } else {
      await observer.stop();
    }
    result.loadAverage.end = await loadAverage();
    log(`  deleting namespace ${namespace}`);
    await cleanup(api, collection, namespace).catch((error) => {
      result.error ??= `cleanup: ${error}`;
    });
    api.close();
  }
  return result;
}

/**
 * Frees leftover objects (an operator that failed may have left finalizers), deletes the
 * namespace and waits until it is gone, so that the namespace controller's work does not land in
 * the next target's measurements.
 */
async function cleanup(api: DriverApi, collection: string, namespace: string): Promise<void> {
  const list = await api.request("GET", collection);
  await pool(list.items ?? [], 16, async (item: { metadata: { name: string } }) => {
    await api.request(
      "PATCH",
      `${collection}/${item.metadata.name}`,
      { metadata: { finalizers: null } },
      "application/merge-patch+json",
    ).catch(() => {});
  });
  await api.request("DELETE", `/api/v1/namespaces/${namespace}`);
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const response = await api.fetch("GET", `/api/v1/namespaces/${namespace}`);
    await response.body?.cancel();
    if (response.status === 404) return;
    await sleep(500);
  }
  throw new Error(`namespace ${namespace} still exists 180 s after its deletion`);
}
