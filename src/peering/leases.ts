/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics
 * (`tools/leaderelection`): one holder at a time; a Lease held by another is valid for
 * `leaseDurationSeconds` after this replica last saw it change — judged by this replica's own
 * clock, so a wrong `renewTime` (clock skew, a hand edit) cannot make two leaders; the holder
 * renews every `retryPeriod` and steps down when it could not renew for `renewDeadline`
 * (shorter than the lease, so it stops before anyone else may start); on a graceful stop it gives
 * the Lease up (empty holder) so that another replica takes over at its next attempt.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KubeClient } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import { sleepUnless } from "../kube/time.ts";

const logger = getLogger(["kopf", "peering"]);

/** The Lease fields leader election reads and writes (`coordination.k8s.io/v1`). */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** A Lease object. */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string };
  spec?: LeaseSpec;
}

/** How {@linkcode LeaderElector} campaigns (client-go's `LeaderElectionConfig`). */
export interface ElectionOptions {
  /** The API client. */
  readonly client: Pick<KubeClient, "request">;
  /** The Lease's namespace. */
  readonly namespace: string;
  /** The Lease's name. */
  readonly name: string;
  /** This replica's identity (unique per process). */
  readonly identity: string;
  /** Seconds a Lease is valid after it was last seen to change (client-go: 15). */
  readonly leaseDuration: number;
  /** Seconds the holder tries to renew before it steps down (client-go: 10). */
  readonly renewDeadline: number;
  /** Seconds between attempts (client-go: 2; jittered by up to 20 % while not leading). */
  readonly retryPeriod: number;
  /** Called when this replica starts or stops leading. */
  readonly onChange: (leading: boolean) => void;
  /** A clock in milliseconds (tests); default `Date.now`. */
  readonly now?: () => number;
}

/**
 * The jitter of the acquire loop: each wait is `retryPeriod × (1 + up to 0.2)`. client-go waits
 * up to `retryPeriod × (1 + 1.2)`; the smaller spread keeps a released Lease's takeover within
 * about 2.4 s (docs/peering.md), at the price of slightly more synchronized attempts.
 */
const JITTER = 0.2;

/** client-go's rule `renewDeadline > JitterFactor × retryPeriod`, with its factor. */
const CLIENT_GO_JITTER = 1.2;

/**
 * The timing rules client-go enforces (`NewLeaderElector`), as one message, or `undefined`.
 *
 * @example
 * ```ts
 * import { timingProblem } from "./leases.ts";
 *
 * timingProblem({ leaseDuration: 15, renewDeadline: 10, retryPeriod: 2 }); // undefined
 * timingProblem({ leaseDuration: 5, renewDeadline: 10, retryPeriod: 2 }); // "…must be greater…"
 * ```
 */
export function timingProblem(
  t: { leaseDuration: number; renewDeadline: number; retryPeriod: number },
): string | undefined {
  if (!(t.retryPeriod > 0)) return `settings.peering.retryPeriod must be positive`;
  if (!(t.leaseDuration > t.renewDeadline)) {
    return `settings.peering.leaseDuration (${t.leaseDuration}) must be greater than ` +
      `renewDeadline (${t.renewDeadline})`;
  }
  if (!(t.renewDeadline > CLIENT_GO_JITTER * t.retryPeriod)) {
    return `settings.peering.renewDeadline (${t.renewDeadline}) must be greater than ` +
      `${CLIENT_GO_JITTER} × retryPeriod (${t.retryPeriod})`;
  }
  return undefined;
}

/** What a deleted Lease is observed as. */
const ABSENT = "\u0000absent";

/** Kubernetes' MicroTime: RFC 3339 with exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Campaigns for one Lease until stopped; {@linkcode LeaderElector.leading} says whether this
 * replica holds it now.
 *
 * @example
 * ```ts
 * import { KubeClient } from "../kube/client.ts";
 * import { LeaderElector } from "./leases.ts";
 *
 * async function campaign(client: KubeClient, stop: AbortSignal): Promise<void> {
 *   const elector = new LeaderElector({
 *     client, namespace: "default", name: "my-operator", identity: "pod-1_x7k2",
 *     leaseDuration: 15, renewDeadline: 10, retryPeriod: 2,
 *     onChange: (leading) => console.log(leading ? "leading" : "standing by"),
 *   });
 *   await elector.run(stop); // until stopped
 *   await elector.release(); // the next replica takes over at once
 * }
 * ```
 */
