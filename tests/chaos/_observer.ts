/**
 * The suite's own view of the objects: a list/watch of one collection, straight to the real API
 * server with plain `fetch` and the admin token (never through the operator's client or a fault
 * proxy), recording when each outcome of the operator became visible on each object: the
 * diff-base (`kopf.zalando.org/last-handled-configuration`, per `spec.v`), progress annotations
 * (`kopf.zalando.org/<id>`), results (`status.<id>`), our finalizer, the deletion.
 *
 * Those times classify a repeated handler call: allowed only if the process that made the earlier
 * call was killed before that call's outcome was stored. The watch survives API server restarts
 * and etcd outages: it resumes from the last resource version, re-lists on 410 Gone, and asks the
 * server to end each stream after a few seconds so that a stream stuck during an outage is
 * replaced soon after.
 *
 * @module
 */
import type { Obj, TestCluster } from "../support/cluster.ts";
import { sleep } from "../support/wait.ts";

/** The diff-base annotation: its appearance means the handlers of a cause are done. */
export const DIFF_BASE = "kopf.zalando.org/last-handled-configuration";
/** The operator's finalizer. */
export const FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";
const PREFIX = "kopf.zalando.org/";

/** What the observer saw happen to one object (one uid), as wall-clock milliseconds. */
export interface Timeline {
  uid: string;
  name: string;
  /** When the observer first saw the object. */
  seenAt: number;
  /** When a diff-base first appeared: the creation's outcome was stored. */
  diffBaseAt?: number;
  /** When a diff-base holding each `spec.v` first appeared: that version was handled. */
  diffBaseVersions: Map<number, number>;
  /** When our finalizer first appeared. */
  finalizerAt?: number;
  /** When `metadata.deletionTimestamp` was first seen. */
  deletingAt?: number;
  /** When the object was first seen deleting without our finalizer, or gone: deletion handled. */
  releasedAt?: number;
  /** When the object was seen gone (a DELETED event, or missing from a re-list). */
  goneAt?: number;
  /** When each `status.<id>` and progress annotation `kopf.zalando.org/<id>` first appeared. */
  fieldsAt: Map<string, number>;
  /** The latest body seen. */
  last: Obj;
}

