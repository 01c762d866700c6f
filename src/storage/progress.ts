/**
 * Progress storages: where each handler's state (started, retries, delays, outcome) is kept
 * between handling cycles, in Kopf's formats.
 *
 * Storages never talk to the API server: `store`/`purge`/`touch` write into a merge-patch
 * object (`metadata.annotations` and/or `status` keys) that the handling cycle sends in its one
 * write. `fetch` reads from the latest body.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { objectReference } from "../kube/resource.ts";
import { KeyFormer, storeMarker } from "./conventions.ts";
import {
  compactJson,
  deepCopy,
  ensureField,
  type FieldPath,
  type FieldSpec,
  hasField,
  isObject,
  type JsonObject,
  parseField,
  type RawBody,
  removeField,
  resolveField,
} from "./fields.ts";

const logger = getLogger(["kopf", "storage"]);

/**
 * One handler's persisted state, exactly as Kopf stores it (nulls omitted when written).
 *
 * Timestamps are ISO-8601 in UTC with microseconds, e.g. `2026-01-02T03:04:05.678000+00:00`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const storage = new kopf.AnnotationsProgressStorage({ v1: false });
 * const record: kopf.ProgressRecord = { started: "2026-01-02T03:04:05.678000+00:00", retries: 1 };
 * const patch: kopf.JsonObject = {};
 * storage.store("create_fn", record, {}, patch);
 * const body = { metadata: patch.metadata as kopf.RawBody["metadata"] };
 * assert.equal(storage.fetch("create_fn", body)?.retries, 1);
 * ```
 */
export interface ProgressRecord {
  /** When the handler was first attempted for the current cause. */
  started?: string | null;
  /** When the handler finished (succeeded or failed for good). */
  stopped?: string | null;
  /** When the handler should be retried. */
  delayed?: string | null;
  /** The cause reason that started it (`create`, `update`, `delete`, `resume`). */
  purpose?: string | null;
  /** How many attempts were made. */
  retries?: number | null;
  /** Finished successfully. */
  success?: boolean | null;
  /** Finished with a permanent failure. */
  failure?: boolean | null;
  /** The last error message. */
  message?: string | null;
  /** Ids of all sub-handlers of any depth (for purging). */
  subrefs?: string[] | null;
}

/** The order in which Kopf serialises record fields. */
const RECORD_FIELDS: readonly (keyof ProgressRecord)[] = [
  "started",
  "stopped",
  "delayed",
  "purpose",
  "retries",
  "success",
  "failure",
  "message",
  "subrefs",
];

/** Whether a value looks like a stored progress record (an object; fields are optional). */
function isRecord(value: unknown): value is ProgressRecord {
  return isObject(value);
}

/** Parse an annotation value; corrupt or non-object JSON is treated as absent, with a warning. */
function decodeRecord(key: string, encoded: unknown, body: RawBody): ProgressRecord | null {
  if (typeof encoded !== "string") return null;
  try {
    const decoded: unknown = JSON.parse(encoded);
    if (decoded === null) return null;
    if (isRecord(decoded)) return decoded;
  } catch {
    // fall through to the warning
  }
  logger.warn(
    "Ignoring the unparsable progress record in annotation {key}; treating it as absent.",
    { key, object: objectReference(body) },
  );
  return null;
}

/**
 * The interface of a progress storage (Kopf's `ProgressStorage`). Subclass it for custom
 * storages; all methods are synchronous and only read `body` and write into `patch`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Progress kept in memory only: lost when the operator restarts (for tests).
 * class MemoryProgressStorage extends kopf.ProgressStorage {
 *   readonly records = new Map<string, kopf.ProgressRecord>();
 *   override fetch(key: string, body: kopf.RawBody): kopf.ProgressRecord | null {
 *     return this.records.get(`${body.metadata?.uid}/${key}`) ?? null;
 *   }
 *   override store(key: string, record: kopf.ProgressRecord, body: kopf.RawBody): void {
 *     this.records.set(`${body.metadata?.uid}/${key}`, record);
 *   }
 *   override purge(key: string, body: kopf.RawBody): void {
 *     this.records.delete(`${body.metadata?.uid}/${key}`);
 *   }
 *   override touch(): void {}
 * }
 * const settings = new kopf.Settings();
 * settings.persistence.progressStorage = new MemoryProgressStorage();
 * ```
 */
