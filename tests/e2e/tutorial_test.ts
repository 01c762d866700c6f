/**
 * The tutorial's operator (docs/tutorial.md, examples/tutorial/) through `kopf run`, as a reader
 * runs it: an EphemeralVolumeClaim gets its PVC (sized, owned, labelled) through `api`, label
 * changes reach the PVC, a resize that the API server refuses for an unbound claim fails once and
 * for good with the server's reason, and deleting the claim lets the garbage collector delete the
 * PVC. The local plane has no storage provisioner: the PVC stays Pending (docs/tutorial.md says so).
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const c = await cluster();
await c.applyCrd(`${ROOT}examples/tutorial/crd.yaml`);

Deno.test("tutorial: an EphemeralVolumeClaim's PVC is created, relabelled, refused a resize, collected", async () => {
  const ns = await c.namespace("tutorial");
  const evcPath = `/apis/kopf.dev/v1/namespaces/${ns}/ephemeralvolumeclaims/my-claim`;
  const pvcPath = `/api/v1/namespaces/${ns}/persistentvolumeclaims/my-claim`;
  const runner = new KopfRunner(
    ["run", "--verbose", "-n", ns, `${ROOT}examples/tutorial/ephemeral.ts`],
    { env: { KUBECONFIG: c.kubeconfig }, cwd: ROOT, timeout: 30 },
  );
  try {
    await runner.start();
    await c.apply(`${ROOT}examples/tutorial/evc.yaml`, { namespace: ns });
    const pvc = await waitFor(() => c.api("GET", pvcPath).catch(() => null), {
      timeout: 30,
      message: "the PVC",
    });
    const evc = await c.api("GET", evcPath);
    assert.equal(pvc.spec.resources.requests.storage, "1G");
    assert.equal(pvc.metadata.ownerReferences[0].uid, evc.metadata.uid);
    assert.equal(pvc.metadata.labels.application, "my-app");
    await waitFor(async () => (await c.api("GET", evcPath)).status?.create_fn, {
      message: "the create handler's result",
    });
    assert.deepEqual((await c.api("GET", evcPath)).status.create_fn, { "pvc-name": "my-claim" });

    // Labels: a new one and a changed one reach the PVC.
    await c.api("PATCH", evcPath, { metadata: { labels: { application: "other", tier: "db" } } }, {
      contentType: "application/merge-patch+json",
    });
    await waitFor(async () => {
      const labels = (await c.api("GET", pvcPath)).metadata.labels;
      return labels.application === "other" && labels.tier === "db";
    }, { message: "the PVC's labels to follow" });

    // A resize of an unbound claim: refused by the API server, reported once, not retried.
    await c.api("PATCH", evcPath, { spec: { size: "2G" } }, {
      contentType: "application/merge-patch+json",
    });
    await waitFor(() => /Handler 'update_fn\/spec\.size' failed permanently/.test(runner.output), {
      message: "the resize to fail permanently",
      timeout: 20,
    });
    assert.match(runner.output, /The PVC cannot be resized: .*bound claims/);
    assert.equal((await c.api("GET", pvcPath)).spec.resources.requests.storage, "1G");

    // Deleting the claim: the garbage collector deletes its PVC (which the plane's missing
    // pvc-protection controller then leaves Terminating).
    await c.api("DELETE", evcPath);
    await waitFor(async () => {
      const left = await c.api("GET", pvcPath).catch(() => null);
      return left === null || left.metadata.deletionTimestamp !== undefined;
    }, { timeout: 60, message: "the PVC to be deleted with its claim" });
  } catch (error) {
    console.error(runner.output.slice(-6000));
    throw error;
  } finally {
    await runner.stop();
    await c.deleteNamespace(ns);
  }
  const output = runner.output;
  assert.equal(output.match(/Handler 'create_fn' succeeded/g)?.length, 1, output);
  assert.equal(output.match(/Handler 'update_fn\/spec\.size' failed permanently/g)?.length, 1);
  assert.doesNotMatch(output, /Uncaught|kopf: error|Traceback/);
});
