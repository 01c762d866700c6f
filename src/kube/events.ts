/**
 * Posting Kubernetes Events about objects (`kopf.event/info/warn/exception`), aggregated.
 *
 * Events keep Kopf's shape (core v1, `generateName: kopf-event-`, `source.component: kopf`), but
 * unlike Kopf they are not one POST per call:
 *
 * - **Aggregation.** The same (object uid, type, reason, message) within `aggregationWindow`
 *   (10 min since the last one) updates the existing Event's `count`, `lastTimestamp` and
 *   `series` with a merge-PATCH instead of creating another Event.
 * - **Batching.** Writes start from a later task, so a synchronous burst becomes one POST; while
 *   a write is in flight or was made less than `updateInterval` ago, further occurrences only
 *   bump a counter, so a burst of any size costs a POST and at most a PATCH per interval.
 * - **Spam filter.** A token bucket per object (client-go's: burst 25, one token per 5 min)
 *   pays for every write. A new Event with no token left is dropped; an update waits for a token
 *   (its count keeps growing meanwhile, so nothing is lost).
 * - **Bounded queue.** At most `queueSize` (1000) Events wait to be written; beyond that the
 *   oldest is dropped, with a counted warning.
 * - Messages are cut to 1024 bytes with `...` in the middle; cluster-scoped objects get their
 *   Events in namespace `default`; Events about Events are never posted.
 * - Failures are logged and ignored (a few retries for server-side and network errors); nothing
 *   is ever thrown into the caller.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Alarm, type Clock, SYSTEM_CLOCK } from "./time.ts";

const logger = getLogger(["kopf", "events"]);

/** Query parameters as the transport takes them; `undefined` values are left out. */
export type EventQuery = Record<string, string | number | boolean | undefined>;

/**
 * What the poster needs from an HTTP client; `KubeClient` satisfies it. `request` resolves to
 * the parsed JSON body and throws on a non-2xx response with an error carrying a numeric
 * `status` (network errors have none).
 */
export interface EventTransport {
  /** One API request. */
  request<T>(
    method: string,
    path: string,
    options?: { body?: unknown; contentType?: string; query?: EventQuery; signal?: AbortSignal },
  ): Promise<T>;
}

/** Options of {@linkcode EventPoster}; every field has a default. */
export interface EventPosterOptions {
  /** `reportingComponent` and `source.component` (Kopf's `posting.reporting_component`). */
  reportingComponent?: string;
  /** `reportingInstance` (Kopf's `posting.reporting_instance`). */
  reportingInstance?: string;
  /** `metadata.generateName` of new Events (Kopf's `posting.event_name_prefix`). */
  eventNamePrefix?: string;
  /** Where Events about cluster-scoped objects go; the API server allows `default`. */
  defaultNamespace?: string;
  /** Seconds since the last occurrence within which a repeat updates the same Event. */
  aggregationWindow?: number;
  /** Minimum seconds between two writes of one Event: repeats in between are batched. */
  updateInterval?: number;
  /** Writes an object may make at once before the refill rate applies. */
  burst?: number;
  /** Seconds to regain one write token per object. */
  refillInterval?: number;
  /** Events waiting to be written at most; the oldest is dropped beyond that. */
  queueSize?: number;
  /** Aggregation records kept at most (least recently used ones are forgotten). */
  cacheSize?: number;
  /** Attempts per write for retryable failures (5xx, 429, network). */
  maxAttempts?: number;
  /** Seconds between attempts. */
  retryDelay?: number;
  /** The time source; the real clock by default. */
  clock?: Clock;
}

/**
 * The object an Event is about: any Kubernetes object as plain JSON fits.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Events about a child the operator created, not only about the object it handles.
 * kopf.on.create("kopfexamples", function createChild({ name, namespace }) {
 *   const child: kopf.EventSubject = {
 *     apiVersion: "v1",
 *     kind: "ConfigMap",
 *     metadata: { name: `${name}-config`, namespace, uid: "uid-from-the-create-response" },
 *   };
 *   kopf.info(child, { reason: "Created", message: `Owned by ${name}.` });
 * });
 * ```
 */
