/**
 * The processing gates of peering (`handling/contracts.ts`'s `ProcessingGate`): which one an
 * operator runs for its settings, and the leader election's gate — open while this replica holds
 * the Lease, closed (caches warm, nothing handled) while another does.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { GateHooks, ProcessingGate } from "../handling/contracts.ts";
import type { Settings } from "../settings/settings.ts";
import { LeaderElector, timingProblem } from "./leases.ts";

const logger = getLogger(["kopf", "peering"]);

/** Where a pod's service account says its namespace is. */
const SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** A settings mistake of peering, reported in one line by the operator. */
export class PeeringError extends Error {
  override name = "PeeringError";
}

/**
 * The gate the settings ask for, or `undefined` (nothing configured: the reactor handles every
 * object, exactly as without peering). Throws a {@linkcode PeeringError} for impossible timings.
 *
 * @example
 * ```ts
 * import { Settings } from "../settings/settings.ts";
 * import { processingGate } from "./gates.ts";
 *
 * const settings = new Settings();
 * processingGate(settings); // undefined: every object is handled here
 * settings.peering.leaderElection = true;
 * processingGate(settings); // a LeaderGate: handled while this replica holds the Lease
 * ```
 */
export function processingGate(settings: Settings): ProcessingGate | undefined {
  const { peering } = settings;
  if (!peering.leaderElection) return undefined;
  const problem = timingProblem(peering);
  if (problem) throw new PeeringError(problem);
  return new LeaderGate();
}

/** This replica's identity in a Lease: the pod's name (or host name) and a random suffix. */
export function leaseIdentity(): string {
  let base: string | undefined;
  try {
    base = Deno.env.get("POD_NAME") ?? Deno.env.get("HOSTNAME");
  } catch { /* no --allow-env: the host name, or a plain prefix */ }
  if (!base) {
    try {
      base = Deno.hostname();
    } catch {
      base = "kopf";
    }
  }
  return `${base}_${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * The Lease's namespace: the setting, else the service account's in a pod, else the first
 * plain namespace served, else `default`.
 */
export function leaseNamespace(
  setting: string | null,
  namespaces: readonly (string | RegExp)[] | undefined,
): string {
  if (setting) return setting;
  try {
    const own = Deno.readTextFileSync(SA_NAMESPACE).trim();
    if (own) return own;
  } catch { /* not in a pod, or not readable */ }
  const plain = namespaces?.find((n): n is string =>
    typeof n === "string" && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n)
  );
  return plain ?? "default";
}

/**
 * Open while this replica holds the leader election's Lease: then it handles every object;
 * otherwise none (its caches stay warm, to take over at once).
 */
export class LeaderGate implements ProcessingGate {
  readonly name = "leader-election";
  #elector: LeaderElector | undefined;
  #campaign: Promise<void> | undefined;
  readonly #stop = new AbortController();
  #release = true;

  start(hooks: GateHooks): void {
    const { peering } = hooks.settings;
    const namespace = leaseNamespace(peering.leaseNamespace, hooks.namespaces);
    const name = peering.leaseName ?? `kopf-${peering.name}`;
    const identity = peering.identity ?? leaseIdentity();
    this.#release = peering.releaseOnCancel;
    logger.info(
      "Leader election: campaigning for the Lease {namespace}/{name} as {identity}; " +
        "handling nothing until elected.",
      { namespace, name, identity },
    );
    this.#elector = new LeaderElector({
      client: hooks.client,
      namespace,
      name,
      identity,
      leaseDuration: peering.leaseDuration,
      renewDeadline: peering.renewDeadline,
      retryPeriod: peering.retryPeriod,
      onChange: () => hooks.changed(),
    });
    // Renewed until stop(), after handling has drained: the Lease covers the drain too.
    this.#campaign = this.#elector.run(this.#stop.signal).catch((error) => {
      logger.error("Leader election failed: {error}", { error });
    });
  }

  admits(): boolean {
    return this.#elector?.leading ?? false;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#campaign;
    if (this.#release) await this.#elector?.release();
  }
}
