/**
 * Connection faults between the operator and the API server, from the repository's fault proxy
 * (`tests/support/fault_proxy.ts`, in front of the real API server of a private plane: the real
 * server does not cut streams on demand): every 1.5–2.5 s during a burst, every open watch stream is
 * cut, in turn by a connection reset, a clean end of the stream, and an ERROR 410 Gone event.
 * The operator (the real CLI) talks only to the proxy; the suite's own watch and writes go
 * straight to the API server.
 *
 * And a frozen connection, from the repository's TCP relay (`tests/support/tcp_relay.ts`: the real
 * server never stops answering on an open connection without closing it): once, in the middle of a
 * burst, every open connection of the operator stops relaying bytes in both directions, without a
 * FIN or an RST, and stays so; new connections go through. The operator must find its connection
 * dead and move every request and watch to a new one within 45 s (30 s of silence, then a probe
 * that gets no answer in 15 s, as client-go's HTTP/2 health check), plus 15 s for a handling cycle.
 *
 * Counted as in every chaos scenario (`_counts.ts`), plus the operator's writes per object as the
 * proxy saw them, per group: a create → delete lifecycle with one create and one delete handler
 * is 3 writes (docs/engine.md). Recovery (a cut → a probe created right after it is handled) is
 * bounded by the watch reconnect backoff's cap (30 s, client-go's; cuts in a row add up) plus 15 s
 * for a re-list and a handling cycle on a loaded 2-core machine.
 */
import { FaultProxy } from "../support/fault_proxy.ts";
import { TcpRelay } from "../support/tcp_relay.ts";
import { sleep } from "../support/wait.ts";
import { chaosSize, runBurst } from "./_burst.ts";
import { assertClean, type PlannedObject } from "./_counts.ts";
import { withChaosPlane } from "./_plane.ts";

const size = chaosSize();
const FIXTURE = new URL("./fixtures/chaos_operator.ts", import.meta.url).pathname;
const MODES = ["reset", "close", "gone"] as const;

/** The operator's writes per object, by group, from the proxy's record: a histogram each. */
function writesByGroup(proxy: FaultProxy, objects: PlannedObject[]): Record<string, unknown> {
  const perName = new Map<string, number>();
  for (const r of proxy.requests) {
    const m = r.path.match(/\/kopfexamples\/([^/]+)(\/status)?$/);
    if (!m || !["PATCH", "PUT", "POST", "DELETE"].includes(r.method)) continue;
    perName.set(m[1], (perName.get(m[1]) ?? 0) + 1);
  }
  const groups: Record<string, Record<string, number>> = {};
  for (const o of objects) {
    const n = perName.get(o.name) ?? 0;
    groups[o.group] ??= {};
    groups[o.group][`${n} writes`] = (groups[o.group][`${n} writes`] ?? 0) + 1;
  }
  const watches = proxy.seen({ watch: true }).length;
  const lists = proxy.seen({ method: "GET", watch: false, path: /\/kopfexamples$/ }).length;
  return {
    "operator writes per object by group (proxy)": groups,
    "operator watch requests / lists of the resource (proxy)": `${watches} / ${lists}`,
  };
}

Deno.test("chaos: connection faults during a burst", async (t) => {
  await withChaosPlane("conn", async (plane) => {
    await t.step("watch streams cut repeatedly", async () => {
      const proxy = await FaultProxy.start(plane);
      try {
        const counts = await runBurst({
          name: "watch-cuts",
          plane,
          fixture: FIXTURE,
          size,
          phaseSeconds: 3,
          kubeconfig: proxy.kubeconfig,
          async fault(ctx) {
            for (let i = 0; !ctx.loaded; i++) {
              await sleep(1500 + Math.random() * 1000);
              const mode = MODES[i % MODES.length];
              if (proxy.cutOpenWatches(mode) > 0) ctx.injected(`watch cut (${mode})`);
            }
          },
          figures: (objects) => writesByGroup(proxy, objects),
        });
        await assertClean(counts, { recoveryBoundSeconds: 30 + 15 });
      } finally {
        await proxy.close();
      }
    });
    await t.step("the connection frozen (no FIN, no RST)", async () => {
      const relay = await TcpRelay.start(plane);
      try {
        const counts = await runBurst({
          name: "connection-freeze",
          plane,
          fixture: FIXTURE,
          size,
          phaseSeconds: 3,
          kubeconfig: relay.kubeconfig,
          async fault(ctx) {
            await sleep(2000);
            if (relay.freeze() > 0) ctx.injected("connection freeze");
          },
          figures: () => ({ "relay connections / freezes": JSON.stringify(relay.stats) }),
        });
        await assertClean(counts, { recoveryBoundSeconds: 45 + 15 });
      } finally {
        await relay.close();
      }
    });
  });
});
