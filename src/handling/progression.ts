/**
 * Handlers' progress across handling cycles (Kopf's `progression`): the state of each handler
 * for the current cause, built from stored records, advanced by outcomes, and written back as
 * patch fragments. Time is always passed in (`now`), never read from a clock here.
 *
 * @module
 */

import { deepEqual, type JsonObject, type RawBody } from "../storage/fields.ts";
import type { ProgressRecord, ProgressStorage } from "../storage/progress.ts";
import type { Outcome } from "../actions/errors.ts";

/** Format a time as Kopf does: ISO-8601, microseconds, explicit UTC offset. */
export function formatIso8601(date: Date): string {
  // toISOString() always ends in ".sssZ" (years 0–9999): cut, not a regex, on the hot path.
  const iso = date.toISOString();
  return `${iso.slice(0, -1)}000+00:00`;
}

/**
 * Parse a stored timestamp: with or without an offset (Kopf before 1.38 wrote naive UTC
 * times), `Z`, and with any fraction digits. Unparsable values give `null`.
 */
export function parseIso8601(value: unknown): Date | null {
  if (typeof value !== "string" || !value) return null;
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?(Z|[+-]\d{2}:?\d{2})?$/i
    .exec(value.trim());
  if (!m) return null;
  const [, date, time, fraction = "", zone = "Z"] = m;
  const ms = fraction ? `.${fraction.padEnd(3, "0").slice(0, 3)}` : "";
  const offset = zone.toUpperCase() === "Z" ? "Z" : zone.replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
  const parsed = new Date(`${date}T${time.length === 5 ? `${time}:00` : time}${ms}${offset}`);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}

/** One handler's progress for the current cause. Immutable: transitions return new states. */
export class HandlerState {
  /** Whether it takes part in this cycle's done/delays (vs. only counted and purged). */
  readonly active: boolean;
  /** First attempt. */
  readonly started: Date;
  /** Finished (success or failure) at. */
  readonly stopped: Date | null;
  /** Retry not before. */
  readonly delayed: Date | null;
  /** The cause reason this progress is for. */
  readonly purpose: string | null;
  /** Attempts made. */
  readonly retries: number;
  /** Finished successfully. */
  readonly success: boolean;
  /** Finished with a permanent failure. */
  readonly failure: boolean;
  /** The last error message. */
  readonly message: string | null;
  /** Sub-handler ids of any depth. */
  readonly subrefs: readonly string[];
  /** The record as read from storage, to skip writing unchanged records. */
  readonly origin: ProgressRecord | null;

  private constructor(fields: {
    active: boolean;
    started: Date;
    stopped?: Date | null;
    delayed?: Date | null;
    purpose?: string | null;
    retries?: number;
    success?: boolean;
    failure?: boolean;
    message?: string | null;
    subrefs?: readonly string[];
    origin?: ProgressRecord | null;
  }) {
    this.active = fields.active;
    this.started = fields.started;
    this.stopped = fields.stopped ?? null;
    this.delayed = fields.delayed ?? null;
    this.purpose = fields.purpose ?? null;
    this.retries = fields.retries ?? 0;
    this.success = fields.success ?? false;
    this.failure = fields.failure ?? false;
    this.message = fields.message ?? null;
    this.subrefs = fields.subrefs ?? [];
    this.origin = fields.origin ?? null;
  }

  /** A handler never attempted for this cause. */
  static fromScratch(now: Date, purpose: string | null = null): HandlerState {
    return new HandlerState({ active: true, started: now, purpose });
  }

  /** A handler's state as stored (passive until the current cause selects it). */
  static fromRecord(record: ProgressRecord, now: Date): HandlerState {
    return new HandlerState({
      active: false,
      started: parseIso8601(record.started) ?? now,
      stopped: parseIso8601(record.stopped),
      delayed: parseIso8601(record.delayed),
      purpose: record.purpose || null,
      retries: typeof record.retries === "number" ? record.retries : 0,
      success: record.success === true,
      failure: record.failure === true,
      message: typeof record.message === "string" ? record.message : null,
      subrefs: Array.isArray(record.subrefs) ? record.subrefs.map(String) : [],
      origin: record,
    });
  }