export class LeaderElector {
  readonly #o: ElectionOptions;
  readonly #now: () => number;
  readonly #path: string;
  #leading = false;
  #lastRenew = 0;
  /** The record as last seen, and when (this clock): the base of its validity. */
  #observed: { key: string; at: number; holder: string } | undefined;
  #warned = new Set<string>();
  #lastHolder: string | undefined;

  /** An elector; nothing happens until {@linkcode LeaderElector.run}. */
  constructor(options: ElectionOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    const ns = encodeURIComponent(options.namespace);
    this.#path = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
  }

  /** Whether this replica leads now (and renewed within the renew deadline). */
  get leading(): boolean {
    return this.#leading && this.#now() - this.#lastRenew <= this.#o.renewDeadline * 1000;
  }

  /** `namespace/name` of the Lease. */
  get lease(): string {
    return `${this.#o.namespace}/${this.#o.name}`;
  }

  /** Campaign, lead, and campaign again after losing the Lease, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { retryPeriod, renewDeadline } = this.#o;
    while (!signal.aborted) {
      if (!this.#leading) {
        if (await this.#attempt(signal, retryPeriod * 1000)) {
          this.#setLeading(true);
          continue;
        }
        await sleepUnless(retryPeriod * (1 + Math.random() * JITTER), signal);
        continue;
      }
      await sleepUnless(retryPeriod, signal);
      if (signal.aborted) break;
      // Renew, retrying every retryPeriod until the renew deadline since the last renewal.
      let renewed = false;
      while (!signal.aborted && !renewed) {
        const left = this.#lastRenew + renewDeadline * 1000 - this.#now();
        if (left <= 0) break;
        renewed = await this.#attempt(signal, left);
        // Someone else holds it now (or took it first): step down at once, not at the deadline.
        if (!renewed && this.#observed?.holder !== this.#o.identity) break;
        if (!renewed) await sleepUnless(Math.min(retryPeriod, left / 1000), signal);
      }
      if (!renewed && !signal.aborted) {
        if (this.#observed?.holder === this.#o.identity) {
          logger.warn(
            "Leader election: could not renew the Lease {lease} for {deadline} s; stepping down.",
            { lease: this.lease, deadline: renewDeadline },
          );
        }
        this.#setLeading(false);
      }
    }
  }

  /**
   * Give the Lease up if this replica holds it (client-go's `ReleaseOnCancel`): the holder is
   * emptied, so the next replica acquires it at its next attempt instead of after the lease.
   */
  async release(): Promise<void> {
    const wasLeading = this.#leading;
    this.#setLeading(false);
    if (!wasLeading) return;
    try {
      const lease = await this.#o.client.request<Lease>("GET", `${this.#path}/${this.#o.name}`, {
        timeoutMs: 5000,
      });
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      const now = microTime(this.#now());
      await this.#o.client.request("PUT", `${this.#path}/${this.#o.name}`, {
        body: {
          ...lease,
          spec: {
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: lease.spec?.leaseTransitions ?? 0,
          },
        },
        timeoutMs: 5000,
      });
      logger.info("Leader election: released the Lease {lease}.", { lease: this.lease });
    } catch (error) {
      logger.warn("Leader election: could not release the Lease {lease}: {error}", {
        lease: this.lease,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  #setLeading(leading: boolean): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    if (leading) {
      logger.info("Leader election: this replica ({identity}) leads now (Lease {lease}).", {
        identity: this.#o.identity,
        lease: this.lease,
      });
    } else {
      logger.info("Leader election: this replica ({identity}) does not lead any more.", {
        identity: this.#o.identity,
      });
    }
    this.#o.onChange(leading);
  }

  /** One `tryAcquireOrRenew`; `false` on any failure (logged once per kind). */
  async #attempt(signal: AbortSignal, timeoutMs: number): Promise<boolean> {
    const timeout = Math.max(500, Math.min(timeoutMs, this.#o.renewDeadline * 1000));
    const request = { signal, timeoutMs: timeout, retries: 0 };
    const { identity, name, namespace, leaseDuration } = this.#o;
    const now = this.#now();
    try {
      let lease: Lease;
      try {
        lease = await this.#o.client.request<Lease>("GET", `${this.#path}/${name}`, request);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 404) throw error;
        if (!this.#leading && this.#observed) {
          // Deleted while another may hold it, not having noticed yet: absence is observed like
          // a record, and the Lease is free once it has been absent for a lease duration (the
          // holder creates it again meanwhile). Only a replica that never saw it creates it at
          // once (the first start).
          if (this.#observed.key !== ABSENT) {
            this.#observed = { key: ABSENT, at: now, holder: ABSENT };
            logger.warn(
              "Leader election: the Lease {lease} is gone (deleted by hand?); waiting {duration} s " +
                "for its holder to create it again before taking it.",
              { lease: this.lease, duration: leaseDuration },
            );
          }
          if (this.#observed.at + leaseDuration * 1000 > now) return false;
        }
        if (this.#leading) {
          logger.warn("Leader election: the Lease {lease} was deleted; creating it again.", {
            lease: this.lease,
          });
        }
        try {
          await this.#o.client.request("POST", this.#path, {
            ...request,
            body: {
              apiVersion: "coordination.k8s.io/v1",
              kind: "Lease",
              metadata: { name, namespace },
              spec: this.#spec(now, undefined),
            },
          });
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 409) throw error;
          if (this.#leading) {
            logger.warn(
              "Leader election: the Lease {lease} was created by another replica first; " +
                "stepping down.",
              { lease: this.lease },
            );
            this.#observed = { key: "", at: now, holder: "" };
          }
          return false;
        }
        this.#renewed(now, identity);
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? "";
      const key = JSON.stringify(spec);
      if (this.#observed?.key !== key) this.#observed = { key, at: now, holder };
      this.#noteHolder(holder, spec, now);
      const duration = (spec.leaseDurationSeconds ?? leaseDuration) * 1000;
      if (holder && holder !== identity && this.#observed.at + duration > now) {
        if (this.#leading) {
          logger.warn(
            "Leader election: the Lease {lease} is held by {holder}, not by this replica " +
              "(edited by hand?); stepping down.",
            { lease: this.lease, holder },
          );
        }
        return false;
      }
      const updated = { ...lease, spec: this.#spec(now, holder === identity ? spec : undefined) };
      if (holder !== identity) {
        updated.spec.leaseTransitions = (spec.leaseTransitions ?? 0) + (holder ? 1 : 0);
      }
      await this.#o.client.request("PUT", `${this.#path}/${name}`, { ...request, body: updated });
      this.#renewed(now, identity);
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      // A conflict is the race client-go expects: another replica wrote first.
      if (error instanceof ApiError && error.status === 409) return false;
      const text = error instanceof Error ? error.message : String(error);
      logger.warn("Leader election: the Lease {lease} could not be read or written: {error}", {
        lease: this.lease,
        error: text,
      });
      return false;
    }
  }

  #spec(now: number, mine: LeaseSpec | undefined): LeaseSpec {
    return {
      holderIdentity: this.#o.identity,
      leaseDurationSeconds: this.#o.leaseDuration,
      acquireTime: mine?.acquireTime ?? microTime(now),
      renewTime: microTime(now),
      leaseTransitions: mine?.leaseTransitions ?? 0,
    };
  }

  #renewed(now: number, identity: string): void {
    this.#lastRenew = now;
    this.#observed = { key: "", at: now, holder: identity };
  }

  /** Log who holds the Lease when that changes, and a renewTime far off this clock once. */
  #noteHolder(holder: string, spec: LeaseSpec, now: number): void {
    if (holder !== this.#lastHolder && holder !== this.#o.identity) {
      this.#lastHolder = holder;
      if (holder) {
        logger.info("Leader election: the Lease {lease} is held by {holder}; standing by.", {
          lease: this.lease,
          holder,
        });
      }
    }
    const renewed = spec.renewTime ? Date.parse(spec.renewTime) : NaN;
    if (!holder || holder === this.#o.identity) return;
    const offset = Number.isNaN(renewed) ? NaN : (renewed - now) / 1000;
    const warnKey = `${holder}/${spec.renewTime}`;
    const far = Number.isNaN(offset) || Math.abs(offset) > this.#o.leaseDuration;
    if (far && !this.#warned.has(warnKey)) {
      this.#warned.add(warnKey);
      if (this.#warned.size > 100) this.#warned.clear();
      logger.warn(
        "Leader election: the Lease {lease} of {holder} has renewTime {renewTime}, " +
          "{offset} s off this replica's clock (clock skew, or edited by hand?); its validity " +
          "is judged by when this replica saw it change, not by that time.",
        {
          lease: this.lease,
          holder,
          renewTime: spec.renewTime ?? "(none)",
          offset: Number.isNaN(offset) ? "unknown" : Math.round(offset),
        },
      );
    }
  }
}
