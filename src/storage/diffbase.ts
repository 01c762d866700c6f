/**
 * Diff-base storages: the last handled "essence" of an object, against which changes are
 * detected (Kopf's `last-handled-configuration`).
 *
 * The essence is the object without identity, system metadata and status (Kopf's rules), with
 * only the labels and the non-Kopf annotations kept. Storages write into a merge-patch object;
 * they never talk to the API server.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { objectReference } from "../kube/resource.ts";
import { detectMarkedPrefixes, KeyFormer, storeMarker } from "./conventions.ts";
import {
  cherrypick,
  compactJson,
  deepCopy,
  ensureField,
  type FieldPath,
  type FieldSpec,
  isObject,
  type JsonObject,
  parseField,
  type RawBody,
  removeField,
  resolveField,
} from "./fields.ts";
import { removeAnnotations, removeEmptyStanzas } from "./progress.ts";

const logger = getLogger(["kopf", "storage"]);

/**
 * An object's essence: the meaningful fields whose changes are worth reacting to.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const storage = new kopf.AnnotationsDiffBaseStorage();
 * const essence: kopf.BodyEssence = storage.build({
 *   apiVersion: "kopf.dev/v1",
 *   kind: "KopfExample",
 *   metadata: { name: "ex1", uid: "1234", labels: { app: "demo" } },
 *   spec: { size: 1 },
 *   status: { phase: "Ready" },
 * });
 * assert.deepEqual(essence, { metadata: { labels: { app: "demo" } }, spec: { size: 1 } });
 * ```
 */
export type BodyEssence = JsonObject;

/** Kubernetes' limit on the total size of an object's annotations (keys + values, bytes). */
export const ANNOTATIONS_SIZE_LIMIT: number = 256 * 1024;

/**
 * The key of a degraded diff-base: an essence too big for the annotations limit is stored as
 * `{"$kopf-digest": "<hash>"}` instead (see {@linkcode AnnotationsDiffBaseStorage}).
 */
export const DIGEST_KEY = "$kopf-digest";

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** Whether a stored essence is a degraded digest-only diff-base. */
export function isDigestEssence(essence: unknown): essence is { [DIGEST_KEY]: string } {
  return isObject(essence) && typeof essence[DIGEST_KEY] === "string";
}

/** JSON with sorted keys, so equal data gives equal text regardless of key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * A fast 64-bit change-detection hash of an essence (not a security hash: it only tells whether
 * an oversized essence changed since it was last handled).
 */
export function essenceDigest(essence: BodyEssence): string {
  const text = canonicalJson(essence);
  let h1 = 0xdeadbeef ^ text.length;
  let h2 = 0x41c6ce57 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, "0");
  return `h64:${hex(h2)}${hex(h1)}`;
}

/** Total annotations size (bytes of keys + values) of the body with the patch applied. */
export function annotationsSize(body: RawBody, patch: JsonObject, extra: JsonObject = {}): number {
  const merged: Record<string, unknown> = { ...(body.metadata?.annotations ?? {}) };
  const patched = resolveField(patch, ["metadata", "annotations"], {});
  for (const source of [isObject(patched) ? patched : {}, extra]) {
    for (const [key, value] of Object.entries(source)) {
      if (value === null || value === undefined) delete merged[key];
      else merged[key] = value;
    }
  }
  const encoder = new TextEncoder();
  let size = 0;
  for (const [key, value] of Object.entries(merged)) {
    size += encoder.encode(key).length + encoder.encode(String(value)).length;
  }
  return size;
}

/**
 * Options of every diff-base storage.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // An autoscaler owns spec.replicas: its changes are not ours to handle.
 * const options: kopf.DiffBaseStorageOptions = { ignoredFields: ["spec.replicas"] };
 * const storage = new kopf.AnnotationsDiffBaseStorage(options);
 * assert.deepEqual(storage.build({ spec: { replicas: 3, image: "nginx" } }), {
 *   spec: { image: "nginx" },
 * });
 * ```
 */