export abstract class ProgressStorage {
  /** The stored record of a handler, or `null` if none. */
  abstract fetch(key: string, body: RawBody): ProgressRecord | null;
  /** Write a handler's record into the patch. */
  abstract store(key: string, record: ProgressRecord, body: RawBody, patch: JsonObject): void;
  /** Remove a handler's record (null it in the patch if it is in the body). */
  abstract purge(key: string, body: RawBody, patch: JsonObject): void;
  /** Set (or with `null`, remove) the touch marker used to wake the object up. */
  abstract touch(body: RawBody, patch: JsonObject, value: string | null): void;
  /** Remove this storage's own fields from an essence (a copy is returned). */
  clear(essence: JsonObject): JsonObject {
    return deepCopy(essence);
  }
  /** Hook for storages that batch writes; no-op by default. */
  flush(): void {}
}

/** Null a key in the patch if the body has it; drop a pending write if only the patch has it. */
function purgeField(body: RawBody, patch: JsonObject, field: FieldPath): void {
  if (hasField(body, field)) {
    ensureField(patch, field, null);
  } else if (hasField(patch, field)) {
    removeField(patch, field);
  }
}

/** Remove empty `metadata.annotations`, `metadata.labels`, `metadata`, `status` stanzas. */
export function removeEmptyStanzas(essence: JsonObject): void {
  const metadata = essence.metadata;
  if (isObject(metadata)) {
    for (const key of ["annotations", "labels"]) {
      if (Object.hasOwn(metadata, key)) {
        const value = metadata[key];
        if (!value || (isObject(value) && Object.keys(value).length === 0)) delete metadata[key];
      }
    }
    if (Object.keys(metadata).length === 0) delete essence.metadata;
  } else if (Object.hasOwn(essence, "metadata") && !metadata) {
    delete essence.metadata;
  }
  const status = essence.status;
  if (
    Object.hasOwn(essence, "status") &&
    (!status || (isObject(status) && !Object.keys(status).length))
  ) {
    delete essence.status;
  }
}

/** Remove the given annotation keys from an essence (in place). */
export function removeAnnotations(essence: JsonObject, keys: Iterable<string>): void {
  const metadata = essence.metadata;
  if (!isObject(metadata) || !isObject(metadata.annotations)) return;
  const annotations = metadata.annotations;
  for (const key of keys) delete annotations[key];
}

/**
 * Options of {@linkcode AnnotationsProgressStorage}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.AnnotationsProgressStorageOptions = { prefix: "my-op.example.com" };
 * const settings = new kopf.Settings();
 * settings.persistence.progressStorage = new kopf.AnnotationsProgressStorage(options);
 * ```
 */
export interface AnnotationsProgressStorageOptions {
  /** Annotations prefix; default `kopf.zalando.org`. */
  prefix?: string;
  /** Also store null fields; default false. */
  verbose?: boolean;
  /** Name of the touch annotation; default `touch-dummy`. */
  touchKey?: string;
  /** Also write legacy V1 keys; default true (as Kopf). */
  v1?: boolean;
}

/**
 * Progress in annotations: `<prefix>/<mangled id>` = compact JSON record (Kopf's default).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.persistence.progressStorage = new kopf.AnnotationsProgressStorage({
 *     prefix: "my-op.example.com",
 *   });
 * });
 * ```
 */
export class AnnotationsProgressStorage extends ProgressStorage {
  /**
   * Key forming for this prefix.
   *
   * @internal
   */
  readonly keys: KeyFormer;
  /** Whether null fields are written. */
  readonly verbose: boolean;
  /** The touch annotation name. */
  readonly touchKey: string;

  /** Create a storage; defaults match Kopf's. */
  constructor(options: AnnotationsProgressStorageOptions = {}) {
    super();
    this.keys = new KeyFormer({
      prefix: options.prefix ?? "kopf.zalando.org",
      v1: options.v1 ?? true,
    });
    this.verbose = options.verbose ?? false;
    this.touchKey = options.touchKey ?? "touch-dummy";
  }

  /** The annotations prefix. */
  get prefix(): string {
    return this.keys.prefix;
  }

