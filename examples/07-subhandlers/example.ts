/**
 * Sub-handlers: the creation handler registers one sub-handler per item of `spec.items`. They
 * run after it, each with its own progress (retries, delays) under the id `create_fn/<item>`;
 * the creation is done when all of them are.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/07-subhandlers/example.ts
 * kubectl apply -n default -f examples/obj.yaml
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.create("kopfexamples", function create_fn({ spec }) {
  for (const item of (spec.items ?? []) as string[]) {
    kopf.subhandler({ id: item }, function create_item_fn() {
      console.log(`=== Handling creation for ${item}. ===`);
    });
  }
});