  /** Finished, either way. */
  get finished(): boolean {
    return this.success || this.failure;
  }

  /** Waiting for a retry time in the future. */
  isSleeping(now: Date): boolean {
    return !this.finished && this.delayed !== null && this.delayed.getTime() > now.getTime();
  }

  /** Due to run now. */
  isAwakened(now: Date): boolean {
    return !this.finished && !this.isSleeping(now);
  }

  /** Seconds since the first attempt. */
  runtime(now: Date): number {
    return (now.getTime() - this.started.getTime()) / 1000;
  }

  /** The record to store (all fields; storages omit nulls as Kopf does). */
  toRecord(): ProgressRecord {
    // Unchanged times keep their stored text: Kopf writes microseconds, Dates hold milliseconds,
    // and re-formatting would make every record read from Kopf look changed (and be rewritten).
    const text = (date: Date | null, stored: string | null | undefined): string | null =>
      date === null
        ? null
        : stored && parseIso8601(stored)?.getTime() === date.getTime()
        ? stored
        : formatIso8601(date);
    return {
      started: text(this.started, this.origin?.started),
      stopped: text(this.stopped, this.origin?.stopped),
      delayed: text(this.delayed, this.origin?.delayed),
      purpose: this.purpose,
      retries: this.retries,
      success: this.success,
      failure: this.failure,
      message: this.message,
      subrefs: this.subrefs.length ? [...this.subrefs].sort() : null,
    };
  }

  /** The record without nulls, as it looks after a round trip through the API server. */
  asStored(): ProgressRecord {
    return Object.fromEntries(
      Object.entries(this.toRecord()).filter(([, v]) => v !== null && v !== undefined),
    ) as ProgressRecord;
  }

  /** Selected by the current cause. */
  asActive(): HandlerState {
    return new HandlerState({ ...this, active: true });
  }

  /** Re-purposed for another cause. */
  withPurpose(purpose: string | null): HandlerState {
    return new HandlerState({ ...this, purpose });
  }

  /** The state after one attempt's outcome. */
  withOutcome(outcome: Outcome, now: Date): HandlerState {
    const failed = outcome.error !== undefined;
    return new HandlerState({
      ...this,
      stopped: this.stopped ?? (outcome.final ? now : null),
      delayed: outcome.delay !== null && !outcome.final
        ? new Date(now.getTime() + outcome.delay * 1000)
        : null,
      success: outcome.final && !failed,
      failure: outcome.final && failed,
      retries: this.retries + 1,
      message: failed ? outcome.error!.message : null,
      subrefs: [...new Set([...this.subrefs, ...outcome.subrefs])].sort(),
    });
  }
}

/** Success/failure/running counts. */
export interface StateCounters {
  /** Succeeded. */
  success: number;
  /** Failed for good. */
  failure: number;
  /** Not finished. */
  running: number;
}

/** The progress of all handlers of one object for the current cause. Immutable. */
export class State {
  /** Handler id → state. */
  readonly states: ReadonlyMap<string, HandlerState>;
  /** The current cause's reason. */
  readonly purpose: string | null;

  /** Wrap states. */
  constructor(
    states: ReadonlyMap<string, HandlerState> = new Map(),
    purpose: string | null = null,
  ) {
    this.states = states;
    this.purpose = purpose;
  }

  /** Read the stored records of the given handlers (ids of all handlers for the resource). */
  static fromStorage(
    body: RawBody,
    storage: ProgressStorage,
    handlerIds: Iterable<string>,
    now: Date,
  ): State {
    const states = new Map<string, HandlerState>();
    for (const id of new Set(handlerIds)) {
      const record = storage.fetch(id, body);
      if (record !== null) states.set(id, HandlerState.fromRecord(record, now));
    }
    return new State(states);
  }

