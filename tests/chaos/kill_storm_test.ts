/**
 * SIGKILL storm: a burst of objects is created, updated and deleted while the operator (the real
 * CLI, `kopf run`) is SIGKILLed every 1–4 s (at random) and restarted at once, on a private
 * control plane. Twice: with create/update/delete handlers only, and with a timer and a daemon on
 * the same resource (a delete handler's exactly-once must hold while background engines take
 * part in every cycle of the object).
 *
 * Counted: every handler call (the fixtures' journal), classified by the suite's own watch of
 * the objects; a repeated call is allowed only when the process of the earlier call was killed
 * before that call's outcome was stored. Asserted: no other repeat, no missed create, lost update
 * or lost delete, no stuck finalizer, every probe object (one created after each kill) handled
 * within 30 s of its kill.
 * The size: `KOPF_CHAOS_SCALE` (`_burst.ts`).
 */
import { sleep } from "../support/wait.ts";
import { chaosSize, type FaultContext, runBurst } from "./_burst.ts";
import { assertClean } from "./_counts.ts";
import { withChaosPlane } from "./_plane.ts";

const size = chaosSize();
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const KILL_RECOVERY = 30;

/**
 * Kills the operator every 1–4 s for the storm's length, restarting it at once; the first kill
 * comes 0.5–1.5 s into the burst, so that it lands among the first creation handlers.
 */
async function storm(ctx: FaultContext): Promise<void> {
  const until = ctx.startedAt + size.stormSeconds * 1000;
  for (let kill = 0; Date.now() + 1000 < until; kill++) {
    await sleep(kill === 0 ? 500 + Math.random() * 1000 : 1000 + Math.random() * 3000);
    await ctx.operator.kill();
    ctx.injected("SIGKILL");
    ctx.operator.start();
  }
}

Deno.test("chaos: SIGKILL storm during a burst with updates and deletes", async (t) => {
  await withChaosPlane("storm", async (plane) => {
    // A restarted operator handles its first object 0.3–2 s after it starts; a probe may wait
    // through the kills after its own (each 1–4 s later) and behind the backlog that every
    // restart re-lists: 30 s covers a run of such kills.
    await t.step("create, update and delete handlers", async () => {
      const counts = await runBurst({
        name: "kill-storm",
        plane,
        fixture: `${FIXTURES}chaos_operator.ts`,
        size,
        phaseSeconds: size.stormSeconds / 4,
        metrics: true,
        fault: storm,
      });
      await assertClean(counts, { kills: true, recoveryBoundSeconds: KILL_RECOVERY });
    });
    await t.step("the same with a timer and a daemon on the resource", async () => {
      const counts = await runBurst({
        name: "kill-storm-background",
        plane,
        fixture: `${FIXTURES}chaos_background_operator.ts`,
        size,
        phaseSeconds: size.stormSeconds / 4,
        metrics: true,
        fault: storm,
      });
      await assertClean(counts, { kills: true, recoveryBoundSeconds: KILL_RECOVERY });
    });
  });
});
