/**
 * Testing helpers for operators built with Kopf for Deno.
 *
 * {@linkcode KopfRunner} runs an operator — `kopf run` with your handler files — in the background
 * of a test against a real cluster, collects its output, and stops it cleanly, as Kopf's
 * `kopf.testing.KopfRunner` does for pytest.
 *
 * @example
 * ```ts
 * import { KopfRunner } from "@kopf/kopf/testing";
 * import assert from "node:assert/strict";
 *
 * Deno.test("the operator logs the creation", async () => {
 *   const runner = new KopfRunner(["run", "--standalone", "-n", "default", "handlers.ts"]);
 *   try {
 *     // … create an object with kubectl or a client …
 *     await runner.waitForOutput("Something was logged here.", { timeout: 60 });
 *   } finally {
 *     assert.equal(await runner.stop(), 0);
 *   }
 *   assert.match(runner.output, /Creation is in progress/);
 * });
 * ```
 *
 * @module
 */
export {
  KopfRunner,
  KopfRunnerError,
  type KopfRunnerOptions,
  type WaitForOutputOptions,
} from "./src/testing/runner.ts";
