/**
 * Control-plane faults in the middle of a burst, on a private control plane: the API server is
 * restarted (etcd keeps the data), and etcd is stopped for 10 s (the API server stays up and fails
 * its requests). The operator (the real CLI) has a timer and a daemon on the resource besides its
 * create/update/delete handlers, since those keep running through the outage; it is never
 * restarted, so every handler call must happen exactly once.
 *
 * Counted as in every chaos scenario (`_counts.ts`); recovery is the time from the fault's start
 * to the creation outcome of a probe object created right after it (the probe's own creation
 * waits for the API to accept it). The bound: the outage itself (the restart takes ~3 s here,
 * the etcd stop 10 s; the fault counts from the moment the component is down), plus the watch reconnect backoff's cap (30 s, client-go's), plus 15 s for
 * the re-list and one handling cycle on a loaded 2-core machine.
 */
import { sleep } from "../support/wait.ts";
import { chaosSize, runBurst } from "./_burst.ts";
import { assertClean } from "./_counts.ts";
import { withChaosPlane } from "./_plane.ts";

const size = chaosSize();
const FIXTURE = new URL("./fixtures/chaos_background_operator.ts", import.meta.url).pathname;
const RECONNECT_CAP = 30;
const MARGIN = 15;

Deno.test("chaos: control-plane outages in the middle of a burst", async (t) => {
  await withChaosPlane("plane", async (plane) => {
    await t.step("kube-apiserver restarted", async () => {
      let outage = 0;
      const counts = await runBurst({
        name: "apiserver-restart",
        plane,
        fixture: FIXTURE,
        size,
        phaseSeconds: 3,
        async fault(ctx) {
          await sleep(1000); // the burst's first handlers are running
          const t0 = Date.now();
          await plane.stopApiserver();
          ctx.injected("kube-apiserver restart");
          await plane.startApiserver();
          outage = (Date.now() - t0) / 1000;
        },
      });
      await assertClean(counts, {
        recoveryBoundSeconds: Math.ceil(outage) + RECONNECT_CAP + MARGIN,
      });
    });
    await t.step("etcd stopped for 10 s", async () => {
      const counts = await runBurst({
        name: "etcd-stop",
        plane,
        fixture: FIXTURE,
        size,
        phaseSeconds: 3,
        metrics: true,
        async fault(ctx) {
          await sleep(1000);
          await plane.stopEtcd();
          ctx.injected("etcd stop (10 s)");
          await sleep(10_000);
          await plane.startEtcd();
        },
      });
      await assertClean(counts, { recoveryBoundSeconds: 10 + RECONNECT_CAP + MARGIN });
    });
  });
});