export interface EventSubject {
  /** Goes into `involvedObject`; `v1` with kind `Event` is never reported about. */
  apiVersion?: string;
  /** Goes into `involvedObject`. */
  kind?: string;
  /** Name, namespace and uid go into `involvedObject`; the uid also keys the aggregation. */
  metadata?: { name?: string; namespace?: string; uid?: string };
}

/**
 * One object, or an array of them: one Event per object.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.delete("kopfexamples", function announce({ body, spec }) {
 *   const children = (spec.children ?? []) as kopf.EventSubject[];
 *   const subjects: kopf.EventSubjects = [body, ...children]; // one Event each
 *   kopf.warn(subjects, { reason: "Deleting", message: "The owner is being deleted." });
 * });
 * ```
 */
export type EventSubjects = EventSubject | readonly EventSubject[];

/** What an Event says. */
export interface EventSpec {
  /** `Normal`, `Warning`, or (as in Kopf's `exception`) `Error`. */
  type: string;
  /** A short CamelCase reason, at most 128 characters. */
  reason: string;
  /** A human-readable message; cut to 1024 bytes. */
  message?: string;
}

/** Counters of the poster, for metrics and tests. */
export interface EventPosterStats {
  /** Events created (POST). */
  posted: number;
  /** Aggregated updates written (PATCH). */
  patched: number;
  /** Calls folded into an existing or pending Event. */
  aggregated: number;
  /** New Events dropped by the per-object spam filter. */
  droppedRateLimited: number;
  /** Occurrences dropped because the queue was full. */
  droppedQueueFull: number;
  /** Occurrences lost to failed writes (after retries). */
  failed: number;
  /** Events not posted because their object is an Event itself. */
  skipped: number;
}

/** Options of {@linkcode EventPoster.flush} and {@linkcode EventPoster.close}. */
export interface FlushOptions {
  /** Seconds to wait for the writes to finish. Default: 10. */
  timeout?: number;
}

const MAX_MESSAGE_BYTES = 1024;
const MAX_REASON_LENGTH = 128;
const CUT_INFIX = "...";
// Kopf's `action`: required by the API server for Events with an eventTime.
const ACTION = "Action?";

interface Aggregate {
  key: string;
  objectKey: string;
  namespace: string;
  involvedObject: Record<string, string>;
  type: string;
  reason: string;
  message: string;
  firstTimestamp: number;
  lastTimestamp: number;
  /** Occurrences seen. */
  count: number;
  /** Occurrences the stored Event already says. */
  written: number;
  /** The stored Event's name, once created. */
  name?: string;
  queued: boolean;
  writing: boolean;
  dueAt: number;
  lastWriteAt: number;
  attempts: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Posts Kubernetes Events about objects, aggregated, batched and rate-limited.
 *
 * @example
 * ```ts
 * import { EventPoster, type EventTransport } from "./events.ts";
 *
 * // In an operator this is the KubeClient; anything with a matching `request()` will do.
 * const client: EventTransport = { request: () => Promise.resolve({} as never) };
 * const events = new EventPoster(client, { reportingInstance: "my-operator-0" });
 * const body = {
 *   apiVersion: "kopf.dev/v1",
 *   kind: "KopfExample",
 *   metadata: { name: "ex1", namespace: "default", uid: "1234" },
 * };
 * events.info(body, { reason: "Created", message: "The child pod is created." });
 * await events.flush({ timeout: 10 });
 * ```
 */
export class EventPoster {
  readonly #transport: EventTransport;
  readonly #clock: Clock;
  readonly #component: string;
  readonly #instance: string;
  readonly #prefix: string;
  readonly #defaultNamespace: string;
  readonly #windowMs: number;
  readonly #updateMs: number;
  readonly #burst: number;
  readonly #refillMs: number;
  readonly #queueSize: number;
  readonly #cacheSize: number;
  readonly #maxAttempts: number;
  readonly #retryMs: number;

  /** Aggregation records, least recently used first. */
  readonly #cache = new Map<string, Aggregate>();
  /** Records with a write to make, in FIFO order. */
  readonly #pending = new Map<string, Aggregate>();
  readonly #buckets = new Map<string, Bucket>();

