/**
 * The local plane runs what a PVC's lifecycle needs (tests/cluster/cluster.sh): the PV binder and
 * the PV/PVC protection controllers. A PVC owned by another object (the walkthrough operator's
 * EphemeralVolumeClaim → PVC child) is garbage-collected when its owner goes, instead of hanging in
 * Terminating with its kubernetes.io/pvc-protection finalizer; a matching PV binds.
 */
import assert from "node:assert/strict";
import { cluster, HarnessApiError } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

Deno.test("a PVC binds to a PV, and is garbage-collected with its owner", async () => {
  const c = await cluster();
  const ns = await c.namespace("plane-pvc");
  const pv = `plane-pvc-${ns.split("-").pop()}`;
  try {
    await c.api("POST", "/api/v1/persistentvolumes", {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: pv },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        hostPath: { path: `/tmp/${pv}` },
        claimRef: { namespace: ns, name: "child" },
      },
    });
    const owner = await c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "owner" },
    });
    const pvc = await c.api("POST", `/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: {
        name: "child",
        ownerReferences: [{
          apiVersion: "v1",
          kind: "ConfigMap",
          name: "owner",
          uid: owner.metadata.uid,
          blockOwnerDeletion: true,
        }],
      },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
    assert.deepEqual(pvc.metadata.finalizers, ["kubernetes.io/pvc-protection"]);
    const path = `/api/v1/namespaces/${ns}/persistentvolumeclaims/child`;
    await waitFor(
      async () => (await c.api("GET", path)).status?.phase === "Bound" || undefined,
      { timeout: 60, message: "the PVC bound to its PV" },
    );
    await c.api("DELETE", `/api/v1/namespaces/${ns}/configmaps/owner`, {
      propagationPolicy: "Background",
    });
    await waitFor(
      () =>
        c.api("GET", path).then(
          () => undefined,
          (e) => (e instanceof HarnessApiError && e.status === 404) || undefined,
        ),
      { timeout: 60, message: "the PVC garbage-collected" },
    );
  } finally {
    await c.api("DELETE", `/api/v1/persistentvolumes/${pv}`).catch(() => {});
    await c.deleteNamespace(ns);
  }
});