/** `spec.v` of a diff-base annotation's essence, or undefined when absent or unreadable. */
export function diffBaseVersion(body: Obj): number | undefined {
  const raw = body.metadata?.annotations?.[DIFF_BASE];
  if (typeof raw !== "string") return undefined;
  try {
    const v = JSON.parse(raw)?.spec?.v;
    return typeof v === "number" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A running observer; {@linkcode ObjectObserver.stop} it when done. */
export class ObjectObserver {
  /** Every object seen, by uid. */
  readonly timelines: Map<string, Timeline> = new Map();
  /** Watch streams that ended abnormally (errors, outages) and were re-opened. */
  reconnects = 0;
  /** Why, for the first few. */
  readonly reconnectReasons: string[] = [];
  /** Full lists made (the first one, and after 410 Gone). */
  lists = 0;

  readonly #c: TestCluster;
  readonly #path: string;
  readonly #client: Deno.HttpClient;
  readonly #stop = new AbortController();
  readonly #ready = Promise.withResolvers<void>();
  #done: Promise<void> = Promise.resolve();

  private constructor(c: TestCluster, path: string) {
    this.#c = c;
    this.#path = path;
    this.#client = Deno.createHttpClient({ caCerts: [c.caPem] });
  }

  /** Starts observing a collection, e.g. `/apis/kopf.dev/v1/namespaces/ns/kopfexamples`. */
  static async start(c: TestCluster, collectionPath: string): Promise<ObjectObserver> {
    const observer = new ObjectObserver(c, collectionPath);
    observer.#done = observer.#run();
    await observer.#ready.promise;
    return observer;
  }

  /** The latest timeline of the object named `name` (objects are never re-created here). */
  byName(name: string): Timeline | undefined {
    let found: Timeline | undefined;
    for (const t of this.timelines.values()) {
      if (t.name === name && (!found || t.seenAt > found.seenAt)) found = t;
    }
    return found;
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
    this.#client.close();
  }

  async #run(): Promise<void> {
    let version: string | undefined;
    while (!this.#stop.signal.aborted) {
      try {
        if (version === undefined) version = await this.#list();
        this.#ready.resolve();
        version = await this.#watch(version);
      } catch (error) {
        if (this.#stop.signal.aborted) break;
        this.reconnects++;
        if (this.reconnectReasons.length < 5) {
          this.reconnectReasons.push(error instanceof Error ? error.message : String(error));
        }
        if (error instanceof GoneError) version = undefined;
        await sleep(250);
      }
    }
    this.#ready.resolve();
  }

  #headers(): HeadersInit {
    return { Authorization: `Bearer ${this.#c.token}`, Accept: "application/json" };
  }

  /** Lists the collection, records every object, marks vanished ones gone; returns the version. */
  async #list(): Promise<string> {
    const response = await fetch(`${this.#c.server}${this.#path}`, {
      headers: this.#headers(),
      client: this.#client,
      signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(10_000)]),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`list: HTTP ${response.status}`);
    }
    const list = await response.json();
    const now = Date.now();
    const present = new Set<string>();
    for (const item of list.items as Obj[]) {
      present.add(item.metadata.uid);
      this.#record(item, now);
    }
    for (const t of this.timelines.values()) {
      if (!present.has(t.uid)) this.#gone(t, now);
    }
    this.lists++;
    return list.metadata.resourceVersion;
  }

  /** Follows one watch stream; returns the last version seen when it ends normally. */
  async #watch(version: string): Promise<string> {
    const idle = new AbortController();
    const url = `${this.#c.server}${this.#path}?watch=1&allowWatchBookmarks=true` +
      `&timeoutSeconds=10&resourceVersion=${version}`;
    // The server ends the stream after 10 s; a stream that stays silent past that is stuck.
    let timer = setTimeout(() => idle.abort(), 15_000);
    try {
      const response = await fetch(url, {
        headers: this.#headers(),
        client: this.#client,
        signal: AbortSignal.any([this.#stop.signal, idle.signal]),
      });
      if (response.status === 410) {
        await response.body?.cancel();
        throw new GoneError();
      }
      if (!response.ok || !response.body) {
        await response.body?.cancel();
        throw new Error(`watch: HTTP ${response.status}`);
      }
      let partial = "";
      for await (const text of response.body.pipeThrough(new TextDecoderStream())) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), 15_000);
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          if (!line.trim()) continue;
          const event = JSON.parse(line);
          if (event.type === "ERROR") {
            if (event.object?.code === 410) throw new GoneError();
            throw new Error(`watch: ERROR ${event.object?.message}`);
          }
          version = event.object?.metadata?.resourceVersion ?? version;
          if (event.type === "BOOKMARK") continue;
          const now = Date.now();
          if (event.type === "DELETED") {
            this.#record(event.object, now);
            this.#gone(this.timelines.get(event.object.metadata.uid)!, now);
          } else {
            this.#record(event.object, now);
          }
        }
      }
      return version;
    } finally {
      clearTimeout(timer);
    }
  }

  #record(body: Obj, now: number): void {
    const meta = body.metadata ?? {};
    let t = this.timelines.get(meta.uid);
    if (!t) {
      t = {
        uid: meta.uid,
        name: meta.name,
        seenAt: now,
        diffBaseVersions: new Map(),
        fieldsAt: new Map(),
        last: body,
      };
      this.timelines.set(meta.uid, t);
    }
    t.last = body;
    const annotations: Record<string, string> = meta.annotations ?? {};
    const finalizers: string[] = meta.finalizers ?? [];
    if (annotations[DIFF_BASE] !== undefined) {
      t.diffBaseAt ??= now;
      const v = diffBaseVersion(body);
      if (v !== undefined && !t.diffBaseVersions.has(v)) t.diffBaseVersions.set(v, now);
    }
    for (const key of Object.keys(annotations)) {
      if (key.startsWith(PREFIX) && key !== DIFF_BASE && !t.fieldsAt.has(key)) {
        t.fieldsAt.set(key, now);
      }
    }
    for (const key of Object.keys(body.status ?? {})) {
      if (!t.fieldsAt.has(`status.${key}`)) t.fieldsAt.set(`status.${key}`, now);
    }
    if (finalizers.includes(FINALIZER)) t.finalizerAt ??= now;
    if (meta.deletionTimestamp) {
      t.deletingAt ??= now;
      if (!finalizers.includes(FINALIZER)) t.releasedAt ??= now;
    }
  }

  #gone(t: Timeline, now: number): void {
    t.goneAt ??= now;
    t.releasedAt ??= now;
  }
}

/** A watch answered 410 Gone: the version is too old, list again. */
class GoneError extends Error {}
