/**
 * The one place where our finalizer is put on and taken off an object (kube-rs's
 * `finalizer.rs`, controller-runtime's `controllerutil.AddFinalizer/RemoveFinalizer`).
 *
 * Edits are {@linkcode PatchFn}s: the outcome writer turns them into one JSON patch guarded by a
 * `test` of the resourceVersion, computed against the freshest known body (and again after a
 * conflict), so that other controllers' finalizers are never clobbered. What the finalizer's
 * presence means is `storage/finalizers.ts`'s (Kopf's conventions).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { KubeClient } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import type { Resource } from "../kube/resource.ts";
import type { RawBody } from "../storage/fields.ts";
import { isDeletionBlocked, isDeletionOngoing } from "../storage/finalizers.ts";
import { writeOutcome } from "./application.ts";
import type { PatchFn } from "../storage/patch.ts";

/**
 * Put `finalizer` on the object, unless it is there already or the object is being deleted (the
 * API server refuses new finalizers on objects being deleted).
 *
 * @example
 * ```ts
 * import { addFinalizer } from "./finalizers.ts";
 * const body = { metadata: { finalizers: ["other.example.com/x"] } };
 * addFinalizer("kopf.zalando.org/KopfFinalizerMarker")(body);
 * body.metadata.finalizers; // ["other.example.com/x", "kopf.zalando.org/KopfFinalizerMarker"]
 * ```
 */
export function addFinalizer(finalizer: string): PatchFn {
  return (body) => {
    if (isDeletionBlocked(body, finalizer) || isDeletionOngoing(body)) return;
    const metadata = body.metadata ??= {};
    metadata.finalizers = [...(metadata.finalizers ?? []), finalizer];
  };
}

/**
 * Take every occurrence of `finalizer` off the object; other finalizers stay.
 *
 * @example
 * ```ts
 * import { removeFinalizer } from "./finalizers.ts";
 * const body = { metadata: { finalizers: ["a", "ours", "b"] } };
 * removeFinalizer("ours")(body);
 * body.metadata.finalizers; // ["a", "b"]
 * ```
 */
export function removeFinalizer(finalizer: string): PatchFn {
  return (body) => {
    const finalizers = body.metadata?.finalizers;
    if (Array.isArray(finalizers)) {
      body.metadata!.finalizers = finalizers.filter((f) => f !== finalizer);
    }
  };
}

/** What {@linkcode releaseFinalizer} needs. */
export interface ReleaseInput {
  /** The client. */
  readonly client: Pick<KubeClient, "get" | "patch">;
  /** The object's resource. */
  readonly resource: Resource;
  /** The object's last known state (its name and namespace are what count). */
  readonly body: RawBody;
  /** Our finalizer. */
  readonly finalizer: string;
  /** The object's logger. */
  readonly logger: Logger;
}

/**
 * Take our finalizer off an object outside its handling cycle, reading it first (e.g. one that
 * left the operator's label selector while it carried the finalizer). Says whether the object
 * turned out to be gone.
 */
export async function releaseFinalizer(input: ReleaseInput): Promise<{ gone: boolean }> {
  const { client, resource, finalizer, logger } = input;
  const name = input.body.metadata?.name ?? "";
  const namespace = resource.namespaced ? input.body.metadata?.namespace : undefined;
  let body: RawBody;
  try {
    body = await client.get<RawBody>(resource, name, { namespace });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { gone: true };
    throw error;
  }
  if (!isDeletionBlocked(body, finalizer)) return { gone: false };
  logger.debug("Removing the finalizer, as there are no handlers requiring it.");
  const written = await writeOutcome({
    client,
    resource,
    body,
    patch: {},
    fns: [removeFinalizer(finalizer)],
    logger,
  });
  return { gone: written.gone };
}
