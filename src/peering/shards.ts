/**
 * Sharding objects across active replicas (`--shards auto`): every replica keeps a shard Lease
 * labelled with the ring's name; the live Leases are the members; the 64-bit FNV-1a hash of an
 * object's `metadata.uid` (the hash of KEP-5866's `shardRange`) places it on a consistent hash
 * ring over the members, and its owner handles it.
 *
 * Hand-overs never let two replicas handle one object at once: each replica publishes on its
 * Lease the member list (its *view*) its ranges come from, and handles only what it owns under
 * its published view that no other live member claims under *its* published view. When the
 * members change, a replica first stops and drains what it loses (handlers signalled and ended,
 * daemons and timers stopped), then publishes the new view; others take those ranges once they
 * see it. A dead replica's claims count until its Lease expires (by this replica's clock since it
 * last saw the Lease change).
 *
 * Every replica watches every object (client-side filtering): the server-side `shardSelector`
 * (`kube/watch.ts`) is not driven by the ring yet.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { GateHooks, ProcessingGate } from "../handling/contracts.ts";
import type { KubeClient } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import type { KubeObject, ObjectKey } from "../kube/resource.ts";
import { sleepUnless } from "../kube/time.ts";
import type { PeeringSettings } from "../settings/settings.ts";
import { leaseIdentity, leaseNamespace } from "./gates.ts";
import type { Lease } from "./leases.ts";

const logger = getLogger(["kopf", "peering"]);

const MASK = (1n << 64n) - 1n;
const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;

/** The label of shard Leases: the ring's name. */
export const RING_LABEL = "kopf.dev/shard-ring";
/** The annotation of shard Leases: the member list the holder's ranges come from. */
export const VIEW_ANNOTATION = "kopf.dev/shard-view";
/** Points per member on the ring (more: a more even split; 1024 keeps shares within ~3 %). */
const VNODES = 1024;

/** splitmix64's finalizer: spreads the ring's points (FNV-1a alone clusters similar names). */
function mix(x: bigint): bigint {
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return x ^ (x >> 31n);
}

/**
 * The 64-bit FNV-1a hash of a string's UTF-8 bytes (KEP-5866's `shardRange` hash).
 *
 * @example
 * ```ts
 * import { fnv1a64 } from "./shards.ts";
 *
 * fnv1a64(""); // 0xcbf29ce484222325n
 * ```
 */
export function fnv1a64(text: string): bigint {
  let hash = OFFSET;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * PRIME) & MASK;
  }
  return hash;
}

/** A consistent hash ring over members: who owns a hash. */
export class Ring {
  /** The sorted members it was built from. */
  readonly members: readonly string[];
  readonly #points: { at: bigint; member: string }[];

  /** A ring of `members` (order does not matter). */
  constructor(members: readonly string[]) {
    this.members = [...new Set(members)].sort();
    this.#points = this.members.flatMap((member) =>
      Array.from({ length: VNODES }, (_, i) => ({ at: mix(fnv1a64(`${member}#${i}`)), member }))
    ).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /** The positions where ownership changes. */
  get boundaries(): bigint[] {
    return this.#points.map((p) => p.at);
  }

  /** The member that owns `hash`: the first point at or after it, clockwise. */
  owner(hash: bigint): string | undefined {
    const points = this.#points;
    if (!points.length) return undefined;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (points[mid].at < hash) lo = mid + 1;
      else hi = mid;
    }
    return points[lo === points.length ? 0 : lo].member;
  }
}

/**
 * The hash intervals `[start, end)` that `identity` may handle: owned under its own `view`, and
 * claimed by none of the `others` (member → its published view).
 */
export function admittedIntervals(
  identity: string,
  view: Ring,
  others: ReadonlyMap<string, Ring>,
): [bigint, bigint][] {
  const cuts = new Set<bigint>([0n, ...view.boundaries.map((b) => (b + 1n) & MASK)]);
  for (const ring of others.values()) {
    for (const b of ring.boundaries) cuts.add((b + 1n) & MASK);
  }
  const sorted = [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const result: [bigint, bigint][] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i];
    const end = i + 1 < sorted.length ? sorted[i + 1] : MASK + 1n;
    if (view.owner(start) !== identity) continue;
    let claimed = false;
    for (const [member, ring] of others) {
      if (ring.owner(start) === member) {
        claimed = true;
        break;
      }
    }
    if (claimed) continue;
    const last = result.at(-1);
    if (last && last[1] === start) last[1] = end;
    else result.push([start, end]);
  }
  return result;
}

