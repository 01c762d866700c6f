/**
 * The minimal operator: one creation handler. What it returns is stored in the object's status
 * under the handler's id, `status.create_fn.message`.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/01-minimal/example.ts
 * kubectl apply -n default -f examples/obj.yaml
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.create("kopfexamples", function create_fn({ spec, logger }) {
  logger.info(`And here we are! Creating: ${JSON.stringify(spec)}`);
  return { message: "hello world" }; // will be the new status
});
