/**
 * The coalescing per-object work queue between the informers and the handling cycle.
 *
 * Keys are opaque strings (e.g. `<resourceKey>/<namespace>/<name>`). The queue holds keys, not
 * events: the worker reads the latest object from the cache when its run starts, so any number
 * of changes that arrive while a key waits or runs collapse into one run (client-go's workqueue,
 * the kube-rs scheduler).
 *
 * Guarantees:
 * - at most one run per key at a time; `add`s during a run lead to exactly one follow-up run;
 * - at most `concurrency` runs across all keys; ready keys start in FIFO order;
 * - a key has at most one pending wake-up: "now" (an `add`) or a time (`addAfter`), and the
 *   earliest one wins;
 * - errors thrown by the worker are caught and the key is retried with a per-key backoff.
 *
 * Backoff: client-go's per-item limiter by default (5 ms × 2ⁿ, capped at 1000 s), chosen over
 * Kopf's Fibonacci `error_delays` (1…610 s) because it retries a transient failure in
 * milliseconds; {@linkcode sequenceBackoff} gives Kopf's schedule when wanted. Each failed run
 * counts once, whatever started it, and a change that arrives during the backoff runs the key at
 * once (the retry is superseded, not stacked), so failures do not compound as in k/k#132805.
 * Handler errors are not meant to reach the queue: the handling cycle turns them into
 * `requeueAfter`; only unexpected framework errors are throttled here.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Alarm, type Clock, SYSTEM_CLOCK } from "../kube/time.ts";

const logger = getLogger(["kopf", "queue"]);

/** What a worker may ask for after a successful run. */
export interface ProcessResult {
  /** Run this key again after so many seconds (earliest pending wake-up wins). */
  requeueAfter?: number;
}

/** The worker: handles one key; the signal aborts when the queue gives up waiting on shutdown. */
export type ProcessFn = (
  key: string,
  signal: AbortSignal,
) => Promise<ProcessResult | void>;

/** Maps the number of consecutive failures of a key (1, 2, …) to a retry delay in seconds. */
export type BackoffFn = (failures: number) => number;

/** Options of {@linkcode ObjectQueue}. */
export interface ObjectQueueOptions {
  /** The worker called for every run of a key. */
  process: ProcessFn;
  /** How many keys may run at once (≥ 1). Required: there is deliberately no unbounded default. */
  concurrency: number;
  /**
   * Retry delay after the worker throws. Defaults to client-go's per-item limiter:
   * 5 ms × 2^(failures−1), capped at 1000 s. Use {@linkcode sequenceBackoff} for Kopf's
   * `queueing.error_delays`.
   */
  backoff?: BackoffFn;
  /** A name used in log messages (e.g. the resource). */
  name?: string;
  /** The time source; the real clock by default. */
  clock?: Clock;
  /** Told how long each run waited and worked (metrics); nothing is timed without it. */
  observer?: QueueObserver;
}

/** Timings of runs, for metrics (client-go's `workqueue_*_duration_seconds`). Must not throw. */
export interface QueueObserver {
  /** A run starts after its key waited `seconds` since it became ready. */
  started?(key: string, seconds: number): void;
  /** A run ended after `seconds` of work. */
  finished?(key: string, seconds: number): void;
}

/** Options of {@linkcode ObjectQueue.shutdown}. */
export interface ShutdownOptions {
  /** Seconds to let in-flight runs finish before their signals are aborted. Default: 30. */
  drainTimeout?: number;
}

/** Monotonic counters of a queue, for metrics. */
export interface QueueCounters {
  /** Accepted `add`/`addAfter` calls. */
  adds: number;
  /** Accepted calls that did not lead to an extra run (absorbed by a pending one). */
  coalesced: number;
  /** Started runs. */
  runs: number;
  /** Runs that threw and were scheduled for a retry. */
  retries: number;
}

/**
 * The default backoff: client-go's `ItemExponentialFailureRateLimiter`.
 *
 * @example
 * ```ts
 * import { exponentialBackoff } from "./object_queue.ts";
 *
 * const backoff = exponentialBackoff({ base: 0.005, cap: 1000 });
 * backoff(1); // 0.005
 * backoff(11); // 5.12
 * ```
 */
export function exponentialBackoff(
  { base = 0.005, cap = 1000 }: { base?: number; cap?: number } = {},
): BackoffFn {
  return (failures: number): number => {
    // Exponent clamped so that 2 ** n never overflows to Infinity for long-failing keys.
    const exponent = Math.min(Math.max(failures - 1, 0), 1023);
    return Math.min(base * 2 ** exponent, cap);
  };
}