  /** The stored record (or essence), or `null`. */
  override fetch(key: string, body: RawBody): ProgressRecord | null {
    const annotations = body.metadata?.annotations ?? {};
    for (const fullKey of this.keys.makeKeys(key, body)) {
      if (!Object.hasOwn(annotations, fullKey)) continue;
      const decoded = decodeRecord(fullKey, annotations[fullKey], body);
      if (decoded !== null) return decoded;
    }
    return null;
  }

  /** Write into the patch. */
  override store(key: string, record: ProgressRecord, body: RawBody, patch: JsonObject): void {
    const decoded: JsonObject = {};
    for (const field of RECORD_FIELDS) {
      const value = record[field];
      if (this.verbose ? value !== undefined : value !== undefined && value !== null) {
        decoded[field] = value;
      }
    }
    const encoded = compactJson(decoded);
    for (const fullKey of this.keys.makeKeys(key, body)) {
      ensureField(patch, ["metadata", "annotations", fullKey], encoded);
    }
    storeMarker(this.prefix, patch, body);
  }

  /** Remove from the object via the patch. */
  override purge(key: string, body: RawBody, patch: JsonObject): void {
    for (const fullKey of this.keys.makeKeys(key, body)) {
      purgeField(body, patch, ["metadata", "annotations", fullKey]);
    }
  }

  /** Set or clear the touch marker via the patch. */
  override touch(body: RawBody, patch: JsonObject, value: string | null): void {
    for (const fullKey of this.keys.makeKeys(this.touchKey, body)) {
      const current = resolveField(body, ["metadata", "annotations", fullKey], null);
      if (current !== value) {
        ensureField(patch, ["metadata", "annotations", fullKey], value);
        storeMarker(this.prefix, patch, body);
      }
    }
  }

  /** Remove this storage's own fields from an essence. */
  override clear(essence: JsonObject): JsonObject {
    const copy = super.clear(essence);
    const annotations = resolveField(copy, ["metadata", "annotations"], {});
    if (isObject(annotations)) {
      const own = Object.keys(annotations).filter((k) => k.startsWith(`${this.prefix}/`));
      removeAnnotations(copy, own);
    }
    removeEmptyStanzas(copy);
    return copy;
  }
}

/**
 * Options of {@linkcode StatusProgressStorage}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const options: kopf.StatusProgressStorageOptions = { field: "status.operator.handlers" };
 * const storage = new kopf.StatusProgressStorage(options);
 * assert.deepEqual(storage.field, ["status", "operator", "handlers"]);
 * ```
 */
export interface StatusProgressStorageOptions {
  /** The name substituted into `{name}` in the fields; default `kopf`. */
  name?: string;
  /** Where records live; default `status.{name}.progress`. */
  field?: FieldSpec;
  /** Where the touch marker lives; default `status.{name}.dummy`. */
  touchField?: FieldSpec;
}

function formatField(field: FieldSpec, name: string): string[] {
  return typeof field === "string" ? parseField(field.replaceAll("{name}", name)) : [...field];
}

/**
 * Progress in the status stanza: `status.kopf.progress.<id>` = record (Kopf's legacy storage).
 *
 * Status is pruned by structural schemas unless the CRD preserves unknown fields, and it is a
 * separate write when the status subresource is on: prefer annotations.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // Kopf's legacy storage, here under status.my-op.progress (the CRD must keep such fields).
 * const storage = new kopf.StatusProgressStorage({ name: "my-op" });
 * const patch: kopf.JsonObject = {};
 * storage.store("create_fn", { retries: 2 }, {}, patch);
 * assert.equal(storage.fetch("create_fn", { status: patch.status })?.retries, 2);
 * ```
 */
export class StatusProgressStorage extends ProgressStorage {
  /** Path to the records container. */
  readonly field: FieldPath;
  /** Path to the touch marker. */
  readonly touchField: FieldPath;

  /** Create a storage; defaults match Kopf's. */
  constructor(options: StatusProgressStorageOptions = {}) {
    super();
    const name = options.name ?? "kopf";
    this.field = formatField(options.field ?? "status.{name}.progress", name);
    this.touchField = formatField(options.touchField ?? "status.{name}.dummy", name);
  }

  /** The stored record (or essence), or `null`. */
  override fetch(key: string, body: RawBody): ProgressRecord | null {
    const container = resolveField(body, this.field, {});
    if (!isObject(container)) return null;
    const record = container[key];
    return isRecord(record) ? record : null;
  }

