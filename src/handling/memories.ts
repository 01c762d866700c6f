/**
 * Per-object memory kept in the operator process between handling cycles (Kopf's
 * `ResourceMemory`): the object's `memo`, whether it came from the initial listing, whether it
 * has been fully handled once (so resume handlers run once per object per process start), and
 * the resource versions needed for read-your-writes.
 *
 * Operators keep one memory per watched object for as long as the object exists, so an idle one
 * is kept small (measured with 10,000 objects, key and map entry included: ~520 bytes each
 * before, ~180 after): a few fields and flags, the memo made on first use when there is nothing
 * to copy into it, and the read-your-writes state only between our write and its arrival through
 * the watch.
 *
 * Nothing here is persisted: a restarted operator starts with empty memories, as Kopf does.
 *
 * @module
 */

import { copyMemo, MEMO_COPY } from "./memos.ts";
import type { Memo } from "../registry/context.ts";
import { deepEqual } from "../storage/fields.ts";
import type { Outcome } from "../actions/errors.ts";

/** How many resource versions seen during one write an object remembers (for read-your-writes). */
const RECENT_VERSIONS = 16;

// Flags of ObjectMemory, packed in one small integer.
const LISTED = 1;
const HANDLED = 2;
const BLANK_MEMO = 4;
const STARTED = 8;
const RELEASED = 16;

/** Read-your-writes bookkeeping of one object, only while a write is in flight or awaited. */
interface Pending {
  /** Versions delivered by the watch since our write was sent (`undefined`: not collecting). */
  seen: string[] | undefined;
  /** The version of our last write, until it comes back through the watch. */
  version: string | undefined;
  /** Until when (ms since the epoch) to wait for {@linkcode Pending.version}. */
  until: number;
}

/**
 * The handlers that finished (succeeded or failed for good) for one cause of one object in this
 * process, with their outcomes. A cause is its reason and the diff-base it started from: while
 * both stay, it is the same cause, however many cycles it takes.
 */
interface FinishedCause {
  readonly reason: string;
  readonly old: unknown;
  readonly outcomes: Map<string, Outcome>;
}

/**
 * What the operator remembers about one object.
 *
 * An idle object costs one small instance: its memo is made on first use when the operator's
 * memo has nothing to copy, and the read-your-writes state exists only between a write and its
 * arrival through the watch.
 */
export class ObjectMemory {
  #uid: string | undefined;
  // The memo, or with BLANK_MEMO the prototype of the empty copy to make on first use.
  #memo: Memo | object | null;
  #flags: number;
  #lastSeen: string | undefined = undefined;
  #pending: Pending | undefined = undefined;
  // The last of the object's chained tasks (`on.event` handlers), until it settles.
  #chain: Promise<void> | undefined = undefined;
  // Handlers finished for the current cause, until another cause (or none) is seen.
  #finished: FinishedCause | undefined = undefined;
  // Things said once per object (rare: made on first use).
  #said: Set<string> | undefined = undefined;

  /**
   * Remember a new object. With `blank`, `memo` is the prototype of the memo to make on first
   * use (a copy of an operator memo without own properties is just that).
   */
  constructor(uid: string | undefined, memo: Memo | object | null, blank = false) {
    this.#uid = uid;
    this.#memo = memo;
    this.#flags = blank ? BLANK_MEMO : 0;
  }

  /** The object's uid when first seen; another uid under the same name is another object. */
  get uid(): string | undefined {
    return this.#uid;
  }

  /** Per-object memory for handlers: a shallow copy of the operator's memo. */
  get memo(): Memo {
    if (this.#flags & BLANK_MEMO) {
      this.#memo = Object.create(this.#memo as object | null);
      this.#flags &= ~BLANK_MEMO;
    }
    return this.#memo as Memo;
  }

