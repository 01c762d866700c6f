/**
 * One chaos scenario from start to counts: a private namespace, the suite's observer, the
 * operator through the real CLI, a warm-up object, then a burst of creations followed by updates
 * and deletions while the scenario's fault runs; then the settle time, a graceful stop and the
 * counts (`_counts.ts`), printed and merged into the JSON summary.
 *
 * Objects by index, of every ten: 4 `keep` (updated twice, kept), 2 `update-delete`, 3 `delete`,
 * 1 `quick-delete` (deleted as soon as it is created, so mostly while its first handler runs).
 * Each injected fault gets a `probe` object created right after it: the time from the fault to
 * the probe's creation outcome stored is the recovery time.
 *
 * @module
 */
import type { PrivateCluster, RequestCounts } from "../support/cluster.ts";
import { sleep, waitFor } from "../support/wait.ts";
import {
  countScenario,
  formatCounts,
  type Group,
  type PlannedObject,
  type Recovery,
  type ScenarioCounts,
  writeSummary,
} from "./_counts.ts";
import { journalSize, readJournal } from "./_journal.ts";
import { inParallel, LoadDriver } from "./_load.ts";
import { diffBaseVersion, ObjectObserver } from "./_observer.ts";
import { OperatorSupervisor } from "./_supervisor.ts";

/** The size of the scenarios: `KOPF_CHAOS_SCALE=ci` (default) or `large` (`deno task chaos`). */
export interface ChaosSize {
  /** Objects in each burst. */
  objects: number;
  /** How long repeated faults (kills, cuts) go on, in seconds. */
  stormSeconds: number;
  /** The longest a handler call takes, in milliseconds (spread over the objects). */
  handlerMs: number;
  /** The longest wait for everything to be handled once the faults are over, in seconds. */
  settleSeconds: number;
}

/** The size asked for by `KOPF_CHAOS_SCALE`. */
export function chaosSize(): ChaosSize {
  const scale = Deno.env.get("KOPF_CHAOS_SCALE") ?? "ci";
  if (scale === "ci") return { objects: 40, stormSeconds: 30, handlerMs: 1500, settleSeconds: 60 };
  if (scale === "large") {
    return { objects: 300, stormSeconds: 120, handlerMs: 1500, settleSeconds: 180 };
  }
  throw new Error(`KOPF_CHAOS_SCALE must be "ci" or "large", not "${scale}"`);
}

/** What a scenario's fault function gets. */
export interface FaultContext {
  plane: PrivateCluster;
  operator: OperatorSupervisor;
  /** When the burst began. */
  startedAt: number;
  /** Whether the load (burst, updates, deletes) is done. */
  readonly loaded: boolean;
  /** Records a fault injected now; a probe object created right after times the recovery. */
  injected(fault: string): void;
}

/** A scenario. */
export interface BurstScenario {
  /** Its name in the table and the JSON summary. */
  name: string;
  plane: PrivateCluster;
  /** The operator's handler file (absolute path). */
  fixture: string;
  size: ChaosSize;
  /** Seconds between the load phases (burst, updates, deletes, more updates). */
  phaseSeconds: number;
  /** The operator's kubeconfig (default: the plane's). */
  kubeconfig?: string;
  /** Restart the operator when it exits (the kill storm restarts it itself). */
  restartOnExit?: boolean;
  /** Count the operator's writes from the API server's metrics (not across its restarts). */
  metrics?: boolean;
  /** The fault; runs from the start of the burst, alongside the load. */
  fault(ctx: FaultContext): Promise<void>;
  /** More figures, once everything settled. */
  figures?(objects: PlannedObject[]): Record<string, unknown>;
}

function groupOf(index: number): Group {
  const slot = index % 10;
  return slot < 4 ? "keep" : slot < 6 ? "update-delete" : slot < 9 ? "delete" : "quick-delete";
}