/** Whether `hash` is in the sorted disjoint `intervals`. */
function within(intervals: readonly [bigint, bigint][], hash: bigint): boolean {
  let lo = 0;
  let hi = intervals.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [start, end] = intervals[mid];
    if (hash < start) hi = mid - 1;
    else if (hash >= end) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Kubernetes' MicroTime (six fractional digits). */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The gate of sharding: admits the objects whose uid hashes into this replica's intervals. */
export class ShardGate implements ProcessingGate {
  readonly name = "shards";
  readonly #settings: PeeringSettings;
  readonly #stop = new AbortController();
  #hooks: GateHooks | undefined;
  #identity = "";
  #namespace = "";
  #ring = "";
  #leaseName = "";
  /** The view this replica has published (what it may handle comes from it). */
  #view = new Ring([]);
  #intervals: [bigint, bigint][] = [];
  #lastRenew = 0;
  /** Other members' Leases as last seen, and when they were seen to change (this clock). */
  readonly #seen = new Map<string, { key: string; at: number; lease: Lease }>();
  readonly #hashes = new Map<string, bigint>();
  /** Other members' last readable published views. */
  readonly #views = new Map<string, string[]>();
  #task: Promise<void> | undefined;

  /** A gate for these settings; nothing happens until {@linkcode ShardGate.start}. */
  constructor(settings: PeeringSettings) {
    this.#settings = settings;
  }

  start(hooks: GateHooks): void {
    const s = this.#settings;
    this.#hooks = hooks;
    this.#identity = s.identity ?? leaseIdentity();
    this.#namespace = leaseNamespace(s.leaseNamespace, hooks.namespaces);
    this.#ring = s.leaseName ?? `kopf-${s.name}`;
    this.#leaseName = `${this.#ring}-${fnv1a64(this.#identity).toString(16)}`;
    logger.info(
      "Sharding: joining the ring {ring} in {namespace} as {identity} (Lease {lease}); " +
        "client-side filtering on the FNV-1a hash of metadata.uid.",
      {
        ring: this.#ring,
        namespace: this.#namespace,
        identity: this.#identity,
        lease: this.#leaseName,
      },
    );
    this.#task = this.#run(hooks.client).catch((error) => {
      logger.error("Sharding failed: {error}", { error });
    });
  }

  admits(_key: ObjectKey, object: KubeObject | undefined): boolean {
    const uid = object?.metadata?.uid;
    if (!uid || !this.#intervals.length) return false;
    if (Date.now() - this.#lastRenew > this.#settings.renewDeadline * 1000) return false;
    let hash = this.#hashes.get(uid);
    if (hash === undefined) {
      hash = fnv1a64(uid);
      if (this.#hashes.size > 100_000) this.#hashes.clear();
      this.#hashes.set(uid, hash);
    }
    return within(this.#intervals, hash);
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#task;
    // Handling has drained: leave the ring at once, so that the others take over now.
    try {
      await this.#hooks?.client.request("DELETE", this.#path(this.#leaseName), { timeoutMs: 5000 });
      logger.info("Sharding: left the ring {ring}.", { ring: this.#ring });
    } catch (error) {
      logger.warn("Sharding: could not delete the Lease {lease}: {error}", {
        lease: this.#leaseName,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  #path(name?: string): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${
      encodeURIComponent(this.#namespace)
    }/leases`;
    return name ? `${base}/${name}` : base;
  }

  async #run(client: KubeClient): Promise<void> {
    const s = this.#settings;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        await this.#tick(client);
      } catch (error) {
        if (signal.aborted) break;
        logger.warn("Sharding: the ring {ring} could not be read or renewed: {error}", {
          ring: this.#ring,
          error: error instanceof Error ? error.message : String(error),
        });
        if (this.#intervals.length && Date.now() - this.#lastRenew > s.renewDeadline * 1000) {
          // Others will count this replica dead soon: stop handling before they take over.
          logger.warn("Sharding: could not renew for {deadline} s; handling nothing until back.", {
            deadline: s.renewDeadline,
          });
          this.#intervals = [];
          this.#view = new Ring([]);
          await this.#hooks?.changed();
        }
      }
      await sleepUnless(s.retryPeriod, signal);
    }
  }

  async #tick(client: KubeClient): Promise<void> {
    const now = Date.now();
    const s = this.#settings;
    await this.#renew(client, now);
    const list = await client.request<{ items?: Lease[] }>("GET", this.#path(), {
      query: { labelSelector: `${RING_LABEL}=${this.#ring}` },
    });
    const live = new Map<string, Ring>();
    const present = new Set<string>();
    for (const lease of list.items ?? []) {
      const holder = lease.spec?.holderIdentity;
      if (!holder || holder === this.#identity) continue;
      present.add(holder);
      const key = `${lease.metadata.resourceVersion}`;
      const seen = this.#seen.get(holder);
      if (seen?.key !== key) this.#seen.set(holder, { key, at: now, lease });
      const at = this.#seen.get(holder)!.at;
      const duration = (lease.spec?.leaseDurationSeconds ?? s.leaseDuration) * 1000;
      if (at + duration <= now) continue; // expired by this clock: its claims are void
      let view: string[];
      try {
        const raw = (lease.metadata as { annotations?: Record<string, string> }).annotations
          ?.[VIEW_ANNOTATION];
        view = raw ? JSON.parse(raw) : [];
        if (!Array.isArray(view)) throw new TypeError("not a list");
        this.#views.set(holder, view.map(String));
      } catch {
        // Its holder may still handle what its last readable view gave it (or, never seen, all).
        view = this.#views.get(holder) ?? [holder];
        logger.warn(
          "Sharding: the Lease {lease} has an unreadable {annotation} (edited by hand?); " +
            "taking it to claim what it claimed before.",
          { lease: lease.metadata.name, annotation: VIEW_ANNOTATION },
        );
      }
      live.set(holder, new Ring(view.map(String)));
    }
    for (const holder of this.#seen.keys()) {
      if (!present.has(holder)) {
        this.#seen.delete(holder);
        this.#views.delete(holder);
      }
    }
    const members = [this.#identity, ...live.keys()].sort();
    const target = new Ring(members);
    if (target.members.join("\n") !== this.#view.members.join("\n")) {
      // Stop and drain what this replica loses, before it says (publishes) so.
      this.#intervals = intersect(
        this.#intervals,
        admittedIntervals(this.#identity, target, new Map()),
      );
      await this.#hooks?.changed();
      this.#view = target;
      await this.#renew(client, Date.now());
      logger.info("Sharding: the ring {ring} has {count} member(s) now: {members}.", {
        ring: this.#ring,
        count: members.length,
        members: members.join(", "),
      });
    }
    const intervals = admittedIntervals(this.#identity, this.#view, live);
    if (!sameIntervals(intervals, this.#intervals)) {
      this.#intervals = intervals;
      await this.#hooks?.changed();
    }
  }

  async #renew(client: KubeClient, now: number): Promise<void> {
    const s = this.#settings;
    const metadata = {
      name: this.#leaseName,
      namespace: this.#namespace,
      labels: { [RING_LABEL]: this.#ring },
      annotations: { [VIEW_ANNOTATION]: JSON.stringify(this.#view.members) },
    };
    const spec = {
      holderIdentity: this.#identity,
      leaseDurationSeconds: s.leaseDuration,
      renewTime: microTime(now),
    };
    const body = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata, spec };
    try {
      // Only this replica writes its Lease: a merge patch needs no resourceVersion.
      await client.request("PATCH", this.#path(this.#leaseName), {
        body,
        contentType: "application/merge-patch+json",
        timeoutMs: 5000,
      });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
      await client.request("POST", this.#path(), { body, timeoutMs: 5000 });
    }
    this.#lastRenew = now;
  }
}

/** The intersection of two sorted disjoint interval lists. */
function intersect(
  a: readonly [bigint, bigint][],
  b: readonly [bigint, bigint][],
): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const start = a[i][0] > b[j][0] ? a[i][0] : b[j][0];
    const end = a[i][1] < b[j][1] ? a[i][1] : b[j][1];
    if (start < end) out.push([start, end]);
    if (a[i][1] < b[j][1]) i++;
    else j++;
  }
  return out;
}

function sameIntervals(a: readonly [bigint, bigint][], b: readonly [bigint, bigint][]): boolean {
  return a.length === b.length && a.every(([s, e], i) => s === b[i][0] && e === b[i][1]);
}