/**
 * A backoff from a fixed list of delays, repeating the last one: Kopf's `queueing.error_delays`.
 *
 * @example
 * ```ts
 * import { sequenceBackoff } from "./object_queue.ts";
 *
 * const backoff = sequenceBackoff([1, 1, 2, 3, 5]);
 * backoff(3); // 2
 * backoff(100); // 5
 * ```
 */
export function sequenceBackoff(delays: readonly number[]): BackoffFn {
  if (delays.length === 0) throw new RangeError("sequenceBackoff needs at least one delay");
  return (failures: number): number =>
    delays[Math.min(Math.max(failures - 1, 0), delays.length - 1)];
}

interface KeyState {
  ready: boolean; // in the ready FIFO, not yet started
  running: boolean;
  dirty: boolean; // added during its run: one follow-up run right after it
  dueAt: number | undefined; // pending delayed wake-up (clock ms)
  failures: number;
  warned: boolean; // the current failure streak has been logged at warning level
  readyAt: number; // clock ms when it became ready (with an observer only)
  startedAt: number; // clock ms when its current run started (with an observer only)
}

interface HeapItem {
  dueAt: number;
  seq: number; // FIFO among equal due times
  key: string;
}

/**
 * A coalescing, concurrency-limited per-object work queue with delayed wake-ups.
 *
 * @example
 * ```ts
 * import { ObjectQueue } from "./object_queue.ts";
 *
 * const queue = new ObjectQueue({
 *   concurrency: 4,
 *   process: async (key, signal) => {
 *     // read the latest object for `key` from the cache and handle it
 *     return { requeueAfter: 60 };
 *   },
 * });
 * queue.add("kopfexamples/default/ex1");
 * await queue.shutdown({ drainTimeout: 30 });
 * ```
 */
export class ObjectQueue {
  readonly #process: ProcessFn;
  readonly #concurrency: number;
  readonly #backoff: BackoffFn;
  readonly #clock: Clock;
  readonly #name: string;
  readonly #observer: QueueObserver | undefined;

  readonly #states = new Map<string, KeyState>();
  #ready: string[] = [];
  #readyHead = 0;
  #heap: HeapItem[] = [];
  #delayed = 0; // live (non-stale) entries in the heap
  #seq = 0;
  readonly #alarm: Alarm;
  #pumpScheduled = false;

  readonly #controllers = new Map<string, AbortController>();
  #inFlight = 0;
  #stopping = false;
  #idleWaiters: Array<() => void> = [];

  readonly #counters: QueueCounters = { adds: 0, coalesced: 0, runs: 0, retries: 0 };