/** Runs a scenario and returns its counts (already printed and written to the summary). */
export async function runBurst(s: BurstScenario): Promise<ScenarioCounts> {
  const plane = s.plane;
  const namespace = await plane.namespace(`chaos-${s.name}`);
  const collection = `/apis/kopf.dev/v1/namespaces/${namespace}/kopfexamples`;
  const dir = await Deno.makeTempDir({ prefix: `kopf-chaos-${s.name}-` });
  const journal = `${dir}/journal.jsonl`;
  const driver = new LoadDriver(plane, collection);
  const observer = await ObjectObserver.start(plane, collection);
  const operator = new OperatorSupervisor({
    fixture: s.fixture,
    namespace,
    kubeconfig: s.kubeconfig ?? plane.kubeconfig,
    journal,
    logDir: dir,
    restartOnExit: s.restartOnExit,
  });
  const objects: PlannedObject[] = [];
  // Handler times spread over [0, handlerMs) by index, so that a kill or a fault finds calls at
  // every stage; the quick-deletes' first handler takes the longest, so that the deletion comes
  // while it runs; warm-up and probes are handled at once, so they time the operator only.
  const spec = (group: Group, index: number) => ({
    v: 1,
    ms: group === "warmup" || group === "probe"
      ? 0
      : group === "quick-delete"
      ? s.size.handlerMs
      : (index * 7919) % s.size.handlerMs,
  });
  const create = async (name: string, group: Group, index = 0): Promise<PlannedObject> => {
    const planned: PlannedObject = { name, group, v: 1, deleted: false };
    objects.push(planned);
    planned.uid = (await driver.create(name, spec(group, index))).metadata.uid;
    return planned;
  };

  let metricsBefore: RequestCounts | undefined;
  try {
    if (s.metrics) metricsBefore = await plane.metrics();
    operator.start();
    const warmup = await create("warmup", "warmup");
    // Seconds from the operator's start to the warm-up handled; null if it exited or never did.
    const startupSeconds = await waitFor(() => {
      const at = observer.timelines.get(warmup.uid!)?.diffBaseAt;
      if (at !== undefined) return { seconds: (at - operator.current.startedAt) / 1000 };
      if (!operator.running) return { seconds: null };
    }, { timeout: 120, message: "the warm-up object to be handled" })
      .then((r) => r.seconds, () => null);

    const startedAt = Date.now();
    const recoveries: {
      fault: string;
      at: number;
      probe: Promise<{ planned: PlannedObject; acceptedAt: number }>;
    }[] = [];
    let loaded = false;
    const ctx: FaultContext = {
      plane,
      operator,
      startedAt,
      get loaded() {
        return loaded;
      },
      injected(fault) {
        const at = Date.now();
        const probe = create(`probe-${recoveries.length + 1}`, "probe")
          .then((planned) => ({ planned, acceptedAt: Date.now() }));
        recoveries.push({ fault, at, probe });
      },
    };
    const load = async () => {
      const burst = Array.from({ length: s.size.objects }, (_, i) => i);
      const planned: PlannedObject[] = [];
      await inParallel(burst, 8, async (i) => {
        const o = await create(`obj-${String(i).padStart(4, "0")}`, groupOf(i), i);
        planned.push(o);
        if (o.group === "quick-delete") {
          await driver.delete(o.name);
          o.deleted = true;
        }
      });
      const phase = async (groups: Group[], act: (o: PlannedObject) => Promise<void>) => {
        await sleep(s.phaseSeconds * 1000);
        await inParallel(planned.filter((o) => groups.includes(o.group)), 8, act);
      };
      const update = (v: number) => async (o: PlannedObject) => {
        await driver.update(o.name, v);
        o.v = v;
      };
      await phase(["keep", "update-delete"], update(2));
      await phase(["update-delete", "delete"], async (o) => {
        await driver.delete(o.name);
        o.deleted = true;
      });
      await phase(["keep"], update(3));
      loaded = true;
    };
    const outcomes = await Promise.allSettled([load(), s.fault(ctx)]);
    loaded = true;
    for (const outcome of outcomes) if (outcome.status === "rejected") throw outcome.reason;
    const probes = await Promise.all(recoveries.map((r) => r.probe));

    // Settle: every kept object handled at its last version, every deleted object gone.
    const deadline = Date.now() + s.size.settleSeconds * 1000;
    while (Date.now() < deadline) {
      const items = await driver.list();
      const present = new Map(items.map((o) => [o.metadata.name, o]));
      const settled = objects.every((o) =>
        o.deleted ? !present.has(o.name) : diffBaseVersion(present.get(o.name) ?? {}) === o.v
      );
      if (settled) break;
      await sleep(500);
    }
    // Quiet: late calls (a repeat after the outcome) would show up within a few seconds.
    let size = await journalSize(journal);
    for (let quiet = 0, waited = 0; quiet < 3000 && waited < 20_000; waited += 500) {
      await sleep(500);
      const now = await journalSize(journal);
      quiet = now === size ? quiet + 500 : 0;
      size = now;
    }
    await operator.stop();
    const final = await driver.list();
    const figures: Record<string, unknown> = {};
    if (metricsBefore) {
      const writes = (await plane.metrics()).since(metricsBefore);
      const patches = writes.count({ verb: "PATCH", resource: "kopfexamples" });
      figures["operator writes (PATCH, API server metrics)"] = `${patches} for ${objects.length} ` +
        `objects: ${(patches / objects.length).toFixed(2)} per object`;
    }
    Object.assign(figures, s.figures?.(objects));
    figures["suite writes"] = driver.writes;
    figures["observer re-lists / reconnects"] = `${observer.lists} / ${observer.reconnects}` +
      (observer.reconnectReasons.length ? ` (${observer.reconnectReasons.join("; ")})` : "");
    await observer.stop();
    const { calls, torn } = await readJournal(journal);
    const counts = countScenario({
      scenario: s.name,
      objects,
      calls,
      tornLines: torn,
      timelines: observer.timelines,
      runs: operator.runs,
      final,
      recoveries: recoveries.map((r, i): Recovery => {
        const handled = observer.timelines.get(probes[i].planned.uid!)?.diffBaseAt;
        const tenths = (ms: number) => Math.round(ms / 100) / 10;
        return {
          fault: r.fault,
          at: r.at,
          seconds: handled === undefined ? null : tenths(handled - r.at),
          apiSeconds: tenths(probes[i].acceptedAt - r.at),
        };
      }),
      burstStartedAt: startedAt,
      startupSeconds,
      figures,
      logDir: dir,
    });
    console.log(formatCounts(counts));
    await writeSummary(counts.scenario, counts);
    return counts;
  } finally {
    if (operator.runs.length > 0 && operator.running) await operator.stop(5);
    await observer.stop().catch(() => {});
    driver.close();
  }
}
