/**
 * Several handlers per cause: two for resuming (objects found when the operator starts), two
 * for creation, one for updates, two for deletion, and one for changes of `spec.field`. All
 * handlers due for a cause run in the same cycle, in the order of registration.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/05-handlers/example.ts
 * kubectl apply -n default -f examples/obj.yaml
 * kubectl patch -n default kex kopf-example-1 --type merge -p '{"spec": {"field": "changed"}}'
 * kubectl delete -n default -f examples/obj.yaml
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.resume("kopf.dev", "v1", "kopfexamples", function resume_fn_1() {
  console.log("RESUMED 1st");
});

kopf.on.create("kopf.dev", "v1", "kopfexamples", function create_fn_1() {
  console.log("CREATED 1st");
});

kopf.on.resume("kopf.dev", "v1", "kopfexamples", function resume_fn_2() {
  console.log("RESUMED 2nd");
});

kopf.on.create("kopf.dev", "v1", "kopfexamples", function create_fn_2() {
  console.log("CREATED 2nd");
});

kopf.on.update("kopf.dev", "v1", "kopfexamples", function update_fn({ diff }) {
  console.log(`UPDATED: ${JSON.stringify(diff)}`);
});

kopf.on.delete("kopf.dev", "v1", "kopfexamples", function delete_fn_1() {
  console.log("DELETED 1st");
});

kopf.on.delete("kopf.dev", "v1", "kopfexamples", function delete_fn_2() {
  console.log("DELETED 2nd");
});

kopf.on.field(
  "kopf.dev",
  "v1",
  "kopfexamples",
  { field: "spec.field" },
  function field_fn({ old, new: value }) {
    console.log(`FIELD CHANGED: ${old} -> ${value}`);
  },
);
