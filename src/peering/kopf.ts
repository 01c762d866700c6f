/**
 * Kopf's peering (`kopf/_core/engines/peering.py`, 1.45), compatible on the wire so that a fleet
 * of Python Kopf and these operators sees each other: every operator keeps a record
 * `{priority, lifetime, lastseen}` under its identity in the `status` of a `KopfPeering`
 * (namespaced operators, in each served namespace) or `ClusterKopfPeering` (cluster-wide) object
 * of group `kopf.dev` (or the legacy `zalando.org`); an operator pauses while any live other has a
 * higher priority, and all pause (with Kopf's warning) while live others have the same one; dead
 * records (`lastseen + lifetime` past) are cleaned; on a graceful stop the own record is removed.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { GateHooks, ProcessingGate } from "../handling/contracts.ts";
import type { KubeClient } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import type { KubeObject, Resource } from "../kube/resource.ts";
import { listAndWatch } from "../kube/watch.ts";
import { sleepUnless } from "../kube/time.ts";
import type { PeeringSettings } from "../settings/settings.ts";

const logger = getLogger(["kopf", "peering"]);

/** One operator's record in a peering object's `status`, as Kopf writes it. */
export interface PeerRecord {
  priority?: number;
  lifetime?: number;
  lastseen?: string;
  [extra: string]: unknown;
}

/** A peer as judged now. */
export interface Peer {
  readonly identity: string;
  readonly priority: number;
  readonly lifetime: number;
  readonly lastseen: string;
  /** Milliseconds (epoch) after which it is dead. */
  readonly deadline: number;
  readonly dead: boolean;
}

/** Parses a peering object's `status` into peers, judged at `now` (Kopf's `Peer`). */
export function peersOf(status: unknown, now: number): Peer[] {
  if (!status || typeof status !== "object") return [];
  return Object.entries(status as Record<string, PeerRecord | null>).flatMap(([id, rec]) => {
    if (!rec || typeof rec !== "object") return [];
    const priority = Number(rec.priority ?? 0);
    const lifetime = Number(rec.lifetime ?? 60);
    const seen = rec.lastseen ? Date.parse(rec.lastseen) : now;
    const lastseen = Number.isNaN(seen) ? now : seen;
    const deadline = lastseen + lifetime * 1000;
    return [{
      identity: id,
      priority: Number.isFinite(priority) ? priority : 0,
      lifetime,
      lastseen: rec.lastseen ?? new Date(now).toISOString(),
      deadline,
      dead: deadline <= now,
    }];
  });
}

/** What an operator with `priority` must do among `peers` (Kopf's rules). */
export function verdict(
  peers: readonly Peer[],
  identity: string,
  priority: number,
): { pause: boolean; higher: Peer[]; same: Peer[]; dead: Peer[] } {
  const live = peers.filter((p) => !p.dead && p.identity !== identity);
  const higher = live.filter((p) => p.priority > priority);
  const same = live.filter((p) => p.priority === priority);
  return {
    pause: higher.length > 0 || same.length > 0,
    higher,
    same,
    dead: peers.filter((p) => p.dead),
  };
}

/** Kopf's rendering of peers in its log lines. */
function show(peers: readonly Peer[]): string {
  return `[${
    peers.map((p) =>
      `<Peer ${p.identity}: priority=${p.priority}, lifetime=${p.lifetime}, lastseen=${
        JSON.stringify(p.lastseen)
      }>`
    ).join(", ")
  }]`;
}

/** Kopf's peering resources: `kopf.dev` first, then the legacy `zalando.org`. */
const GROUPS = ["kopf.dev", "zalando.org"] as const;

function peeringResource(group: string, clusterwide: boolean): Resource {
  const kind = clusterwide ? "ClusterKopfPeering" : "KopfPeering";
  const singular = kind.toLowerCase();
  return {
    group,
    version: "v1",
    plural: `${singular}s`,
    kind,
    singular,
    shortcuts: [],
    categories: [],
    namespaced: !clusterwide,
    preferred: true,
    verbs: ["get", "list", "watch", "patch"],
    subresources: [],
  };
}