  #running = false;
  #wakeScheduled = false;
  readonly #alarm: Alarm;
  #flushing = 0;
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  readonly #abort = new AbortController();
  #lastDropWarning = -Infinity;

  readonly #stats: EventPosterStats = {
    posted: 0,
    patched: 0,
    aggregated: 0,
    droppedRateLimited: 0,
    droppedQueueFull: 0,
    failed: 0,
    skipped: 0,
  };

  /** Creates a poster; it holds no timers while it has nothing to write. */
  constructor(transport: EventTransport, options: EventPosterOptions = {}) {
    this.#transport = transport;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#alarm = new Alarm(() => this.#scheduleRun(), this.#clock);
    this.#component = options.reportingComponent ?? "kopf";
    this.#instance = options.reportingInstance ?? "dev";
    this.#prefix = options.eventNamePrefix ?? "kopf-event-";
    this.#defaultNamespace = options.defaultNamespace ?? "default";
    this.#windowMs = (options.aggregationWindow ?? 600) * 1000;
    this.#updateMs = (options.updateInterval ?? 1) * 1000;
    this.#burst = options.burst ?? 25;
    this.#refillMs = (options.refillInterval ?? 300) * 1000;
    this.#queueSize = options.queueSize ?? 1000;
    this.#cacheSize = Math.max(options.cacheSize ?? 4096, this.#queueSize);
    this.#maxAttempts = Math.max(options.maxAttempts ?? 3, 1);
    this.#retryMs = (options.retryDelay ?? 10) * 1000;
  }

