// The daemon stopper: every reason that applies is kept, as Kopf's combined
// `DaemonStoppingReason` flags are (kopf/_cogs/aiokits/aioenums.py: `reason | new`).
import assert from "node:assert/strict";
import { DaemonStopper } from "../../src/engines/stopper.ts";

Deno.test("stopped.reason: null before the request, then all reasons in Kopf's order", () => {
  const stopper = new DaemonStopper();
  assert.equal(stopper.reason, null);
  assert.equal(stopper.isSet, false);
  stopper.set("daemon-signalled");
  stopper.set("resource-deleted");
  stopper.set("resource-deleted");
  const reason = stopper.reason!;
  assert.deepEqual([...reason], ["resource-deleted", "daemon-signalled"]);
  assert.equal(`${reason}`, "resource-deleted|daemon-signalled");
  assert.equal(JSON.stringify({ reason }), '{"reason":["resource-deleted","daemon-signalled"]}');
  assert.ok(reason.has("resource-deleted") && !reason.has("operator-exiting"));
  assert.equal(stopper.isSet, true);
  assert.equal(stopper.requested.aborted, true);
  assert.equal(stopper.signal.aborted, false, "a stop request is not a cancellation");
});

Deno.test("cancel(): a plain cancellation at the request adds no reason; an escalation does", () => {
  const stopper = new DaemonStopper();
  stopper.set("operator-exiting");
  stopper.cancel();
  assert.equal(`${stopper.reason}`, "operator-exiting");
  assert.equal(stopper.signal.aborted, true);
  stopper.cancel("daemon-cancelled");
  assert.equal(`${stopper.reason}`, "operator-exiting|daemon-cancelled");
  const unrequested = new DaemonStopper();
  unrequested.cancel();
  assert.equal(`${unrequested.reason}`, "daemon-cancelled");
});

Deno.test("the operator's hard abort cancels with daemon-cancelled", () => {
  const parent = new AbortController();
  const stopper = new DaemonStopper({ parent: parent.signal });
  stopper.set("resource-deleted");
  parent.abort();
  assert.equal(`${stopper.reason}`, "resource-deleted|daemon-cancelled");
  assert.equal(stopper.signal.aborted, true);
});
