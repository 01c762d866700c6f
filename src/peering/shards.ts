/**
 * Sharding objects across active replicas (`--shards auto`): every replica keeps a shard Lease
 * labelled with the ring's name; the live Leases are the members; the 64-bit FNV-1a hash of an
 * object's `metadata.uid` (the hash of KEP-5866's `shardRange`) places it in one of the ring's
 * slots (`Ring`: equal slices of the hash space shared out by rendezvous hashing), and the slot's
 * owner handles it.
 *
 * Hand-overs never let two replicas handle one object at once: each replica publishes on its
 * Lease the member list (its *view*) its ranges come from, and handles only what it owns under
 * its published view that no other live member claims under *its* published view. When the
 * members change, a replica first stops and drains what it loses (handlers signalled and ended,
 * daemons and timers stopped), then publishes the new view; others take those ranges once they
 * see it. A dead replica's claims count until its Lease expires (by this replica's clock since it
 * last saw the Lease change).
 *
 * What a replica watches: the ranges it owns under its published view, as a `shardSelector` on
 * its LISTs and WATCHes (`watchSelector()`; the reactor re-scopes its informers when it changes).
 * A kube-apiserver with the `ShardedListAndWatch` feature gate (v1.36+) then sends each replica
 * only its share; one without it ignores the selector (it does not echo it back), and the watch
 * falls back to every object, filtered here on the same hash (`kube/watch.ts` says which in the
 * log). The check here is made in both cases: what is watched can be wider than what is admitted
 * during a hand-over.
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
/** Slots of the hash space when members are few: shares within ±1/64 of even, ≤ 64 ranges. */
const MIN_SLOTS = 64;
/** The golden ratio's 64-bit fraction: spreads slot numbers before mixing. */
const GOLDEN = 0x9e3779b97f4a7c15n;
/** The size of the hash space (hashes are below it). */
const SPACE = 1n << 64n;

/** splitmix64's finalizer: spreads scores (FNV-1a alone clusters similar names). */
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

/**
 * Who owns which hashes: the 64-bit space cut into equal slots (64, or 4 per member beyond 16
 * members), each given to one member by rendezvous hashing with bounded loads — every member
 * holds ⌊slots/members⌋ or one more, and a join or a leave moves few slots besides the ones it
 * must. Equal slots keep each member's share a few contiguous ranges, so that one KEP-5866
 * `shardSelector` of ≤ 64 `shardRange`s tells the API server what a replica watches (a ring of
 * random points would need hundreds of ranges per member to split as evenly).
 */
export class Ring {
  /** The sorted members it was built from. */
  readonly members: readonly string[];
  /** The owner of each slot, by slot number. */
  readonly #owners: string[];
  /** log2 of the slot count. */
  readonly #bits: bigint;
  /** The width of a slot. */
  readonly #width: bigint;

