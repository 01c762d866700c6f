/**
 * The chaos suite's private control plane. The suite restarts the API server and stops etcd, so
 * it never uses the shared plane of the other tests: each test file starts its own in
 * `<KOPF_CLUSTER_DIR or /tmp/kopf-cluster>-chaos-<tag>` (or `KOPF_CHAOS_CLUSTER_DIR-<tag>`),
 * applies the examples' CRD, and brings it down when done.
 *
 * @module
 */
import { AssertionError } from "node:assert/strict";
import { type PrivateCluster, privateCluster } from "../support/cluster.ts";

/** Where the plane of a test file lives. */
export function chaosPlaneDir(tag: string): string {
  const base = Deno.env.get("KOPF_CHAOS_CLUSTER_DIR") ??
    `${Deno.env.get("KOPF_CLUSTER_DIR") ?? "/tmp/kopf-cluster"}-chaos`;
  return `${base}-${tag}`;
}

/**
 * Runs `body` with a private plane (started fresh, the CRD applied) and brings the plane down
 * afterwards, whatever happens.
 */
export async function withChaosPlane(
  tag: string,
  body: (plane: PrivateCluster) => Promise<void>,
): Promise<void> {
  const plane = await privateCluster(chaosPlaneDir(tag));
  try {
    await plane.applyCrd(plane.kopfExampleCrd);
    await body(plane);
  } catch (error) {
    // A failed count says what went wrong; anything else may be the plane's doing.
    if (!(error instanceof AssertionError)) {
      console.error(`the chaos plane's logs:\n${(await plane.logs()).slice(-6000)}`);
    }
    throw error;
  } finally {
    await plane.down();
  }
}
