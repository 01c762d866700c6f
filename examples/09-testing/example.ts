/**
 * The operator under test in `test_example_09.ts`: one creation handler that logs a line the test
 * looks for.
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.create("kopf.dev", "v1", "kopfexamples", function create_fn({ logger }) {
  logger.info("Something was logged here.");
});
