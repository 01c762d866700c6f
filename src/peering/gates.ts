/**
 * The processing gates of peering (`handling/contracts.ts`'s `ProcessingGate`): which ones an
 * operator runs for its settings (Kopf's peering, `kopf.ts`; Lease leader election), and the
 * leader election's gate — open while this replica holds the Lease, closed (caches warm, nothing
 * handled) while another does.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { GateHooks, ProcessingGate } from "../handling/contracts.ts";
import type { Settings } from "../settings/settings.ts";
import type { KubeObject, ObjectKey } from "../kube/resource.ts";
import { KopfPeeringGate } from "./kopf.ts";
import { LeaderElector, timingProblem } from "./leases.ts";
import { ShardGate } from "./shards.ts";

const logger = getLogger(["kopf", "peering"]);

/** Where a pod's service account says its namespace is. */
const SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** A settings mistake of peering, reported in one line by the operator. */
export class PeeringError extends Error {
  override name = "PeeringError";
}

/**
 * The gate the settings ask for, or `undefined` (standalone and no leader election: the reactor
 * handles every object, exactly as without peering). Kopf's peering is on unless
 * `settings.peering.standalone` (`--standalone`); it then finds out at start whether the peering
 * CRD and object exist (Kopf's auto-detection) and admits everything if not. Throws a
 * {@linkcode PeeringError} for impossible Lease timings.
 *
 * @example
 * ```ts
 * import { Settings } from "../settings/settings.ts";
 * import { processingGate } from "./gates.ts";
 *
 * const settings = new Settings();
 * settings.peering.standalone = true;
 * processingGate(settings); // undefined: every object is handled here
 * settings.peering.leaderElection = true;
 * processingGate(settings); // handled while this replica holds the Lease
 * ```
 */
export function processingGate(settings: Settings): ProcessingGate | undefined {
  const { peering } = settings;
  const gates: ProcessingGate[] = [];
  if (!peering.standalone) gates.push(new KopfPeeringGate(peering));
  if (peering.leaderElection || peering.shards) {
    const problem = timingProblem(peering);
    if (problem) throw new PeeringError(problem);
  }
  if (peering.leaderElection && peering.shards) {
    throw new PeeringError(
      "settings.peering.leaderElection and .shards cannot be used together: one replica " +
        "handles everything, or each handles a share",
    );
  }
  if (peering.leaderElection) gates.push(new LeaderGate());
  if (peering.shards === "auto") gates.push(new ShardGate(peering));
  return gates.length === 0 ? undefined : gates.length === 1 ? gates[0] : new AllGates(gates);
}

/** Several gates at once: an object is admitted when every gate admits it. */
export class AllGates implements ProcessingGate {
  readonly name: string;
  readonly #gates: readonly ProcessingGate[];

  /** All of `gates`. */
  constructor(gates: readonly ProcessingGate[]) {
    this.#gates = gates;
    this.name = gates.map((g) => g.name).join("+");
  }

  async start(hooks: GateHooks): Promise<void> {
    for (const gate of this.#gates) await gate.start(hooks);
  }

  admits(key: ObjectKey, object: KubeObject | undefined): boolean {
    return this.#gates.every((gate) => gate.admits(key, object));
  }

  leadership(): { name: string; leading: boolean }[] {
    return this.#gates.flatMap((gate) => gate.leadership?.() ?? []);
  }

  watchSelector(): string | undefined {
    // Only sharding narrows what is watched (and it cannot be combined with leader election).
    for (const gate of this.#gates) {
      const selector = gate.watchSelector?.();
      if (selector) return selector;
    }
    return undefined;
  }

  async stop(): Promise<void> {
    for (const gate of this.#gates) await gate.stop();
  }
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
  #leaseName = "";
  #campaign: Promise<void> | undefined;
  readonly #stop = new AbortController();
  #release = true;

  start(hooks: GateHooks): void {
    const { peering } = hooks.settings;
    const namespace = leaseNamespace(peering.leaseNamespace, hooks.namespaces);
    const name = peering.leaseName ?? `kopf-${peering.name}`;
    const identity = peering.identity ?? leaseIdentity();
    this.#leaseName = name;
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
      onChange: () => void hooks.changed(),
    });
    // Renewed until stop(), after handling has drained: the Lease covers the drain too.
    this.#campaign = this.#elector.run(this.#stop.signal).catch((error) => {
      logger.error("Leader election failed: {error}", { error });
    });
  }

  admits(): boolean {
    return this.#elector?.leading ?? false;
  }

  leadership(): { name: string; leading: boolean }[] {
    return this.#elector ? [{ name: this.#leaseName, leading: this.#elector.leading }] : [];
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#campaign;
    if (this.#release) await this.#elector?.release();
  }
}