/** Kopf's identity: `$POD_ID`, else `user@host/<UTC time>/<3 random>` (`manual`: `user@host`). */
export function kopfIdentity(manual = false): string {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const pod = env("POD_ID");
  if (pod) return pod;
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys */ }
  const user = env("USER") ?? env("LOGNAME") ?? "kopf";
  if (manual) return `${user}@${host}`;
  const now = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const rnd = Array.from(
    { length: 3 },
    () => "abcdefhijklmnopqrstuvwxyz0123456789"[Math.floor(Math.random() * 35)],
  ).join("");
  return `${user}@${host}/${now}/${rnd}`;
}

/** Where an operator's peering objects are: the resource and the namespaces (`[undefined]`). */
export interface PeeringTarget {
  readonly resource: Resource;
  readonly namespaces: readonly (string | undefined)[];
  readonly name: string;
}

function objectPath(target: PeeringTarget, namespace: string | undefined): string {
  const r = target.resource;
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `/apis/${r.group}/${r.version}${ns}/${r.plural}/${encodeURIComponent(target.name)}`;
}

/**
 * Finds the peering resource the cluster serves (`kopf.dev`, else `zalando.org`), or `undefined`
 * when neither CRD exists.
 */
export async function findPeeringResource(
  client: Pick<KubeClient, "request">,
  clusterwide: boolean,
): Promise<Resource | undefined> {
  for (const group of GROUPS) {
    const resource = peeringResource(group, clusterwide);
    try {
      const list = await client.request<{ resources?: { name: string }[] }>(
        "GET",
        `/apis/${group}/v1`,
      );
      if (list.resources?.some((r) => r.name === resource.plural)) return resource;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) continue;
      throw error;
    }
  }
  return undefined;
}

/**
 * Writes (or, with `lifetime` 0, removes) one identity's record in the peering objects (Kopf's
 * `touch`): a merge patch of the main body (the peering CRDs have no status subresource).
 * Returns how many objects were found.
 */
export async function touch(
  client: Pick<KubeClient, "request">,
  target: PeeringTarget,
  identity: string,
  record: { priority: number; lifetime: number; message?: string },
): Promise<number> {
  const value = record.lifetime <= 0 ? null : {
    priority: record.priority,
    lifetime: record.lifetime,
    lastseen: new Date().toISOString().replace("Z", "+00:00"),
    ...(record.message ? { message: record.message } : {}),
  };
  let found = 0;
  for (const namespace of target.namespaces) {
    try {
      await client.request("PATCH", objectPath(target, namespace), {
        body: { status: { [identity]: value } },
        contentType: "application/merge-patch+json",
      });
      found++;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
    }
  }
  return found;
}

/**
 * The gate of Kopf's peering: admits everything while no live peer has the same or a higher
 * priority in any of this operator's peering objects; admits nothing until the first verdict.
 */
export class KopfPeeringGate implements ProcessingGate {
  readonly name = "kopf-peering";
  readonly #settings: PeeringSettings;
  readonly #stop = new AbortController();
  #hooks: GateHooks | undefined;
  #target: PeeringTarget | undefined;
  #identity = "";
  /** Per namespace: whether it says to pause (absent: not known yet). */
  readonly #pauses = new Map<string, boolean>();
  #paused = true;
  #pausedForPeers = false;
  #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #tasks: Promise<void>[] = [];
  readonly #touching = new Set<string>();

  /** A gate for these settings; nothing happens until {@linkcode KopfPeeringGate.start}. */
  constructor(settings: PeeringSettings) {
    this.#settings = settings;
  }

  /** Whether peering is on (`false`: standalone, the CRD or the object is absent). */
  get active(): boolean {
    return this.#target !== undefined;
  }

