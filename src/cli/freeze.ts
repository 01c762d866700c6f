/**
 * `kopf freeze` and `kopf resume` (Kopf's commands of the same names): write, or remove, a record
 * in Kopf's peering object under a manual identity, so that the operators peering there with a
 * lower priority pause until it expires or is removed.
 *
 * @module
 */
import { KubeClient } from "../kube/client.ts";
import { findPeeringResource, kopfIdentity, touch } from "../peering/kopf.ts";
import { UsageError } from "./errors.ts";

/** What `kopf freeze` / `kopf resume` were given. */
export interface FreezeOptions {
  /** `freeze` writes a record; `resume` removes it. */
  readonly command: "freeze" | "resume";
  /** The identity of the record (`--id`; default Kopf's manual one, `user@host`). */
  readonly id?: string;
  /** The peering object's name (`--peering`, default `default`). */
  readonly peering?: string;
  /** Priority of the freezing record (default 100; `--dev`: 666). */
  readonly priority?: number;
  /** Seconds the freeze lasts (`--lifetime`; required for freeze). */
  readonly lifetime?: number;
  /** Kept in the record, for people reading it (`--message`). */
  readonly message?: string;
  /** Namespaces (`-n`); none: cluster-wide (`-A`). */
  readonly namespaces?: readonly string[];
  /** Kubeconfig and context. */
  readonly kubeconfig?: string;
  readonly context?: string;
}

/**
 * Writes or removes the record; returns the exit code (a missing CRD or object is one line and
 * exit 1).
 *
 * @example
 * ```ts
 * import { freezeCommand } from "./freeze.ts";
 *
 * async function maintenance(work: () => Promise<void>): Promise<void> {
 *   await freezeCommand({ command: "freeze", lifetime: 600, namespaces: ["default"] });
 *   await work(); // the operators peering in "default" are paused meanwhile
 *   await freezeCommand({ command: "resume", namespaces: ["default"] });
 * }
 * ```
 */
export async function freezeCommand(options: FreezeOptions): Promise<number> {
  const namespaces = options.namespaces?.length ? [...options.namespaces] : [undefined];
  for (const n of options.namespaces ?? []) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n)) {
      throw new UsageError(`-n needs a namespace name, not the pattern "${n}"`);
    }
  }
  const client = await KubeClient.connect({
    kubeconfig: options.kubeconfig,
    context: options.context,
  });
  try {
    const clusterwide = namespaces[0] === undefined;
    const resource = await findPeeringResource(client, clusterwide);
    const kind = clusterwide ? "ClusterKopfPeering" : "KopfPeering";
    if (!resource) {
      console.error(`kopf ${options.command}: the ${kind} CRD is not in the cluster`);
      return 1;
    }
    const name = options.peering ?? "default";
    const identity = options.id ?? kopfIdentity(true);
    const lifetime = options.command === "resume" ? 0 : options.lifetime ?? 0;
    const found = await touch(client, { resource, namespaces, name }, identity, {
      priority: options.priority ?? 100,
      lifetime,
      message: options.message,
    });
    if (found < namespaces.length) {
      console.error(
        `kopf ${options.command}: ${kind} ${name} not found in ` +
          `${namespaces.length - found} of ${namespaces.length} places`,
      );
      return 1;
    }
    return 0;
  } finally {
    client.close();
  }
}