  /** Write into the patch. */
  override store(key: string, record: ProgressRecord, _body: RawBody, patch: JsonObject): void {
    // Nulls are kept: in a merge-patch they delete the stale fields of the previous record.
    const full: JsonObject = {};
    for (const field of RECORD_FIELDS) full[field] = record[field] ?? null;
    ensureField(patch, [...this.field, key], full);
  }

  /** Remove from the object via the patch. */
  override purge(key: string, body: RawBody, patch: JsonObject): void {
    purgeField(body, patch, [...this.field, key]);
  }

  /** Set or clear the touch marker via the patch. */
  override touch(body: RawBody, patch: JsonObject, value: string | null): void {
    const current = resolveField(body, this.touchField, null);
    if (current !== value) ensureField(patch, this.touchField, value);
  }

  /** Remove this storage's own fields from an essence. */
  override clear(essence: JsonObject): JsonObject {
    const copy = super.clear(essence);
    removeField(copy, this.field);
    removeEmptyStanzas(copy);
    return copy;
  }
}

/**
 * Reads and purges `status.kopf.progress` but never writes there (Kopf ≥ 1.44's behaviour):
 * records left by older operators are still honoured and cleaned up.
 */
export class NoWriteStatusProgressStorage extends StatusProgressStorage {
  /** Write into the patch. */
  override store(_key: string, _record: ProgressRecord, _body: RawBody, _patch: JsonObject): void {}
  /** Set or clear the touch marker via the patch. */
  override touch(_body: RawBody, _patch: JsonObject, _value: string | null): void {}
}

/**
 * Several storages: writes go to all, reads return the first record found.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Read annotations first, then status; write both.
 * const storage = new kopf.MultiProgressStorage([
 *   new kopf.AnnotationsProgressStorage(),
 *   new kopf.StatusProgressStorage(),
 * ]);
 * const settings = new kopf.Settings();
 * settings.persistence.progressStorage = storage;
 * ```
 */
export class MultiProgressStorage extends ProgressStorage {
  /** The storages, in reading priority. */
  readonly storages: readonly ProgressStorage[];

  /** Combine storages. */
  constructor(storages: readonly ProgressStorage[]) {
    super();
    this.storages = storages;
  }

  /** The stored record (or essence), or `null`. */
  override fetch(key: string, body: RawBody): ProgressRecord | null {
    for (const storage of this.storages) {
      const record = storage.fetch(key, body);
      if (record !== null) return record;
    }
    return null;
  }

  /** Write into the patch. */
  override store(key: string, record: ProgressRecord, body: RawBody, patch: JsonObject): void {
    for (const storage of this.storages) storage.store(key, record, body, patch);
  }

  /** Remove from the object via the patch. */
  override purge(key: string, body: RawBody, patch: JsonObject): void {
    for (const storage of this.storages) storage.purge(key, body, patch);
  }

  /** Set or clear the touch marker via the patch. */
  override touch(body: RawBody, patch: JsonObject, value: string | null): void {
    for (const storage of this.storages) storage.touch(body, patch, value);
  }

  /** Remove this storage's own fields from an essence. */
  override clear(essence: JsonObject): JsonObject {
    let result = essence;
    for (const storage of this.storages) result = storage.clear(result);
    return result;
  }

  /** Flush batched writes. */
  override flush(): void {
    for (const storage of this.storages) storage.flush();
  }
}

/**
 * Options of {@linkcode SmartProgressStorage}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.SmartProgressStorageOptions = { prefix: "my-op.example.com", name: "my-op" };
 * const settings = new kopf.Settings();
 * settings.persistence.progressStorage = new kopf.SmartProgressStorage(options);
 * ```
 */
export interface SmartProgressStorageOptions
  extends AnnotationsProgressStorageOptions, StatusProgressStorageOptions {}

/**
 * Kopf's default: annotations (read/write) plus `status.kopf.progress` (read/purge only).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const settings = new kopf.Settings();
 * const prefix = "my-op.example.com";
 * settings.persistence.progressStorage = new kopf.SmartProgressStorage({ prefix });
 * ```
 */
export class SmartProgressStorage extends MultiProgressStorage {
  /** Create the default combination. */
  constructor(options: SmartProgressStorageOptions = {}) {
    super([
      new AnnotationsProgressStorage(options),
      new NoWriteStatusProgressStorage(options),
    ]);
  }
}