export interface DiffBaseStorageOptions {
  /** Fields never considered part of the essence (e.g. `spec.replicas` managed by an HPA). */
  ignoredFields?: Iterable<FieldSpec>;
}

/**
 * The interface of a diff-base storage (Kopf's `DiffBaseStorage`), with Kopf's essence rules.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // Whether an object changed since it was last handled, whichever storage keeps the diff-base.
 * function changed(storage: kopf.DiffBaseStorage, body: kopf.RawBody): boolean {
 *   const last = storage.fetch(body);
 *   return last === null || kopf.diff(last, storage.build(body)).length > 0;
 * }
 * assert.equal(changed(new kopf.AnnotationsDiffBaseStorage(), { spec: { size: 1 } }), true);
 * ```
 */
export abstract class DiffBaseStorage {
  /** Fields removed from every essence. */
  readonly ignoredFields: FieldPath[];

  /** Remember the ignored fields. */
  constructor(options: DiffBaseStorageOptions = {}) {
    this.ignoredFields = [...(options.ignoredFields ?? [])].map((f) => parseField(f));
  }

  /**
   * Extract the essence of a body: no `apiVersion`/`kind`, no `metadata` except labels and
   * non-Kopf annotations (and not kubectl's last-applied-configuration), no `status`; then the
   * `extraFields` (fields that handlers watch, e.g. `status.phase`) are put back; empty stanzas
   * are pruned; ignored fields are removed.
   */
  build(body: RawBody, extraFields: Iterable<FieldSpec> = []): BodyEssence {
    // Copied key by key: the stanzas left out (metadata, status) are never copied at all.
    const essence: JsonObject = {};
    for (const key of Object.keys(body)) {
      if (!NOT_ESSENCE.has(key)) essence[key] = deepCopy(body[key]);
    }

    cherrypick(body, essence, [["metadata", "labels"], ["metadata", "annotations"]]);

    const annotations = resolveField(essence, ["metadata", "annotations"]);
    if (isObject(annotations)) {
      const ignoredPrefixes = detectMarkedPrefixes(Object.keys(annotations));
      for (const key of Object.keys(annotations)) {
        const prefix = key.includes("/") ? key.slice(0, key.indexOf("/")) : null;
        if ((prefix !== null && ignoredPrefixes.has(prefix)) || key === LAST_APPLIED) {
          delete annotations[key];
        }
      }
    }

    cherrypick(body, essence, extraFields);
    removeEmptyStanzas(essence);
    for (const field of this.ignoredFields) removeField(essence, field);
    return essence;
  }

  /** The stored essence, or `null` if none (or unreadable). */
  abstract fetch(body: RawBody): BodyEssence | null;

  /** Write the essence into the patch. */
  abstract store(body: RawBody, patch: JsonObject, essence: BodyEssence): void;
}

/** Top-level keys that are not in an essence (metadata's labels and annotations come back). */
const NOT_ESSENCE = new Set(["apiVersion", "kind", "metadata", "status"]);

/** Parse a stored essence; corrupt or non-object JSON is treated as absent, with a warning. */
function decodeEssence(where: string, encoded: unknown, body: RawBody): BodyEssence | null {
  if (typeof encoded !== "string") return null;
  try {
    const decoded: unknown = JSON.parse(encoded);
    if (isObject(decoded)) return decoded;
  } catch {
    // fall through to the warning
  }
  logger.warn("Ignoring the unparsable diff-base in {where}; treating it as absent.", {
    where,
    object: objectReference(body),
  });
  return null;
}

/**
 * Options of {@linkcode AnnotationsDiffBaseStorage}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.AnnotationsDiffBaseStorageOptions = { prefix: "my-op.example.com" };
 * const settings = new kopf.Settings();
 * settings.persistence.diffbaseStorage = new kopf.AnnotationsDiffBaseStorage(options);
 * ```
 */