  /** Creates a queue; nothing runs until keys are added. */
  constructor(options: ObjectQueueOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`concurrency must be an integer ≥ 1, got ${options.concurrency}`);
    }
    this.#process = options.process;
    this.#concurrency = options.concurrency;
    this.#backoff = options.backoff ?? exponentialBackoff();
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#alarm = new Alarm(() => this.#onTimer(), this.#clock);
    this.#name = options.name ?? "queue";
    this.#observer = options.observer;
  }

  /** Keys ready to run and waiting for a free worker (client-go's `workqueue_depth`). */
  get size(): number {
    return this.#ready.length - this.#readyHead;
  }

  /** Keys with a pending delayed wake-up. */
  get delayed(): number {
    return this.#delayed;
  }

  /** Runs in progress. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** A snapshot of the counters. */
  get counters(): QueueCounters {
    return { ...this.#counters };
  }

  /**
   * Seconds each run in progress has been running (client-go's unfinished work); empty without
   * an observer, which is what times runs.
   */
  runningSeconds(): number[] {
    if (!this.#observer) return [];
    const now = this.#clock.now();
    const seconds: number[] = [];
    for (const key of this.#controllers.keys()) {
      const state = this.#states.get(key);
      if (state?.running) seconds.push((now - state.startedAt) / 1000);
    }
    return seconds;
  }

  /** Whether {@linkcode ObjectQueue.shutdown} has been called. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /**
   * Runs the key as soon as a worker is free; supersedes any delayed wake-up of that key.
   * If the key is running, it runs once more right after the current run.
   */
  add(key: string): void {
    if (this.#stopping) return;
    this.#counters.adds++;
    if (!this.#makeReady(key, this.#state(key))) this.#counters.coalesced++;
  }

  /**
   * Runs the key after `delaySeconds`, unless it already has an earlier pending wake-up
   * (or is already waiting to run now). A delay ≤ 0 is the same as {@linkcode ObjectQueue.add}.
   */
  addAfter(key: string, delaySeconds: number): void {
    if (this.#stopping) return;
    if (!(delaySeconds > 0)) return this.add(key);
    this.#counters.adds++;
    if (!this.#schedule(key, this.#state(key), delaySeconds)) this.#counters.coalesced++;
  }

  /**
   * Forgets the key's failure history and cancels its delayed wake-up, if any.
   * A key that is ready or running is not affected: its pending run still happens.
   * Call it when the object is gone, so the queue keeps no memory of it.
   */
  forget(key: string): void {
    const state = this.#states.get(key);
    if (!state) return;
    state.failures = 0;
    state.warned = false;
    this.#cancelDelay(state);
    this.#dropIfIdle(key, state);
  }

  /**
   * Stops accepting keys, drops the ones not started yet, lets in-flight runs finish for up to
   * `drainTimeout` seconds, then aborts their signals; resolves when no run is in flight.
   */
  async shutdown({ drainTimeout = 30 }: ShutdownOptions = {}): Promise<void> {
    this.#stopping = true;
    this.#ready = [];
    this.#readyHead = 0;
    this.#heap = [];
    this.#delayed = 0;
    this.#alarm.clear();
    for (const [key, state] of this.#states) {
      state.ready = false;
      state.dirty = false;
      state.dueAt = undefined;
      if (!state.running) this.#states.delete(key);
    }
    if (this.#inFlight === 0) return;

    const idle = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    let timer: unknown;
    const expired = new Promise<"expired">((resolve) => {
      timer = this.#clock.setTimeout(() => resolve("expired"), drainTimeout * 1000);
    });
    const outcome = await Promise.race([idle.then(() => "idle" as const), expired]);
    this.#clock.clearTimeout(timer);
    if (outcome === "expired") {
      logger.warn(
        "{queue}: {count} run(s) still in flight after {timeout} s; aborting them.",
        { queue: this.#name, count: this.#inFlight, timeout: drainTimeout },
      );
      for (const controller of this.#controllers.values()) {
        controller.abort(new DOMException("The queue is shutting down.", "AbortError"));
      }
      await idle;
    }
  }

  #state(key: string): KeyState {
    let state = this.#states.get(key);
    if (!state) {
      state = {
        ready: false,
        running: false,
        dirty: false,
        dueAt: undefined,
        failures: 0,
        warned: false,
        readyAt: 0,
        startedAt: 0,
      };
      this.#states.set(key, state);
    }
    return state;
  }

  /** Marks the key to run now; returns false if a run-now was already pending. */
  #makeReady(key: string, state: KeyState): boolean {
    this.#cancelDelay(state);
    if (state.running) {
      if (state.dirty) return false;
      state.dirty = true;
      return true;
    }
    if (state.ready) return false;
    state.ready = true;
    if (this.#observer) state.readyAt = this.#clock.now();
    this.#ready.push(key);
    this.#schedulePump();
    return true;
  }

  /** Sets a delayed wake-up, earliest wins; returns false if an earlier one was pending. */
  #schedule(key: string, state: KeyState, delaySeconds: number): boolean {
    // Already due now: the sooner run makes the delayed one pointless.
    if (state.ready || state.dirty) return false;
    const dueAt = this.#clock.now() + delaySeconds * 1000;
    if (state.dueAt !== undefined && state.dueAt <= dueAt) return false;
    if (state.dueAt === undefined) this.#delayed++;
    state.dueAt = dueAt;
    this.#heapPush({ dueAt, seq: this.#seq++, key });
    this.#alarm.ringAt(dueAt);
    return true;
  }

  #cancelDelay(state: KeyState): void {
    // The heap item goes stale and is skipped when popped (lazy deletion).
    if (state.dueAt === undefined) return;
    state.dueAt = undefined;
    this.#delayed--;
    this.#compactHeapIfStale();
  }

  #dropIfIdle(key: string, state: KeyState): void {
    if (
      !state.ready && !state.running && !state.dirty && state.dueAt === undefined &&
      state.failures === 0
    ) {
      this.#states.delete(key);
    }
  }

  #schedulePump(): void {
    // Runs start from a microtask, never inside add(): a caller never re-enters its own worker.
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#readyHead < this.#ready.length) {
      const key = this.#ready[this.#readyHead++];
      const state = this.#states.get(key);
      if (!state || !state.ready) continue;
      state.ready = false;
      this.#start(key, state);
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#readyHead);
      this.#readyHead = 0;
    }
  }

  #start(key: string, state: KeyState): void {
    state.running = true;
    this.#inFlight++;
    this.#counters.runs++;
    if (this.#observer) {
      state.startedAt = this.#clock.now();
      this.#observer.started?.(key, (state.startedAt - state.readyAt) / 1000);
    }
    const controller = new AbortController();
    this.#controllers.set(key, controller);
    const run = async (): Promise<ProcessResult | void> =>
      await this.#process(key, controller.signal);
    run().then(
      (result) => this.#finish(key, state, { ok: true, result }),
      (error: unknown) => this.#finish(key, state, { ok: false, error }),
    );
  }

  #finish(
    key: string,
    state: KeyState,
    outcome: { ok: true; result: ProcessResult | void } | { ok: false; error: unknown },
  ): void {
    state.running = false;
    this.#inFlight--;
    this.#controllers.delete(key);
    this.#observer?.finished?.(key, (this.#clock.now() - state.startedAt) / 1000);

    if (!this.#stopping) {
      if (outcome.ok) {
        if (state.failures > 0) {
          logger.debug("{queue}: {key} succeeded after {failures} failure(s).", {
            queue: this.#name,
            key,
            failures: state.failures,
          });
        }
        state.failures = 0;
        state.warned = false;
        const after = outcome.result?.requeueAfter;
        if (state.dirty) {
          state.dirty = false;
          this.#makeReady(key, state);
        } else if (after !== undefined && after <= 0) {
          this.#makeReady(key, state);
        } else if (after !== undefined) {
          this.#schedule(key, state, after);
        }
      } else {
        state.failures++;
        const delay = this.#backoff(state.failures);
        this.#counters.retries++;
        this.#logFailure(key, state, delay, outcome.error);
        if (state.dirty) {
          state.dirty = false;
          this.#makeReady(key, state);
        } else {
          this.#schedule(key, state, delay);
        }
      }
    } else {
      state.dirty = false;
    }

    this.#dropIfIdle(key, state);
    if (this.#stopping) this.#states.delete(key);
    this.#pump();
    if (this.#inFlight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #logFailure(key: string, state: KeyState, delay: number, error: unknown): void {
    const properties = {
      queue: this.#name,
      key,
      delay,
      failures: state.failures,
      error: describeError(error),
    };
    // One warning per failure streak keeps a permanently broken object from flooding the logs.
    const message = "{queue}: throttling {key} for {delay} s due to an unexpected error: {error}";
    if (state.warned) {
      logger.debug(message + " (failure #{failures})", properties);
    } else {
      state.warned = true;
      logger.warn(message, properties);
    }
  }

  #onTimer(): void {
    const now = this.#clock.now();
    while (this.#heap.length > 0 && this.#heap[0].dueAt <= now) {
      const item = this.#heapPop();
      const state = this.#states.get(item.key);
      if (!state || state.dueAt !== item.dueAt) continue; // stale: superseded or cancelled
      state.dueAt = undefined;
      this.#delayed--;
      this.#makeReady(item.key, state);
    }
    this.#rearm();
  }

  #rearm(): void {
    // Drop stale tops so the timer is armed for a live wake-up only.
    while (this.#heap.length > 0) {
      const top = this.#heap[0];
      const state = this.#states.get(top.key);
      if (state && state.dueAt === top.dueAt) break;
      this.#heapPop();
    }
    if (this.#heap.length > 0) this.#alarm.ringAt(this.#heap[0].dueAt);
  }

  #compactHeapIfStale(): void {
    // Bound memory when many wake-ups get superseded: rebuild from the live entries.
    if (this.#heap.length < 64 || this.#heap.length <= 4 * this.#delayed) return;
    const live = this.#heap.filter((item) => this.#states.get(item.key)?.dueAt === item.dueAt);
    this.#heap = [];
    for (const item of live) this.#heapPush(item);
  }

  #heapPush(item: HeapItem): void {
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #heapPop(): HeapItem {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && before(heap[left], heap[smallest])) smallest = left;
        if (right < heap.length && before(heap[right], heap[smallest])) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest], heap[i]];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: HeapItem, b: HeapItem): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.seq < b.seq);
}

function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.replace(/\s*\n\s*/g, " ");
}