  /** Decide whether peering applies (Kopf's auto-detection): `false` when standalone after all. */
  async #prepare(hooks: GateHooks): Promise<boolean> {
    const s = this.#settings;
    const clusterwide = s.clusterwide || !hooks.namespaces?.length;
    const namespaces: (string | undefined)[] = [];
    if (!clusterwide) {
      for (const n of hooks.namespaces ?? []) {
        if (typeof n !== "string" || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n)) {
          logger.error(
            "Kopf's peering: namespace pattern {pattern} is not a plain name; peering needs the " +
              "namespaces by name (-n NAME), or --standalone. Running standalone.",
            { pattern: String(n) },
          );
          return false;
        }
        namespaces.push(n);
      }
    } else namespaces.push(undefined);
    const resource = await findPeeringResource(hooks.client, clusterwide);
    const kind = clusterwide ? "ClusterKopfPeering" : "KopfPeering";
    if (!resource) {
      if (s.mandatory) {
        throw new Error(
          `the peering ${s.name} was asked for (--peering), but the ${kind} CRD is not in the ` +
            `cluster (apply Kopf's peering.yaml)`,
        );
      }
      logger.debug("No {kind} CRD: running standalone.", { kind });
      return false;
    }
    const target: PeeringTarget = { resource, namespaces, name: s.name };
    if (!s.mandatory) {
      // Auto-detection: peer only if the peering object exists (in any served namespace).
      let exists = false;
      for (const namespace of namespaces) {
        try {
          await hooks.client.request("GET", objectPath(target, namespace));
          exists = true;
        } catch (error) {
          if (error instanceof ApiError && error.status === 403) {
            // Auto-detection must not stop an operator that was never granted peering.
            logger.warn(
              "Kopf's peering: no permission to read {kind} {name}{where} ({message}); running " +
                "standalone (grant get/list/watch/patch on it, or pass --standalone).",
              {
                kind,
                name: s.name,
                where: namespace ? ` in ${namespace}` : "",
                message: error.serverMessage,
              },
            );
            return false;
          }
          if (!(error instanceof ApiError) || error.status !== 404) throw error;
        }
      }
      if (!exists) {
        logger.debug("No {kind} {name}: running standalone.", { kind, name: s.name });
        return false;
      }
    }
    this.#target = target;
    return true;
  }

  async start(hooks: GateHooks): Promise<void> {
    if (!(await this.#prepare(hooks))) return;
    const target = this.#target;
    if (!target) return;
    this.#hooks = hooks;
    this.#identity = this.#settings.identity ?? kopfIdentity();
    const where = target.resource.namespaced
      ? `${target.resource.kind} ${target.name} in ${target.namespaces.join(", ")}`
      : `${target.resource.kind} ${target.name}`;
    logger.info(
      "Peering as {identity} with priority {priority} in {where} ({group}); handling nothing " +
        "until the peers are known.",
      {
        identity: this.#identity,
        priority: this.#settings.priority,
        where,
        group: target.resource.group,
      },
    );
    this.#tasks.push(this.#keepalive(hooks.client, target));
    for (const namespace of target.namespaces) {
      this.#tasks.push(this.#watch(hooks.client, target, namespace));
    }
  }

  admits(): boolean {
    return this.#target === undefined || !this.#paused;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    for (const timer of this.#timers.values()) clearTimeout(timer);
    await Promise.allSettled(this.#tasks);
    const target = this.#target;
    const hooks = this.#hooks;
    if (!target || !hooks) return;
    try {
      await touch(hooks.client, target, this.#identity, { priority: 0, lifetime: 0 });
    } catch (error) {
      logger.warn("Could not remove self from the peering: {error}", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  async #keepalive(client: KubeClient, target: PeeringTarget): Promise<void> {
    const s = this.#settings;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        const found = await touch(client, target, this.#identity, s);
        if (!s.stealth || !found) {
          logger.debug("Keep-alive in {name}: {result}.", {
            name: target.name,
            result: found ? "ok" : "not found",
          });
        }
      } catch (error) {
        logger.warn("Keep-alive in {name} failed: {error}", {
          name: target.name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      // Kopf: a little less than the lifetime, jittered by 5–10 s.
      const duration = Math.min(s.lifetime, Math.max(1, s.lifetime - 5 - Math.random() * 5));
      await sleepUnless(duration, signal);
    }
  }

  async #watch(
    client: KubeClient,
    target: PeeringTarget,
    namespace: string | undefined,
  ): Promise<void> {
    const key = namespace ?? "";
    const signal = this.#stop.signal;
    const watch = listAndWatch(client, target.resource, {
      namespace,
      fieldSelector: `metadata.name=${target.name}`,
      signal,
    });
    try {
      for await (const event of watch) {
        if (signal.aborted) break;
        if (event.type === "SYNCED") {
          // Listed: an absent object decides nothing yet (mandatory peering pauses meanwhile).
          if (!this.#pauses.has(key)) {
            if (this.#settings.mandatory) {
              logger.warn(
                "The peering object {name}{where} does not exist; pausing until it does " +
                  "(--peering makes it mandatory).",
                { name: target.name, where: namespace ? ` in ${namespace}` : "" },
              );
            }
            this.#judge(key, undefined);
          }
          continue;
        }
        if (event.type === "MISSING") {
          logger.error("The {kind} CRD is gone; pausing until it is back.", {
            kind: target.resource.kind,
          });
          this.#judge(key, undefined, true);
          continue;
        }
        if (event.type === "DELETED") {
          logger.warn(
            "The peering object {name}{where} was deleted while running; " +
              (this.#settings.mandatory ? "pausing until it is back." : "running unpaused."),
            { name: target.name, where: namespace ? ` in ${namespace}` : "" },
          );
          this.#judge(key, undefined);
          continue;
        }
        this.#judge(key, event.object);
      }
    } catch (error) {
      if (!signal.aborted) logger.error("Watching the peering failed: {error}", { error });
    }
  }

  /** Re-judge one peering object (`undefined`: absent), then the whole operator. */
  #judge(key: string, object: KubeObject | undefined, missing = false): void {
    const s = this.#settings;
    clearTimeout(this.#timers.get(key));
    if (!object) {
      this.#pauses.set(key, missing || s.mandatory);
      return this.#update();
    }
    const now = Date.now();
    const status = (object as { status?: Record<string, unknown> }).status;
    if (!status?.[this.#identity] && this.#target && this.#hooks && !this.#touching.has(key)) {
      // The object appeared (or our record was removed): say we are here now, not at the next
      // keep-alive, so that the others can judge us.
      this.#touching.add(key);
      const target = { ...this.#target, namespaces: [key || undefined] };
      void touch(this.#hooks.client, target, this.#identity, s).catch(() => {}).finally(() =>
        this.#touching.delete(key)
      );
    }
    const peers = peersOf(status, now);
    const { higher, same, dead } = verdict(peers, this.#identity, s.priority);
    if (dead.length && this.#target && this.#hooks) {
      const patch = Object.fromEntries(dead.map((p) => [p.identity, null]));
      const namespace = key || undefined;
      void this.#hooks.client.request("PATCH", objectPath(this.#target, namespace), {
        body: { status: patch },
        contentType: "application/merge-patch+json",
      }).catch(() => {});
    }
    const was = this.#pauses.get(key) === true; // this object's last verdict was a pause
    if (higher.length) {
      if (!was) logger.info(`Pausing operations in favour of ${show(higher)}.`);
    } else if (same.length) {
      logger.warn(`Possibly conflicting operators with the same priority: ${show(same)}.`);
      if (!was) logger.warn(`Pausing all operators, including self: ${show(peers)}`);
    }
    this.#pauses.set(key, higher.length > 0 || same.length > 0);
    if (higher.length || same.length) this.#pausedForPeers = true;
    // Re-judge when the earliest blocking peer is due to die (no event comes for that).
    const deadlines = [...higher, ...same].map((p) => p.deadline - now);
    if (deadlines.length) {
      const delay = Math.max(0, Math.min(...deadlines)) + 100;
      this.#timers.set(key, setTimeout(() => this.#judge(key, object), delay));
    }
    this.#update();
  }

  #update(): void {
    const target = this.#target;
    if (!target) return;
    const known = target.namespaces.every((n) => this.#pauses.has(n ?? ""));
    const paused = !known || [...this.#pauses.values()].some(Boolean);
    if (paused === this.#paused) return;
    this.#paused = paused;
    if (!paused && this.#pausedForPeers) {
      this.#pausedForPeers = false;
      logger.info("Resuming operations after the pause.");
    }
    void this.#hooks?.changed();
  }
}
