/**
 * Cause detection: turn "the object looks like this now" into what happened to it (created,
 * updated, being deleted, resumed after a restart, …), by comparing its essence with the
 * stored diff-base, in Kopf's exact order.
 *
 * @module
 */

import {
  type BodyEssence,
  type DiffBaseStorage,
  essenceDigest,
  isDigestEssence,
} from "../storage/diffbase.ts";
import { deepCopy, type FieldSpec, type RawBody } from "../storage/fields.ts";
import { DEFAULT_FINALIZER, isDeletionBlocked, isDeletionOngoing } from "../storage/finalizers.ts";
import type { ProgressStorage } from "../storage/progress.ts";
import { type Diff, diff } from "../storage/diff.ts";

/** Why handlers are called: the four handler-facing reasons plus three internal ones. */
export type Reason = "create" | "update" | "delete" | "resume" | "noop" | "free" | "gone";

/** Reasons that invoke changing handlers. */
export const HANDLER_REASONS: readonly Reason[] = ["create", "update", "delete", "resume"];

/** Human-readable names (capitalised in logs: "Creation is processed: …"). */
export const TITLES: Readonly<Record<string, string>> = {
  create: "creation",
  update: "updating",
  delete: "deletion",
  resume: "resuming",
};

/** A title with the first letter capitalised, as Kopf logs it. */
export function capitalizedTitle(reason: string): string {
  const title = TITLES[reason] ?? reason;
  return title.charAt(0).toUpperCase() + title.slice(1);
}

/** The raw watch event type; `null` for objects from the initial listing (Kopf's convention). */
export type RawEventType = "ADDED" | "MODIFIED" | "DELETED" | null;

/** An object's essence now, as last handled, and the diff between them. */
export interface Essences {
  /** The stored essence (`null`: never handled — a creation). */
  readonly old: BodyEssence | null;
  /** The current essence. */
  readonly new: BodyEssence;
  /** What changed from `old` to `new`. */
  readonly diff: Diff;
  /**
   * The stored diff-base was a digest (the essence is too big for annotations): `old` is `{}`
   * on changes (so every field reads as added) or a copy of `new` when nothing changed.
   */
  readonly degraded: boolean;
}

/** Inputs of {@linkcode computeEssences}. */
export interface EssenceInput {
  /** The latest body. */
  readonly body: RawBody;
  /** Where the diff-base is kept. */
  readonly diffbaseStorage: DiffBaseStorage;
  /** Where progress is kept (its own fields are excluded from essences). */
  readonly progressStorage: ProgressStorage;
  /** Fields that handlers filter on (e.g. `status.phase`), kept in the essence. */
  readonly extraFields?: Iterable<FieldSpec>;
}

/** Build the current essence, fetch the last handled one, and diff them (Kopf's order). */
export function computeEssences(input: EssenceInput): Essences {
  const { body, diffbaseStorage, progressStorage } = input;
  const extraFields = [...(input.extraFields ?? [])];
  const stored = diffbaseStorage.fetch(body);
  const built = diffbaseStorage.build(body, extraFields);
  const current = progressStorage.clear(built);
  if (stored !== null && isDigestEssence(stored)) {
    const same = stored["$kopf-digest"] === essenceDigest(current);
    const old = same ? deepCopy(current) : {};
    return { old, new: current, diff: same ? [] : diff(old, current), degraded: true };
  }
  const old = stored === null ? null : progressStorage.clear(stored);
  return { old, new: current, diff: diff(old, current), degraded: false };
}

/** Inputs of {@linkcode detectReason}. */
export interface ReasonInput {
  /** The watch event type (`null` for the initial listing). */
  readonly eventType: RawEventType;
  /** The latest body. */
  readonly body: RawBody;
  /** Our finalizer's name. */
  readonly finalizer?: string;
  /** The stored essence (`null`: none). */
  readonly old: BodyEssence | null;
  /** The essence diff. */
  readonly diff: Diff;
  /**
   * The object came from the initial listing and has not been fully handled once in this
   * process: resume handlers are due (once per object per process start).
   */
  readonly initial: boolean;
}

/** The detected reason and whether resume handlers are mixed in. */
export interface DetectedReason {
  /** What happened. */
  readonly reason: Reason;
  /** Resume handlers are due too (always false for creations). */
  readonly initial: boolean;
}

/**
 * Kopf's cause order: DELETED event → gone; deletion ongoing without our finalizer → free;
 * deletion ongoing → delete; no diff-base → create (never mixed with resuming); no diff and
 * initial → resume; no diff → noop; otherwise update (with resume handlers mixed in when
 * initial).
 */
export function detectReason(input: ReasonInput): DetectedReason {
  const { body, initial } = input;
  const finalizer = input.finalizer ?? DEFAULT_FINALIZER;
  if (input.eventType === "DELETED") return { reason: "gone", initial };
  const ongoing = isDeletionOngoing(body);
  if (ongoing && !isDeletionBlocked(body, finalizer)) return { reason: "free", initial };
  if (ongoing) return { reason: "delete", initial };
  if (input.old === null) return { reason: "create", initial: false };
  if (input.diff.length === 0 && initial) return { reason: "resume", initial };
  if (input.diff.length === 0) return { reason: "noop", initial };
  return { reason: "update", initial };
}