  /** The state of one handler. */
  get(id: string): HandlerState | undefined {
    return this.states.get(id);
  }

  /** Set the purpose; with ids, also re-purpose those handlers' states. */
  withPurpose(purpose: string | null, ids: Iterable<string> = []): State {
    const states = new Map(this.states);
    for (const id of ids) {
      const state = states.get(id);
      if (state) states.set(id, state.withPurpose(purpose));
    }
    return new State(states, purpose);
  }

  /** Activate the handlers selected for the current cause (new ones start from scratch). */
  withHandlers(ids: Iterable<string>, now: Date): State {
    const states = new Map(this.states);
    for (const id of ids) {
      const state = states.get(id);
      states.set(id, state ? state.asActive() : HandlerState.fromScratch(now, this.purpose));
    }
    return new State(states, this.purpose);
  }

  /** Apply outcomes of this cycle's attempts. */
  withOutcomes(outcomes: ReadonlyMap<string, Outcome>, now: Date): State {
    const unknown = [...outcomes.keys()].filter((id) => !this.states.has(id));
    if (unknown.length) throw new Error(`Unexpected outcomes for unknown handlers: ${unknown}`);
    const states = new Map(this.states);
    for (const [id, outcome] of outcomes) states.set(id, states.get(id)!.withOutcome(outcome, now));
    return new State(states, this.purpose);
  }

  /** Write every changed record into the patch. */
  store(body: RawBody, patch: JsonObject, storage: ProgressStorage): void {
    for (const [id, state] of this.states) {
      if (!deepEqual(state.asStored(), state.origin)) {
        storage.store(id, state.toRecord(), body, patch);
      }
    }
    storage.flush();
  }

  /** Remove the records of the given handlers, of any other known ones, and of all subrefs. */
  purge(
    body: RawBody,
    patch: JsonObject,
    storage: ProgressStorage,
    ownedIds: Iterable<string>,
  ): void {
    const owned = new Set(ownedIds);
    for (const id of owned) storage.purge(id, body, patch);
    for (const [id, state] of this.states) {
      if (!owned.has(id)) storage.purge(id, body, patch);
      for (const subref of state.subrefs) storage.purge(subref, body, patch);
    }
    storage.flush();
  }

  /** All active handlers finished (vacuously true without handlers). */
  get done(): boolean {
    return [...this.states.values()].every((s) => !s.active || s.finished);
  }

  /** Counters per other purpose (causes superseded by the current one). */
  get extras(): Map<string, StateCounters> {
    const result = new Map<string, StateCounters>();
    for (const state of this.states.values()) {
      if (state.purpose === null || state.purpose === this.purpose) continue;
      const c = result.get(state.purpose) ?? { success: 0, failure: 0, running: 0 };
      if (state.success) c.success++;
      if (state.failure) c.failure++;
      if (!state.finished) c.running++;
      result.set(state.purpose, c);
    }
    return result;
  }

  /** Counters of handlers of the current purpose (and purpose-less ones). */
  get counts(): StateCounters {
    const c = { success: 0, failure: 0, running: 0 };
    for (const state of this.states.values()) {
      if (this.purpose !== null && state.purpose !== null && state.purpose !== this.purpose) {
        continue;
      }
      if (state.success) c.success++;
      if (state.failure) c.failure++;
      if (!state.finished) c.running++;
    }
    return c;
  }

  /** Seconds until each unfinished active handler is due (0 = now). */
  delays(now: Date): number[] {
    return [...this.states.values()]
      .filter((s) => s.active && !s.finished)
      .map((s) => s.delayed ? Math.max(0, (s.delayed.getTime() - now.getTime()) / 1000) : 0);
  }

  /** The earliest delay, or `null` if nothing is pending. */
  delay(now: Date): number | null {
    const delays = this.delays(now);
    return delays.length ? Math.min(...delays) : null;
  }
}