export interface AnnotationsDiffBaseStorageOptions extends DiffBaseStorageOptions {
  /** Annotations prefix; default `kopf.zalando.org`. */
  prefix?: string;
  /** Annotation name; default `last-handled-configuration`. */
  key?: string;
  /** Also write legacy V1 keys; default true (as Kopf). */
  v1?: boolean;
  /** Total annotations size allowed; default 256 KiB (Kubernetes' limit). */
  sizeLimit?: number;
  /** Bytes kept free for progress records and markers written in later cycles; default 8 KiB. */
  sizeReserve?: number;
}

/**
 * The diff-base in the annotation `<prefix>/last-handled-configuration`: compact JSON of the
 * essence plus a trailing newline (Kopf's default and format).
 *
 * Unlike Kopf, an essence that would push the object's annotations over Kubernetes' 256 KiB
 * limit (which makes every PATCH fail with 422 and blocks deletion) is stored as a digest with
 * a warning: changes are still detected, but handlers see no per-field diff for that object.
 * While the object is being deleted, an oversized diff-base is not written at all.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const storage = new kopf.AnnotationsDiffBaseStorage({ prefix: "my-op.example.com" });
 * const body = { metadata: { name: "ex1" }, spec: { size: 1 } };
 * const patch: kopf.JsonObject = {};
 * storage.store(body, patch, storage.build(body));
 * const stored = { metadata: patch.metadata as kopf.RawBody["metadata"] };
 * assert.deepEqual(storage.fetch(stored), { spec: { size: 1 } });
 * ```
 */
export class AnnotationsDiffBaseStorage extends DiffBaseStorage {
  /**
   * Key forming for this prefix.
   *
   * @internal
   */
  readonly keys: KeyFormer;
  /** The annotation name. */
  readonly key: string;
  /** Total annotations size allowed. */
  readonly sizeLimit: number;
  /** Bytes kept free below the limit. */
  readonly sizeReserve: number;

  /** Create a storage; defaults match Kopf's. */
  constructor(options: AnnotationsDiffBaseStorageOptions = {}) {
    super(options);
    this.keys = new KeyFormer({
      prefix: options.prefix ?? "kopf.zalando.org",
      v1: options.v1 ?? true,
    });
    this.key = options.key ?? "last-handled-configuration";
    this.sizeLimit = options.sizeLimit ?? ANNOTATIONS_SIZE_LIMIT;
    this.sizeReserve = options.sizeReserve ?? 8 * 1024;
  }

  /** The annotations prefix. */
  get prefix(): string {
    return this.keys.prefix;
  }

  /** Build the essence of a body. */
  override build(body: RawBody, extraFields: Iterable<FieldSpec> = []): BodyEssence {
    const essence = super.build(body, extraFields);
    removeAnnotations(essence, this.keys.makeKeys(this.key, body));
    removeEmptyStanzas(essence);
    return essence;
  }

  /** The stored record (or essence), or `null`. */
  override fetch(body: RawBody): BodyEssence | null {
    const annotations = body.metadata?.annotations ?? {};
    for (const fullKey of this.keys.makeKeys(this.key, body)) {
      if (!Object.hasOwn(annotations, fullKey)) continue;
      const decoded = decodeEssence(`annotation ${fullKey}`, annotations[fullKey], body);
      if (decoded !== null) return decoded;
    }
    return null;
  }

  /** Write into the patch. */
  override store(body: RawBody, patch: JsonObject, essence: BodyEssence): void {
    const fullKeys = this.keys.makeKeys(this.key, body);
    let encoded = `${compactJson(essence)}\n`;
    const planned = Object.fromEntries(fullKeys.map((k) => [k, encoded]));
    if (annotationsSize(body, patch, planned) > this.sizeLimit - this.sizeReserve) {
      if (body.metadata?.deletionTimestamp) {
        // Nothing to compare against after deletion; never let a 422 hold the finalizer.
        logger.debug("Skipping the oversized diff-base of an object being deleted.");
        return;
      }
      logger.warn(
        "The diff-base would exceed the {limit}-byte annotations limit; storing a digest " +
          "instead: changes are still detected, but handlers get no per-field diff.",
        { limit: this.sizeLimit, object: objectReference(body) },
      );
      encoded = `${compactJson({ [DIGEST_KEY]: essenceDigest(essence) })}\n`;
    }
    for (const fullKey of fullKeys) {
      ensureField(patch, ["metadata", "annotations", fullKey], encoded);
    }
    storeMarker(this.prefix, patch, body);
  }
}

