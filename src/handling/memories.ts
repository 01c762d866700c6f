/**
 * Per-object memory kept in the operator process between handling cycles (Kopf's
 * `ResourceMemory`): the object's `memo`, whether it came from the initial listing, whether it
 * has been fully handled once (so resume handlers run once per object per process start), and
 * the resource versions needed for read-your-writes.
 *
 * Nothing here is persisted: a restarted operator starts with empty memories, as Kopf does.
 *
 * @module
 */

import { copyMemo } from "../engines/memos.ts";
import type { Memo } from "../registry/context.ts";

/** How many recently seen resource versions an object remembers (for read-your-writes). */
const RECENT_VERSIONS = 16;

/** What the operator remembers about one object. */
export class ObjectMemory {
  /** The object's uid when first seen; another uid under the same name is another object. */
  readonly uid: string | undefined;
  /** Per-object memory for handlers: a shallow copy of the operator's memo. */
  readonly memo: Memo;
  /** Seen in the initial listing of its watch (resume handlers are due for it). */
  noticedByListing = false;
  /** All changing handlers finished at least once in this process (no more resuming). */
  fullyHandledOnce = false;
  /** The resourceVersion of our last write, until it comes back through the watch. */
  awaitedVersion: string | undefined = undefined;
  /** Until when (ms since the epoch) to wait for {@linkcode awaitedVersion}. */
  awaitedUntil = 0;
  /** Our last write added the finalizer in the same request as the handlers' first outcome. */
  finalizerAddedWithOutcome = false;
  /** Serialises `on.event` handlers of this object: each event waits for the previous one. */
  eventChain: Promise<void> = Promise.resolve();
  readonly #recent: string[] = [];

  /** Remember a new object. */
  constructor(uid: string | undefined, memo: Memo) {
    this.uid = uid;
    this.memo = memo;
  }

  /** Note a resourceVersion delivered by the watch; releases a wait for it. */
  see(resourceVersion: string | undefined): void {
    if (resourceVersion === undefined) return;
    if (resourceVersion === this.awaitedVersion) this.awaitedVersion = undefined;
    this.#recent.push(resourceVersion);
    if (this.#recent.length > RECENT_VERSIONS) this.#recent.shift();
  }

  /**
   * Wait for our own write (its resulting resourceVersion) to come back through the watch, for
   * at most `timeoutMs`. A version that has already arrived (the watch can be faster than the
   * response of the write) needs no wait.
   */
  await(resourceVersion: string | undefined, timeoutMs: number, now: number): void {
    if (resourceVersion === undefined || timeoutMs <= 0 || this.#recent.includes(resourceVersion)) {
      this.awaitedVersion = undefined;
      return;
    }
    this.awaitedVersion = resourceVersion;
    this.awaitedUntil = now + timeoutMs;
  }

  /**
   * Milliseconds left to wait for our own write to come back, or 0 when the cache is consistent
   * with it (or the wait has timed out — then the wait is given up, as Kopf does).
   */
  consistencyWait(now: number): number {
    if (this.awaitedVersion === undefined) return 0;
    const left = this.awaitedUntil - now;
    if (left > 0) return left;
    this.awaitedVersion = undefined;
    return 0;
  }
}

/**
 * The memories of all objects, by the operator's object key.
 *
 * @example
 * ```ts ignore
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
      return existing;
    }
    // Kopf's copy.copy(): a shallow copy keeping the memo's class, or the memo's own copy.
    const created = new ObjectMemory(uid, copyMemo(this.#memo));
    this.#memories.set(key, created);
    return created;
  }

  /** Forget an object (it is gone). */
  forget(key: string): void {
    this.#memories.delete(key);
  }
}
