/**
 * Kubernetes Events about the handled object (or any other): `kopf.event()` of any type, and the
 * shortcuts `kopf.info()`, `kopf.warn()`, `kopf.exception()`. They are posted in the background,
 * aggregated (a repeated event raises a count instead of creating another one).
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/04-events/example.ts
 * kubectl apply -n default -f examples/obj.yaml
 * kubectl get events -n default --field-selector involvedObject.name=kopf-example-1
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.create("kopf.dev", "v1", "kopfexamples", function create_fn({ body }) {
  // The all-purpose function for the event creation.
  kopf.event(body, { type: "SomeType", reason: "SomeReason", message: "Some message" });

  // The shortcuts for the conventional events and common cases.
  kopf.info(body, { reason: "SomeReason", message: "Some message" });
  kopf.warn(body, { reason: "SomeReason", message: "Some message" });

  try {
    throw new Error("Exception text.");
  } catch (exc) {
    kopf.exception(body, { reason: "SomeReason", message: "Some exception:", exc });
  }
});