  /** A ring of `members` (order does not matter). */
  constructor(members: readonly string[]) {
    this.members = [...new Set(members)].sort();
    const count = this.members.length;
    let slots = MIN_SLOTS;
    while (slots < count * 4) slots *= 2;
    this.#bits = BigInt(Math.log2(slots));
    this.#width = SPACE >> this.#bits;
    this.#owners = new Array(slots);
    if (!count) return;
    const base = Math.floor(slots / count);
    const room = this.members.map((_, i) => base + (i < slots % count ? 1 : 0));
    const seeds = this.members.map((member) => fnv1a64(member));
    const bids: { score: bigint; slot: number; member: number }[] = [];
    for (let slot = 0; slot < slots; slot++) {
      const salt = (BigInt(slot) * GOLDEN) & MASK;
      seeds.forEach((seed, member) => bids.push({ score: mix(seed ^ salt), slot, member }));
    }
    bids.sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : 0));
    let left = slots;
    for (const { slot, member } of bids) {
      if (this.#owners[slot] !== undefined || room[member] === 0) continue;
      this.#owners[slot] = this.members[member];
      room[member]--;
      if (--left === 0) break;
    }
  }

  /** Where each slot starts: the only places where ownership can change. */
  get cuts(): bigint[] {
    return Array.from({ length: this.#owners.length }, (_, i) => BigInt(i) * this.#width);
  }

  /** The member that owns `hash`. */
  owner(hash: bigint): string | undefined {
    return this.#owners[Number(hash >> (64n - this.#bits))];
  }

  /** The sorted, merged hash intervals `[start, end)` that `member` owns. */
  ranges(member: string): [bigint, bigint][] {
    const width = this.#width;
    const result: [bigint, bigint][] = [];
    this.#owners.forEach((owner, i) => {
      if (owner !== member) return;
      const start = BigInt(i) * width;
      const last = result.at(-1);
      if (last && last[1] === start) last[1] = start + width;
      else result.push([start, start + width]);
    });
    return result;
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
  const cuts = new Set<bigint>(view.cuts);
  for (const ring of others.values()) {
    for (const cut of ring.cuts) cuts.add(cut);
  }
  const sorted = [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const result: [bigint, bigint][] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i];
    const end = i + 1 < sorted.length ? sorted[i + 1] : SPACE;
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

/**
 * The KEP-5866 shard selector of hash intervals over `metadata.uid`: `shardRange(...)` clauses
 * joined by `||` (the grammar has no other operator); `undefined` for the whole space.
 *
 * @example
 * ```ts
 * import { shardSelector } from "./shards.ts";
 *
 * shardSelector([[0n, 1n << 63n]]);
 * // "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')"
 * ```
 */
export function shardSelector(intervals: readonly [bigint, bigint][]): string | undefined {
  if (intervals.length === 1 && intervals[0][0] === 0n && intervals[0][1] === SPACE) {
    return undefined;
  }
  // The server wants 16 hex digits (17 for the end of the space, 2^64, which it accepts).
  const hex = (n: bigint) => `'0x${n.toString(16).padStart(16, "0")}'`;
  const clauses = intervals.map(([start, end]) =>
    `shardRange(object.metadata.uid, ${hex(start)}, ${hex(end)})`
  );
  // Owning nothing: the server refuses empty ranges; the narrowest one matches (almost) nothing,
  // and the gate's own check filters the rest.
  return clauses.join(" || ") || `shardRange(object.metadata.uid, ${hex(0n)}, ${hex(1n)})`;
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
  /** The shard selector of what this replica watches: its ranges under its published view. */
  #scope: string | undefined;
  #lastRenew = 0;
  /** Other members' Leases as last seen, and when they were seen to change (this clock). */
  readonly #seen = new Map<string, { key: string; at: number; lease: Lease }>();
  readonly #hashes = new Map<string, bigint>();
  /** Other members' last readable published views. */
  readonly #views = new Map<string, string[]>();
  /** What was said once (per holder and cause), so that a broken Lease is one line. */
  readonly #said = new Set<string>();
  #task: Promise<void> | undefined;

  /** A gate for these settings; nothing happens until {@linkcode ShardGate.start}. */
  constructor(settings: PeeringSettings) {
    this.#settings = settings;
  }

  async start(hooks: GateHooks): Promise<void> {
    const s = this.#settings;
    this.#hooks = hooks;
    this.#identity = s.identity ?? leaseIdentity();
    this.#namespace = leaseNamespace(s.leaseNamespace, hooks.namespaces);
    this.#ring = s.leaseName ?? `kopf-${s.name}`;
    this.#leaseName = `${this.#ring}-${fnv1a64(this.#identity).toString(16)}`;
    logger.info(
      "Sharding: joining the ring {ring} in {namespace} as {identity} (Lease {lease}); " +
        "watching its share by shardSelector where the API server applies it, else " +
        "filtering on the FNV-1a hash of metadata.uid here.",
      {
        ring: this.#ring,
        namespace: this.#namespace,
        identity: this.#identity,
        lease: this.#leaseName,
      },
    );
    // Joined before the informers start, so that their first listing is already this share.
    try {
      await this.#tick(hooks.client);
    } catch (error) {
      logger.warn("Sharding: could not join the ring {ring} yet: {error}", {
        ring: this.#ring,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    this.#task = this.#run(hooks.client).catch((error) => {
      logger.error("Sharding failed: {error}", { error });
    });
  }

  watchSelector(): string | undefined {
    return this.#scope;
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
    // Handling has drained: release the Lease (no holder, no claims), so that the others take
    // over at their next look, and leave its deletion to them. A Lease that vanishes instead
    // would keep its ranges claimed until it expired: the others cannot tell a graceful leave
    // from a deletion by hand while this replica still handles.
    try {
      await this.#hooks?.client.request("PATCH", this.#path(this.#leaseName), {
        body: {
          metadata: { annotations: { [VIEW_ANNOTATION]: "[]" } },
          spec: { holderIdentity: null },
        },
        contentType: "application/merge-patch+json",
        timeoutMs: 5000,
      });
      logger.info("Sharding: left the ring {ring}.", { ring: this.#ring });
    } catch (error) {
      logger.warn("Sharding: could not release the Lease {lease}: {error}", {
        lease: this.#leaseName,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** How long a member's Lease is valid after it was seen to change, ms. */
  #durationMs(lease: Lease): number {
    return (lease.spec?.leaseDurationSeconds ?? this.#settings.leaseDuration) * 1000;
  }

  /** Deletes another replica's released or long-expired Lease (best effort: any may do it). */
  async #forget(client: KubeClient, lease: Lease, why: string): Promise<void> {
    try {
      // Only in the state seen: one renewed meanwhile is not deleted (409).
      await client.request("DELETE", this.#path(lease.metadata.name), {
        body: { preconditions: { resourceVersion: lease.metadata.resourceVersion } },
        timeoutMs: 5000,
      });
      logger.debug("Sharding: deleted the {why} Lease {lease}.", {
        why,
        lease: lease.metadata.name,
      });
    } catch (error) {
      // Gone already, renewed since, or not ours to delete: the ring works without it.
      logger.debug("Sharding: could not delete the {why} Lease {lease}: {error}", {
        why,
        lease: lease.metadata.name,
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
      await sleepUnless(s.retryPeriod, signal);
      if (signal.aborted) break;
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
    }
  }

  async #tick(client: KubeClient): Promise<void> {
    const now = Date.now();
    await this.#renew(client, now);
    const list = await client.request<{ items?: Lease[] }>("GET", this.#path(), {
      query: { labelSelector: `${RING_LABEL}=${this.#ring}` },
    });
    const live = new Map<string, Ring>();
    const present = new Set<string>();
    for (const lease of list.items ?? []) {
      const holder = lease.spec?.holderIdentity;
      if (holder === this.#identity || lease.metadata.name === this.#leaseName) continue;
      if (!holder) {
        // Released by a replica that left: it claims nothing now; not a member; cleaned up.
        for (const [left, seen] of this.#seen) {
          if (seen.lease.metadata.name !== lease.metadata.name) continue;
          this.#seen.delete(left);
          this.#views.delete(left);
        }
        await this.#forget(client, lease, "released");
        continue;
      }
      present.add(holder);
      const key = `${lease.metadata.resourceVersion}`;
      const seen = this.#seen.get(holder);
      if (seen?.key !== key) this.#seen.set(holder, { key, at: now, lease });
      const at = this.#seen.get(holder)!.at;
      const duration = this.#durationMs(lease);
      if (at + duration <= now) {
        // Expired by this clock: its claims are void; long expired, it is cleaned up.
        if (at + 2 * duration <= now) await this.#forget(client, lease, "expired");
        continue;
      }
      const raw = (lease.metadata as { annotations?: Record<string, string> }).annotations
        ?.[VIEW_ANNOTATION];
      let view: string[];
      try {
        view = raw ? JSON.parse(raw) : [];
        if (!Array.isArray(view)) throw new TypeError("not a list");
        this.#views.set(holder, view.map(String));
      } catch {
        // Its holder may still handle what its last readable view gave it (or, never seen, all).
        view = this.#views.get(holder) ?? [holder];
        if (!this.#said.has(`${holder}\u0000${raw}`)) {
          this.#said.add(`${holder}\u0000${raw}`);
          logger.warn(
            "Sharding: the Lease {lease} has an unreadable {annotation} (edited by hand?); " +
              "taking it to claim what it claimed before.",
            { lease: lease.metadata.name, annotation: VIEW_ANNOTATION },
          );
        }
      }
      live.set(holder, new Ring(view.map(String)));
    }
    for (const [holder, seen] of this.#seen) {
      if (present.has(holder)) continue;
      // Gone without being released (deleted by hand?): its holder may still be handling its
      // ranges, so they stay claimed until the Lease would have expired.
      if (seen.at + this.#durationMs(seen.lease) > now) {
        if (!this.#said.has(`${holder}\u0000gone`)) {
          this.#said.add(`${holder}\u0000gone`);
          logger.warn(
            "Sharding: the Lease {lease} of {holder} is gone without being released (deleted " +
              "by hand?); its ranges are taken once it would have expired.",
            { lease: seen.lease.metadata.name, holder },
          );
        }
        live.set(holder, new Ring(this.#views.get(holder) ?? [holder]));
      } else {
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
      // Watched from now on: what this view gives, before any of it is admitted.
      this.#scope = shardSelector(target.ranges(this.#identity));
      logger.info("Sharding: the ring {ring} has {count} member(s) now: {members}.", {
        ring: this.#ring,
        count: members.length,
        members: members.join(", "),
      });
      await this.#hooks?.changed();
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
