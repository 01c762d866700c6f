/**
 * Raw event handlers: called for every watch event of every object — the initial listing
 * (`type` is `null`), ADDED, MODIFIED, DELETED — without retries or stored progress. Their
 * errors are logged and ignored: the failing one below does not stop the other one, nor the
 * operator.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/08-events/example.ts
 * kubectl apply -n default -f examples/obj.yaml
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.event("kopf.dev", "v1", "kopfexamples", function event_fn_with_error() {
  throw new Error("Oops!");
});

kopf.on.event("kopf.dev", "v1", "kopfexamples", function normal_event_fn({ event }) {
  console.log(`Event received: ${event.type} ${event.object.metadata?.name}`);
});
