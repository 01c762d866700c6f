/**
 * The operator of Kopf's walkthrough, in TypeScript: every EphemeralVolumeClaim gets a
 * PersistentVolumeClaim of its size; a changed size resizes it, changed labels are copied to it,
 * and it is deleted with its claim (an owner reference: Kubernetes' garbage collector deletes it).
 * `docs/tutorial.md` builds it step by step.
 *
 * ```sh
 * kopf run --verbose -n default examples/tutorial/ephemeral.ts
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";
import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";

interface EvcSpec {
  size?: string;
}

function pvcFor(name: string, size: string): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: size } },
    },
  };
}

kopf.on.create<EvcSpec>(
  "ephemeralvolumeclaims",
  async function create_fn({ spec, name, body, logger, api }) {
    const size = spec.size;
    if (!size) throw new kopf.PermanentError("Size must be set. Got nothing.");

    const pvc = pvcFor(name, size);
    kopf.adopt(pvc, body); // owner reference, namespace, the claim's labels
    const created = await api.create(pvc);
    logger.info(`PVC child is created: ${created.metadata?.name}`);
    return { "pvc-name": created.metadata?.name };
  },
);

kopf.on.update<EvcSpec>(
  "ephemeralvolumeclaims",
  { field: "spec.size" },
  async function update_fn({ new: size, status, namespace, logger, api }) {
    if (!size) throw new kopf.PermanentError("Size must be set. Got nothing.");
    const pvcName = (status.create_fn as { "pvc-name"?: string } | undefined)?.["pvc-name"];
    if (!pvcName) throw new kopf.TemporaryError("The PVC is not created yet.", { delay: 5 });
    try {
      await api.patch("persistentvolumeclaims", pvcName, {
        spec: { resources: { requests: { storage: size } } },
      }, { namespace });
    } catch (error) {
      // The API server refuses to resize a claim that is not bound (or whose storage class
      // cannot expand): retrying will not help, so say why once and stop.
      if (error instanceof kopf.ApiError && error.status === 422) {
        throw new kopf.PermanentError(`The PVC cannot be resized: ${error.serverMessage}`);
      }
      throw error;
    }
    logger.info(`PVC child is updated to ${size}.`);
  },
);

kopf.on.field(
  "ephemeralvolumeclaims",
  { field: "metadata.labels" },
  async function relabel({ diff, status, namespace, logger, api }) {
    const pvcName = (status.create_fn as { "pvc-name"?: string } | undefined)?.["pvc-name"];
    if (!pvcName) return; // created just now: the PVC got the labels with kopf.adopt()
    // Added and changed labels are set; removed ones become null (removed by the merge patch).
    const labels: Record<string, string | null> = {};
    for (const [op, field, , value] of diff) {
      const key = field[0];
      if (key === undefined) {
        for (const [k, v] of Object.entries((value ?? {}) as Record<string, string>)) labels[k] = v;
      } else {
        labels[String(key)] = op === "remove" ? null : value as string;
      }
    }
    await api.patch("persistentvolumeclaims", pvcName, { metadata: { labels } }, { namespace });
    logger.info(`PVC child is relabelled: ${JSON.stringify(labels)}`);
  },
);