/**
 * Options of {@linkcode StatusDiffBaseStorage}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const options: kopf.StatusDiffBaseStorageOptions = { field: "status.operator.last-handled" };
 * const storage = new kopf.StatusDiffBaseStorage(options);
 * assert.deepEqual(storage.field, ["status", "operator", "last-handled"]);
 * ```
 */
export interface StatusDiffBaseStorageOptions extends DiffBaseStorageOptions {
  /** The name substituted into `{name}`; default `kopf`. */
  name?: string;
  /** Where the JSON string lives; default `status.{name}.last-handled-configuration`. */
  field?: FieldSpec;
}

/**
 * The diff-base as a JSON string in the status stanza (Kopf's `StatusDiffBaseStorage`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const storage = new kopf.StatusDiffBaseStorage({ name: "my-op" });
 * const patch: kopf.JsonObject = {};
 * storage.store({}, patch, { spec: { size: 1 } });
 * const stored = { "last-handled-configuration": '{"spec":{"size":1}}' };
 * assert.deepEqual(patch, { status: { "my-op": stored } });
 * ```
 */
export class StatusDiffBaseStorage extends DiffBaseStorage {
  /** Path to the JSON string. */
  readonly field: FieldPath;

  /** Create a storage; defaults match Kopf's. */
  constructor(options: StatusDiffBaseStorageOptions = {}) {
    super(options);
    const name = options.name ?? "kopf";
    const field = options.field ?? "status.{name}.last-handled-configuration";
    this.field = typeof field === "string"
      ? parseField(field.replaceAll("{name}", name))
      : [...field];
  }

  /** Build the essence of a body. */
  override build(body: RawBody, extraFields: Iterable<FieldSpec> = []): BodyEssence {
    const essence = super.build(body, extraFields);
    removeField(essence, this.field);
    return essence;
  }

  /** The stored record (or essence), or `null`. */
  override fetch(body: RawBody): BodyEssence | null {
    const encoded = resolveField(body, this.field, null);
    return encoded === null ? null : decodeEssence(`field ${this.field.join(".")}`, encoded, body);
  }

  /** Write into the patch. */
  override store(_body: RawBody, patch: JsonObject, essence: BodyEssence): void {
    // A string rather than an object: merge-patches would otherwise merge old and new essences.
    ensureField(patch, this.field, compactJson(essence));
  }
}

/**
 * Several diff-base storages: writes go to all, reads return the first essence found.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Move from the status stanza to annotations: read both, write both.
 * const settings = new kopf.Settings();
 * settings.persistence.diffbaseStorage = new kopf.MultiDiffBaseStorage([
 *   new kopf.AnnotationsDiffBaseStorage(),
 *   new kopf.StatusDiffBaseStorage(),
 * ]);
 * ```
 */
export class MultiDiffBaseStorage extends DiffBaseStorage {
  /** The storages, in reading priority. */
  readonly storages: readonly DiffBaseStorage[];

  /** Combine storages. */
  constructor(storages: readonly DiffBaseStorage[]) {
    super();
    this.storages = storages;
  }

  /** Build the essence of a body. */
  override build(body: RawBody, extraFields: Iterable<FieldSpec> = []): BodyEssence {
    const fields = [...extraFields];
    let essence = super.build(body, fields);
    // Each storage cleans its own fields, treating what is left of the essence as the body.
    for (const storage of this.storages) essence = storage.build(essence, fields);
    return essence;
  }

  /** The stored record (or essence), or `null`. */
  override fetch(body: RawBody): BodyEssence | null {
    for (const storage of this.storages) {
      const essence = storage.fetch(body);
      if (essence !== null) return essence;
    }
    return null;
  }

  /** Write into the patch. */
  override store(body: RawBody, patch: JsonObject, essence: BodyEssence): void {
    for (const storage of this.storages) storage.store(body, patch, essence);
  }
}