  /** A snapshot of the counters. */
  get stats(): EventPosterStats {
    return { ...this.#stats };
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Posts an Event of any type about each object. Never throws. */
  event(objs: EventSubjects, spec: EventSpec): void {
    try {
      for (const obj of Array.isArray(objs) ? objs : [objs]) this.#observe(obj, spec);
    } catch (error) {
      // A malformed body must not break the handler that reports about it.
      logger.warn("Failed to queue an event: {error}", { error: describeError(error) });
    }
  }

  /** Posts a `Normal` Event. */
  info(objs: EventSubjects, { reason, message = "" }: Omit<EventSpec, "type">): void {
    this.event(objs, { type: "Normal", reason, message });
  }

  /** Posts a `Warning` Event. */
  warn(objs: EventSubjects, { reason, message = "" }: Omit<EventSpec, "type">): void {
    this.event(objs, { type: "Warning", reason, message });
  }

  /**
   * Posts an `Error` Event about an exception, as Kopf does: the reason defaults to the error's
   * class name, and the error's message is appended to the given one.
   */
  exception(
    objs: EventSubjects,
    { reason = "", message = "", exc }: { reason?: string; message?: string; exc?: unknown } = {},
  ): void {
    const excName = exc instanceof Error
      ? (exc.constructor?.name || exc.name)
      : exc === undefined
      ? ""
      : typeof exc;
    const excText = exc === undefined ? "" : exc instanceof Error ? exc.message : String(exc);
    const text = message && excText ? `${message} ${excText}` : message || excText;
    this.event(objs, { type: "Error", reason: reason || excName, message: text });
  }

  /**
   * Writes everything pending now, ignoring the batching interval and waiting rate limits.
   * Resolves to true when nothing is left to write, or false if `timeout` passed first.
   */
  async flush({ timeout = 10 }: FlushOptions = {}): Promise<boolean> {
    if (this.#pending.size === 0 && !this.#running) return true;
    this.#flushing++;
    try {
      this.#scheduleRun();
      const idle = new Promise<true>((resolve) => this.#idleWaiters.push(() => resolve(true)));
      let timer: unknown;
      const expired = new Promise<false>((resolve) => {
        timer = this.#clock.setTimeout(() => resolve(false), timeout * 1000);
      });
      const drained = await Promise.race([idle, expired]);
      this.#clock.clearTimeout(timer);
      if (!drained) {
        logger.warn("{count} event(s) were not written within {timeout} s.", {
          count: this.#pending.size,
          timeout,
        });
      }
      return drained;
    } finally {
      this.#flushing--;
    }
  }

  /** Flushes, then stops: later events are ignored, and an unfinished write is aborted. */
  async close(options: FlushOptions = {}): Promise<boolean> {
    const drained = await this.flush(options);
    this.#closed = true;
    this.#alarm.clear();
    this.#abort.abort(new DOMException("The event poster is closed.", "AbortError"));
    this.#pending.clear();
    return drained;
  }

  #observe(obj: EventSubject, spec: EventSpec): void {
    if (this.#closed) return;
    const apiVersion = obj.apiVersion ?? "";
    // Events about Events would feed themselves when an operator serves Events.
    if (obj.kind === "Event" && (apiVersion === "v1" || apiVersion.startsWith("events.k8s.io/"))) {
      this.#stats.skipped++;
      return;
    }
    const meta = obj.metadata ?? {};
    const involvedObject = dropEmpty({
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: meta.name,
      uid: meta.uid,
      namespace: meta.namespace,
    });
    // Only the Event goes to the default namespace: the reference stays cluster-scoped, so that
    // `kubectl describe` of the object finds it (unlike Kopf, which puts "default" there too).
    const namespace = meta.namespace || this.#defaultNamespace;
    const reason = (spec.reason || "Unknown").slice(0, MAX_REASON_LENGTH);
    const message = truncateMessage(spec.message ?? "");
    const objectKey = meta.uid || `${apiVersion}/${obj.kind}/${namespace}/${meta.name}`;
    const key = JSON.stringify([objectKey, spec.type, reason, message]);
    const now = this.#clock.now();

    const known = this.#cache.get(key);
    if (known && (now - known.lastTimestamp <= this.#windowMs || known.writing || known.queued)) {
      known.count++;
      known.lastTimestamp = now;
      this.#stats.aggregated++;
      this.#touch(known);
      if (!known.writing) this.#enqueue(known, known.lastWriteAt + this.#updateMs);
      return;
    }
    if (known) this.#cache.delete(key);

    if (!this.#takeToken(objectKey, now)) {
      this.#stats.droppedRateLimited++;
      logger.debug("Event dropped by the spam filter for {object}: {reason}: {message}", {
        object: describeRef(involvedObject),
        reason,
        message,
      });
      return;
    }
    const fresh: Aggregate = {
      key,
      objectKey,
      namespace,
      involvedObject,
      type: spec.type,
      reason,
      message,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      written: 0,
      queued: false,
      writing: false,
      dueAt: now,
      lastWriteAt: -Infinity,
      attempts: 0,
    };
    this.#cache.set(key, fresh);
    this.#enqueue(fresh, now);
    this.#evict();
  }

  #touch(record: Aggregate): void {
    this.#cache.delete(record.key);
    this.#cache.set(record.key, record);
  }

  #evict(): void {
    if (this.#cache.size <= this.#cacheSize) return;
    for (const [key, record] of this.#cache) {
      if (this.#cache.size <= this.#cacheSize) break;
      if (!record.queued && !record.writing) this.#cache.delete(key);
    }
    if (this.#buckets.size > this.#cacheSize) {
      const now = this.#clock.now();
      for (const [key, bucket] of this.#buckets) {
        if (this.#refill(bucket, now) >= this.#burst) this.#buckets.delete(key);
      }
    }
  }

  #refill(bucket: Bucket, now: number): number {
    if (this.#refillMs <= 0) return this.#burst;
    const gained = Math.floor((now - bucket.at) / this.#refillMs);
    if (gained > 0) {
      bucket.tokens = Math.min(this.#burst, bucket.tokens + gained);
      bucket.at = bucket.tokens >= this.#burst ? now : bucket.at + gained * this.#refillMs;
    }
    return bucket.tokens;
  }

  #takeToken(objectKey: string, now: number): boolean {
    let bucket = this.#buckets.get(objectKey);
    if (!bucket) {
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(objectKey, bucket);
    }
    if (this.#refill(bucket, now) < 1) return false;
    if (bucket.tokens >= this.#burst) bucket.at = now; // the refill clock starts at the first use
    bucket.tokens--;
    return true;
  }

  #nextTokenAt(objectKey: string): number {
    const bucket = this.#buckets.get(objectKey);
    return bucket ? bucket.at + this.#refillMs : this.#clock.now();
  }

  #enqueue(record: Aggregate, dueAt: number): void {
    if (record.queued) return;
    if (this.#pending.size >= this.#queueSize) this.#dropOldest();
    record.queued = true;
    record.dueAt = dueAt;
    this.#pending.set(record.key, record);
    this.#scheduleRun();
  }

  #dropOldest(): void {
    const [key, oldest] = this.#pending.entries().next().value!;
    this.#pending.delete(key);
    oldest.queued = false;
    const lost = oldest.count - oldest.written;
    this.#stats.droppedQueueFull += lost;
    if (oldest.name === undefined) this.#cache.delete(key);
    else oldest.written = oldest.count;
    // One warning a minute at most: a full queue means a flood, and the log must not join it.
    const now = this.#clock.now();
    if (now - this.#lastDropWarning >= 60_000) {
      this.#lastDropWarning = now;
      logger.warn(
        "The event queue is full ({size}); dropping the oldest events ({dropped} dropped so far).",
        { size: this.#queueSize, dropped: this.#stats.droppedQueueFull },
      );
    }
  }

  #scheduleRun(): void {
    // Writes start from a later task: a synchronous burst is folded into one write.
    if (this.#running || this.#wakeScheduled || this.#closed) return;
    this.#wakeScheduled = true;
    this.#alarm.clear();
    queueMicrotask(() => {
      this.#wakeScheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      for (;;) {
        const record = this.#nextDue();
        if (!record) break;
        await this.#write(record);
      }
    } finally {
      this.#running = false;
    }
    this.#armForNext();
    if (this.#pending.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** The oldest pending record that may be written now, or undefined. */
  #nextDue(): Aggregate | undefined {
    if (this.#closed) return undefined;
    const now = this.#clock.now();
    const flushing = this.#flushing > 0;
    for (const record of this.#pending.values()) {
      if (!flushing && record.dueAt > now) continue;
      // Creating took its token when the Event was observed; updates pay when written.
      if (record.name !== undefined && !flushing && !this.#takeToken(record.objectKey, now)) {
        record.dueAt = this.#nextTokenAt(record.objectKey);
        continue;
      }
      return record;
    }
    return undefined;
  }

  #armForNext(): void {
    if (this.#closed || this.#pending.size === 0) return;
    if (this.#flushing > 0) return this.#scheduleRun();
    let dueAt = Infinity;
    for (const record of this.#pending.values()) dueAt = Math.min(dueAt, record.dueAt);
    this.#alarm.ringAt(dueAt);
  }

  async #write(record: Aggregate): Promise<void> {
    this.#pending.delete(record.key);
    record.queued = false;
    record.writing = true;
    const count = record.count;
    const lastTimestamp = record.lastTimestamp;
    const creating = record.name === undefined;
    try {
      if (creating) {
        const created = await this.#transport.request<{ metadata?: { name?: string } }>(
          "POST",
          `/api/v1/namespaces/${record.namespace}/events`,
          { body: this.#body(record, count, lastTimestamp), signal: this.#abort.signal },
        );
        record.name = created?.metadata?.name;
        this.#stats.posted++;
      } else {
        await this.#transport.request(
          "PATCH",
          `/api/v1/namespaces/${record.namespace}/events/${record.name}`,
          {
            body: updatePatch(count, lastTimestamp),
            contentType: "application/merge-patch+json",
            signal: this.#abort.signal,
          },
        );
        this.#stats.patched++;
      }
      record.written = count;
      record.attempts = 0;
      record.lastWriteAt = this.#clock.now();
    } catch (error) {
      this.#failed(record, creating, error);
    } finally {
      record.writing = false;
    }
    if (this.#closed) return;
    if (record.count > record.written) {
      this.#enqueue(record, record.lastWriteAt + this.#updateMs);
    }
    this.#evict();
  }

  #failed(record: Aggregate, creating: boolean, error: unknown): void {
    const status = statusOf(error);
    if (!creating && status === 404) {
      // The Event expired (the API server keeps them for an hour) or was deleted: start anew.
      record.name = undefined;
      record.written = 0;
      record.firstTimestamp = record.lastTimestamp;
      record.lastWriteAt = -Infinity;
      return;
    }
    record.attempts++;
    const retryable = status === undefined || status === 429 || status >= 500;
    if (retryable && record.attempts < this.#maxAttempts && !this.#closed) {
      logger.debug("Failed to post an event (attempt {attempt}), will retry: {error}", {
        attempt: record.attempts,
        error: describeError(error),
      });
      this.#enqueue(record, this.#clock.now() + this.#retryMs);
      return;
    }
    const lost = record.count - record.written;
    this.#stats.failed += lost;
    logger.warn(
      "Failed to post an event. Ignoring and continuing. Event: type={type}, reason={reason}, " +
        "message={message}, object={object}. Error: {error}",
      {
        type: record.type,
        reason: record.reason,
        message: record.message,
        object: describeRef(record.involvedObject),
        error: describeError(error),
      },
    );
    record.attempts = 0;
    record.written = record.count;
    if (record.name === undefined) this.#cache.delete(record.key);
  }

  #body(record: Aggregate, count: number, lastTimestamp: number): Record<string, unknown> {
    const body: Record<string, unknown> = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { namespace: record.namespace, generateName: this.#prefix },
      action: ACTION,
      type: record.type,
      reason: record.reason,
      message: record.message,
      reportingComponent: this.#component,
      reportingInstance: this.#instance,
      source: { component: this.#component }, // the "From" column of `kubectl describe`
      involvedObject: record.involvedObject,
      firstTimestamp: formatTime(record.firstTimestamp),
      lastTimestamp: formatTime(lastTimestamp),
      eventTime: formatMicroTime(record.firstTimestamp),
      count,
    };
    if (count > 1) body.series = { count, lastObservedTime: formatMicroTime(lastTimestamp) };
    return body;
  }
}

function updatePatch(count: number, lastTimestamp: number): Record<string, unknown> {
  return {
    count,
    lastTimestamp: formatTime(lastTimestamp),
    series: { count, lastObservedTime: formatMicroTime(lastTimestamp) },
  };
}

/**
 * Cuts a message to at most 1024 UTF-8 bytes (the API server's limit), keeping its start and
 * end around a `...`. Shorter messages are returned as they are.
 *
 * @example
 * ```ts
 * import { truncateMessage } from "./events.ts";
 *
 * truncateMessage("x".repeat(2000)).length; // 1024
 * ```
 */
export function truncateMessage(message: string, maxBytes: number = MAX_MESSAGE_BYTES): string {
  const encoder = new TextEncoder();
  if (message.length <= maxBytes / 4 || encoder.encode(message).length <= maxBytes) return message;
  // Kopf's split for ASCII: 511 bytes, "...", 510 bytes.
  const budget = maxBytes - CUT_INFIX.length;
  const headBudget = Math.ceil(budget / 2);
  const tailBudget = budget - headBudget;
  const chars = Array.from(message); // code points: never split a surrogate pair
  let head = "";
  let headBytes = 0;
  for (const char of chars) {
    const size = encoder.encode(char).length;
    if (headBytes + size > headBudget) break;
    head += char;
    headBytes += size;
  }
  let tail = "";
  let tailBytes = 0;
  for (let i = chars.length - 1; i >= 0; i--) {
    const size = encoder.encode(chars[i]).length;
    if (tailBytes + size > tailBudget) break;
    tail = chars[i] + tail;
    tailBytes += size;
  }
  return `${head}${CUT_INFIX}${tail}`;
}

function formatTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

function formatMicroTime(ms: number): string {
  // The API server parses MicroTime with exactly six fraction digits.
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function dropEmpty(record: Record<string, string | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(record)) if (value) result[key] = value;
  return result;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : undefined;
}

function describeRef(ref: Record<string, string>): string {
  return `${ref.kind ?? "?"} ${ref.namespace ? ref.namespace + "/" : ""}${ref.name ?? "?"}`;
}

function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.replace(/\s*\n\s*/g, " ");
}
