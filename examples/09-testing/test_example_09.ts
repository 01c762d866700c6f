/**
 * How to test an operator with `KopfRunner`: run it in the background against a cluster, make
 * something happen with `kubectl`, and check what it logged and how it exited.
 *
 * ```sh
 * KUBECONFIG=~/.kube/config deno test -A examples/09-testing/test_example_09.ts
 * ```
 *
 * It uses the namespace in `$EXAMPLE_NAMESPACE` (default: `default`) and `kubectl` from `$PATH`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { KopfRunner } from "@kopf/kopf/testing";

const here = new URL(".", import.meta.url).pathname;
const CRD = `${here}../crd.yaml`;
const OBJ = `${here}../obj.yaml`;
const EXAMPLE = `${here}example.ts`;
const NAMESPACE = Deno.env.get("EXAMPLE_NAMESPACE") ?? "default";

async function kubectl(...args: string[]): Promise<{ ok: boolean; output: string }> {
  const out = await new Deno.Command("kubectl", {
    args: ["--namespace", NAMESPACE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { ok: out.success, output: decode(out.stdout) + decode(out.stderr) };
}

async function mustKubectl(...args: string[]): Promise<void> {
  const { ok, output } = await kubectl(...args);
  assert.ok(ok, `kubectl ${args.join(" ")} failed: ${output}`);
}

Deno.test("the operator handles an object's creation and deletion", async () => {
  await mustKubectl("apply", "-f", CRD);
  // A leftover object from an earlier run: nobody serves it now, so drop its finalizers first.
  await kubectl("patch", "-f", OBJ, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}');
  await kubectl("delete", "-f", OBJ, "--ignore-not-found", "--wait=true");

  let runner: KopfRunner;
  {
    await using operator = new KopfRunner(
      ["run", "--verbose", "--standalone", "--namespace", NAMESPACE, EXAMPLE],
      { timeout: 30 },
    );
    runner = operator;
    await mustKubectl("create", "-f", OBJ);
    await operator.waitForOutput("Something was logged here.", { timeout: 60 });
    await mustKubectl("delete", "-f", OBJ, "--wait=true");
    await operator.waitForOutput("Deleted, really deleted", { timeout: 60 });
  } // Stopped here; disposal throws if the operator failed or did not stop.

  assert.equal(runner.exitCode, 0);
  assert.match(
    runner.output,
    new RegExp(`\\[${NAMESPACE}/kopf-example-1\\] Creation is in progress:`),
  );
  assert.match(
    runner.output,
    new RegExp(`\\[${NAMESPACE}/kopf-example-1\\] Something was logged here\\.`),
  );
  assert.match(runner.output, /Handler 'create_fn' succeeded\./);
  assert.doesNotMatch(runner.output, /failed (temporarily|permanently|with an exception)/);
  assert.doesNotMatch(runner.output, /kopf: error|Uncaught/);
});
