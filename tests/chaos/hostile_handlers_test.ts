/**
 * Hostile handlers: one object's create handler does something that, unguarded, takes down the
 * whole process — a rejected promise nobody awaits, an exception thrown inside a `setTimeout`
 * callback, `Deno.exit(3)`, a `Worker` with the unstable `deno.permissions` option — while canary
 * objects beside it have a plain handler (two created with it, one a second after its handler
 * ran). The operator runs through the real CLI on a private control plane, once per act.
 *
 * The goal, asserted: the operator keeps running (no exit until the suite's SIGTERM, then exit
 * 0), every canary is handled exactly once, and the act is reported by exactly one ERROR log line
 * naming the hostile handler and its object.
 */
import assert from "node:assert/strict";
import type { PrivateCluster } from "../support/cluster.ts";
import { sleep, waitFor } from "../support/wait.ts";
import { writeSummary } from "./_counts.ts";
import { readJournal } from "./_journal.ts";
import { LoadDriver } from "./_load.ts";
import { ObjectObserver } from "./_observer.ts";
import { withChaosPlane } from "./_plane.ts";
import { OperatorSupervisor } from "./_supervisor.ts";

const FIXTURE = new URL("./fixtures/hostile_operator.ts", import.meta.url).pathname;

/** The acts: `spec.hostile` and the handler that does it. */
const ACTS = [
  { act: "unawaited-rejection", handler: "unawaited_rejection" },
  { act: "throw-in-timer", handler: "throw_in_timer" },
  { act: "deno-exit", handler: "deno_exit" },
  { act: "worker-permissions", handler: "worker_permissions" },
] as const;

/** What one act did to the operator. */
interface HostileCounts {
  scenario: string;
  /** The operator was still running when the suite stopped it. */
  survived: boolean;
  /** Operator runs that ended on their own, with their exit codes. */
  exits: (number | null)[];
  /** The exit code after the suite's SIGTERM (null: it had ended before). */
  finalExitCode: number | null;
  /** Calls of `canary_fn` per canary. */
  canaryCalls: Record<string, number>;
  /** Calls of the hostile handler. */
  hostileCalls: number;
  /** ERROR (or worse) log lines that name the hostile handler and its object. */
  errorLines: string[];
  /** Output lines that are not the operator's JSON log lines (e.g. Deno's own crash report). */
  rawLines: string[];
  /** The operator's logs and the journal (removed when the act passes). */
  logDir: string;
}

/** The operator's output lines at ERROR or above that name both `handler` and `name`. */
function errorLinesNaming(output: string, handler: string, name: string): string[] {
  return output.split("\n").filter((line) => {
    if (!line.startsWith("{")) return false;
    try {
      const record = JSON.parse(line);
      return ["error", "fatal", "critical"].includes(String(record.severity).toLowerCase()) &&
        line.includes(handler) && (record.object?.name === name || line.includes(name));
    } catch {
      return false;
    }
  });
}

async function runAct(
  plane: PrivateCluster,
  act: string,
  handler: string,
): Promise<HostileCounts> {
  const namespace = await plane.namespace(`chaos-hostile-${act}`);
  const collection = `/apis/kopf.dev/v1/namespaces/${namespace}/kopfexamples`;
  const dir = await Deno.makeTempDir({ prefix: `kopf-chaos-hostile-${act}-` });
  const journal = `${dir}/journal.jsonl`;
  const driver = new LoadDriver(plane, collection, 30);
  const observer = await ObjectObserver.start(plane, collection);
  const operator = new OperatorSupervisor({
    fixture: FIXTURE,
    namespace,
    kubeconfig: plane.kubeconfig,
    journal,
    logDir: dir,
  });
  const hostileName = `hostile-${act}`;
  const canaries = ["canary-1", "canary-2", "canary-3"];
  try {
    operator.start();
    await Promise.all([
      driver.create(hostileName, { hostile: act, v: 1 }),
      driver.create(canaries[0], { v: 1 }),
      driver.create(canaries[1], { v: 1 }),
    ]);
    // The third canary comes after the hostile act, to show the operator still handles new work.
    await waitFor(
      async () => (await readJournal(journal)).calls.some((c) => c.handler === handler),
      {
        timeout: 60,
        message: `${handler} to be called`,
      },
    );
    await sleep(1000);
    await driver.create(canaries[2], { v: 1 });
    await waitFor(() =>
      !operator.running ||
      canaries.every((name) => observer.byName(name)?.diffBaseAt !== undefined), {
      timeout: 30,
      message: "the canaries to be handled",
    }).catch(() => {});
    await sleep(2000); // late reports of the act (a timer's throw, a rejection) have come by now
    const survived = operator.running;
    const final = await operator.stop();
    const { calls } = await readJournal(journal);
    const output = operator.output();
    return {
      scenario: `hostile-${act}`,
      survived,
      exits: operator.runs.filter((r) => r.unexpected).map((r) => r.status?.code ?? null),
      finalExitCode: survived ? final.code : null,
      canaryCalls: Object.fromEntries(
        canaries.map((name) => [name, calls.filter((c) => c.name === name).length]),
      ),
      hostileCalls: calls.filter((c) => c.handler === handler).length,
      errorLines: errorLinesNaming(output, handler, hostileName),
      rawLines: output.split("\n").filter((line) => line.trim() && !line.startsWith("{")),
      logDir: dir,
    };
  } finally {
    if (operator.running) await operator.stop(5);
    await observer.stop();
    driver.close();
  }
}

function formatHostile(c: HostileCounts): string {
  return [
    `── chaos: ${c.scenario} — operator ${
      c.survived ? "kept running" : `exited on its own (codes ${c.exits.join(", ")})`
    }, exit after SIGTERM ${c.finalExitCode ?? "-"}`,
    `canary calls ${JSON.stringify(c.canaryCalls)} · hostile handler calls ${c.hostileCalls} · ` +
    `ERROR lines naming it ${c.errorLines.length} · other output lines ${c.rawLines.length}`,
    ...c.errorLines.map((line) => `  error: ${line.slice(0, 300)}`),
    ...c.rawLines.slice(0, 10).map((line) => `  output: ${line.slice(0, 300)}`),
  ].join("\n");
}

Deno.test("chaos: hostile handlers cost only their own object", async (t) => {
  await withChaosPlane("hostile", async (plane) => {
    for (const { act, handler } of ACTS) {
      await t.step(act, async () => {
        const counts = await runAct(plane, act, handler);
        console.log(formatHostile(counts));
        await writeSummary(counts.scenario, counts);
        // What the act did, against the goal (the logs stay for a look when they differ).
        assert.deepEqual(
          {
            survived: counts.survived,
            finalExitCode: counts.finalExitCode,
            canaryCalls: counts.canaryCalls,
            errorLines: counts.errorLines.length,
          },
          {
            survived: true,
            finalExitCode: 0,
            canaryCalls: { "canary-1": 1, "canary-2": 1, "canary-3": 1 },
            errorLines: 1,
          },
          `logs and journal in ${counts.logDir}`,
        );
        await Deno.remove(counts.logDir, { recursive: true });
      });
    }
  });
});
