// `stopped.reason` through a daemon's termination on the real API server, following Kopf's
// docs/daemons.rst, "Timeouts" (the three stages: `stopped` set, then — after
// `cancellation_backoff` — the forced cancellation): like Kopf's combined `DaemonStoppingReason`
// flags, the reason carries every stage the stop went through, not only the first.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import { createObject, getObject, startOperator, testResource } from "../support/engine.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "stopreasons");

Deno.test("a deleted object's daemon sees resource-deleted, then daemon-signalled and -cancelled", async () => {
  const ns = await c.namespace("stop-reasons");
  const registry = new kopf.Registry();
  const seen: string[] = [];
  // Exits 300 ms after the request: within its backoff, after the signal that follows the request.
  registry.daemon(res.plural, { id: "graceful", cancellationBackoff: 5 }, async ({ stopped }) => {
    seen.push("graceful:started");
    await stopped.wait();
    await sleep(300);
    seen.push(`graceful:${stopped.reason}`);
  });
  // Ignores the request: its backoff passes and it is cancelled (its signal aborts).
  registry.daemon(
    res.plural,
    { id: "stubborn", cancellationBackoff: 0.5, cancellationTimeout: 5 },
    async ({ stopped, signal }) => {
      seen.push("stubborn:started");
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      const reason = stopped.reason!;
      seen.push(`stubborn:${reason}`);
      seen.push(`stubborn:has:${reason.has("resource-deleted") && reason.has("daemon-cancelled")}`);
    },
  );
  const operator = await startOperator(c, { registry, namespaces: [ns] });
  try {
    await createObject(c, res, ns, "s1");
    await waitFor(() => seen.length === 2, { message: "both daemons to start" });
    // Daemons start in the cycle that adds the finalizer (as in Kopf): delete once it is there,
    // or the deletion may go through before the daemons' cleanup can hold it.
    await waitFor(async () => (await getObject(c, res, ns, "s1"))?.metadata.finalizers?.length, {
      message: "the finalizer",
    });
    await c.api("DELETE", res.path(ns, "s1"));
    await waitFor(async () => (await getObject(c, res, ns, "s1")) === null, {
      timeout: 30,
      message: "the object to be deleted once its daemons exit",
    });
    assert.deepEqual(seen.slice(2).sort(), [
      "graceful:resource-deleted|daemon-signalled",
      "stubborn:has:true",
      "stubborn:resource-deleted|daemon-signalled|daemon-cancelled",
    ]);
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});