  /** Whether the memo has been made (read) yet: for diagnostics and tests. */
  get memoMade(): boolean {
    return (this.#flags & BLANK_MEMO) === 0;
  }

  /** Seen in the initial listing of its watch (resume handlers are due for it). */
  get noticedByListing(): boolean {
    return (this.#flags & LISTED) !== 0;
  }
  set noticedByListing(value: boolean) {
    this.#flags = value ? this.#flags | LISTED : this.#flags & ~LISTED;
  }

  /** All changing handlers finished at least once in this process (no more resuming). */
  get fullyHandledOnce(): boolean {
    return (this.#flags & HANDLED) !== 0;
  }
  set fullyHandledOnce(value: boolean) {
    this.#flags = value ? this.#flags | HANDLED : this.#flags & ~HANDLED;
  }

  /** Some changing handler has been called for the object in this process. */
  get handlingStarted(): boolean {
    return (this.#flags & STARTED) !== 0;
  }
  set handlingStarted(value: boolean) {
    this.#flags = value ? this.#flags | STARTED : this.#flags & ~STARTED;
  }

  /** We have written the removal of our finalizer: the object may go now. */
  get released(): boolean {
    return (this.#flags & RELEASED) !== 0;
  }
  set released(value: boolean) {
    this.#flags = value ? this.#flags | RELEASED : this.#flags & ~RELEASED;
  }

  /** The resourceVersion of our last write, until it comes back through the watch. */
  get awaitedVersion(): string | undefined {
    return this.#pending?.version;
  }

  /** No write of ours is in flight or awaited, and no event handlers are chained. */
  get idle(): boolean {
    return this.#pending === undefined && this.#chain === undefined;
  }

  /**
   * Runs `task` once the tasks chained before it have settled (`on.event` handlers of one object
   * run in order of their events). `task` must not reject. The chain is dropped when its last
   * task settles, so an idle object holds no settled promise.
   */
  chain(task: () => Promise<void>): Promise<void> {
    // Always later, never inside the caller (the informer's broadcast).
    const next = (this.#chain ?? Promise.resolve()).then(task);
    this.#chain = next;
    const settled = () => {
      if (this.#chain === next) this.#chain = undefined;
    };
    next.then(settled, settled);
    return next;
  }

  /**
   * The outcomes of handlers that already finished in this process for the cause with this
   * `reason` starting from the diff-base `old`; empty for another cause. Any other cause (or
   * `null`: none) forgets the remembered one, so the record lives only while its cause does.
   *
   * This is what makes "a handler that finished is never called again for the same cause"
   * hold within a process whatever happens to the stored progress meanwhile: a write that
   * failed, a purge written before the finalizer could go (daemons still stopping), a watch
   * that has not delivered our write before the consistency timeout.
   */
  finishedFor(reason: string | null, old: unknown): ReadonlyMap<string, Outcome> {
    const finished = this.#finished;
    if (!finished) return NOTHING;
    if (reason === finished.reason && deepEqual(old, finished.old)) return finished.outcomes;
    this.#finished = undefined;
    return NOTHING;
  }

  /** Remember the final outcomes among `outcomes` for the cause `reason` from the diff-base `old`. */
  rememberFinished(reason: string, old: unknown, outcomes: ReadonlyMap<string, Outcome>): void {
    let finished = this.#finished;
    for (const [id, outcome] of outcomes) {
      if (!outcome.final) continue;
      if (!finished || finished.reason !== reason || !deepEqual(old, finished.old)) {
        finished = this.#finished = { reason, old, outcomes: new Map() };
      }
      finished.outcomes.set(id, outcome);
    }
  }

  /** True the first time it is asked about `what` for this object, false ever after. */
  firstTime(what: string): boolean {
    if (this.#said?.has(what)) return false;
    (this.#said ??= new Set()).add(what);
    return true;
  }

  /** @internal Same uid, newer string: keep the one the cache holds, not the first event's. */
  refresh(uid: string): void {
    this.#uid = uid;
  }

  /** Note a resourceVersion delivered by the watch; releases a wait for it. */
  see(resourceVersion: string | undefined): void {
    if (resourceVersion === undefined) return;
    this.#lastSeen = resourceVersion;
    const pending = this.#pending;
    if (pending?.seen !== undefined) {
      pending.seen.push(resourceVersion);
      if (pending.seen.length > RECENT_VERSIONS) pending.seen.shift();
    } else if (pending !== undefined && resourceVersion === pending.version) {
      this.#pending = undefined;
    }
  }

  /**
   * Our write is about to be sent: remember the versions the watch delivers until
   * {@linkcode ObjectMemory.await} (the watch can be faster than the write's response).
   */
  expectWrite(): void {
    this.#pending = { seen: [], version: undefined, until: 0 };
  }

  /**
   * Wait for our own write (its resulting resourceVersion) to come back through the watch, for
   * at most `timeoutMs`. A version that has already arrived (the latest one, or any seen since
   * {@linkcode ObjectMemory.expectWrite}) needs no wait.
   */
  await(resourceVersion: string | undefined, timeoutMs: number, now: number): void {
    const seen = this.#pending?.seen;
    if (
      resourceVersion === undefined || timeoutMs <= 0 || resourceVersion === this.#lastSeen ||
      seen?.includes(resourceVersion)
    ) {
      this.#pending = undefined;
      return;
    }
    this.#pending = { seen: undefined, version: resourceVersion, until: now + timeoutMs };
  }

  /**
   * Milliseconds left to wait for our own write to come back, or 0 when the cache is consistent
   * with it (or the wait has timed out — then the wait is given up, as Kopf does).
   */
  consistencyWait(now: number): number {
    const pending = this.#pending;
    if (pending?.version === undefined) return 0;
    const left = pending.until - now;
    if (left > 0) return left;
    this.#pending = undefined;
    return 0;
  }
}

const NOTHING: ReadonlyMap<string, Outcome> = new Map();

/** Whether copying this memo gives an empty object (no own enumerable keys, no custom copy). */
function isBlank(memo: object): boolean {
  if (typeof (memo as { [MEMO_COPY]?: unknown })[MEMO_COPY] === "function") return false;
  for (const key of Reflect.ownKeys(memo)) {
    if (Object.prototype.propertyIsEnumerable.call(memo, key)) return false;
  }
  return true;
}

/**
 * The memories of all objects, by the operator's object key.
 *
 * @example
 * ```ts
 * const memories = new Memories({ shared: "value" });
 * const memory = memories.recall("kopfexamples.v1.kopf.dev/ns/name", "uid-1");
 * memory.memo.shared; // "value" (a shallow copy of the operator's memo)
 * ```
 */
export class Memories {
  readonly #memo: Memo;
  readonly #memories = new Map<string, ObjectMemory>();

  /** Create the store; every object's memo starts as a shallow copy of `memo`. */
  constructor(memo: Memo = {}) {
    this.#memo = memo;
  }

  /** How many objects are remembered. */
  get size(): number {
    return this.#memories.size;
  }

  /** The memory of an object, if any. */
  get(key: string): ObjectMemory | undefined {
    return this.#memories.get(key);
  }

  /**
   * The memory of an object, created on first sight. An object re-created under the same name
   * (another uid) starts afresh.
   */
  recall(key: string, uid: string | undefined): ObjectMemory {
    const existing = this.#memories.get(key);
    if (existing && (uid === undefined || existing.uid === undefined || existing.uid === uid)) {
      if (uid !== undefined) existing.refresh(uid);
      return existing;
    }
    // Kopf's copy.copy(): a shallow copy keeping the memo's class, or the memo's own copy. A
    // memo with nothing to copy is copied when first used: most objects never use theirs.
    const memo = this.#memo;
    const created = isBlank(memo)
      ? new ObjectMemory(uid, Object.getPrototypeOf(memo), true)
      : new ObjectMemory(uid, copyMemo(memo));
    this.#memories.set(key, created);
    return created;
  }

  /** Forget an object (it is gone). */
  forget(key: string): void {
    this.#memories.delete(key);
  }
}
