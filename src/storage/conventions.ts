/**
 * Kopf's naming conventions for annotation keys: safe names, V1/V2 keys, hash suffixes, the
 * `-ofDRS` collision mark, and detection of other Kopf operators' prefixes.
 *
 * Everything here is byte-for-byte compatible with Python Kopf (`kopf._cogs.configs.conventions`)
 * so that objects handled by a Python Kopf operator keep their progress and diff-base when the
 * operator is ported, and vice versa.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { blake2b } from "./_blake2b.ts";
import { isObject, type JsonObject, type RawBody } from "./fields.ts";

const logger = getLogger(["kopf", "storage"]);

/** The marker annotation name that brands a prefix as Kopf-managed. */
export const MARKER_NAME = "kopf-managed";

const KNOWN_MARKERS: ReadonlySet<string> = new Set([MARKER_NAME]);
const KNOWN_PREFIXES: readonly string[] = ["kopf.zalando.org"];

// Kubernetes limits: a name part of a key is at most 63 chars, the whole key at most 253.
const MAX_NAME_LENGTH = 63;
const MAX_KEY_LENGTH = 253;

/**
 * Make a handler id safe for annotation names: `/` → `.`, `<`/`>` → `_` (Kopf's rule).
 *
 * Beyond Kopf, any other character that Kubernetes forbids in an annotation name (e.g. `:` in
 * ids of anonymous handlers, spaces) also becomes `_`. Kopf would produce an invalid key there
 * (the PATCH fails with 422), so this never diverges from a key Kopf can actually write.
 */
export function makeSafeName(key: string): string {
  return key.replaceAll("/", ".").replace(/[<>]/g, "_").replace(/[^A-Za-z0-9._-]/g, "_");
}

/** The `-XXXXXX` suffix for shortened keys: base64 (altchars `-.`) of a 4-byte BLAKE2b digest. */
export function makeSuffix(key: string): string {
  const digest = blake2b(new TextEncoder().encode(key), 4);
  const b64 = btoa(String.fromCharCode(...digest)).replaceAll("+", "-").replaceAll("/", ".");
  return `-${b64}`.replace(/[=\-.]+$/, "");
}

/**
 * Mark keys of objects whose annotations Kubernetes copies from their owners.
 *
 * Deployments' annotations are propagated to their ReplicaSets, which would overwrite the
 * ReplicaSets' own Kopf state; Kopf suffixes such keys with `-ofDRS`.
 */
export function markKey(key: string, body?: RawBody | null): string {
  if (!body) return key;
  const owners = body.metadata?.ownerReferences ?? [];
  const ownedByDeployment = Array.isArray(owners) && owners.some((o) => o?.kind === "Deployment");
  return body.kind === "ReplicaSet" && ownedByDeployment ? `${key}-ofDRS` : key;
}

/** Options of a key-forming convention. */
export interface KeyFormingOptions {
  /** The annotations prefix, e.g. `kopf.zalando.org`. Must be non-empty. */
  prefix: string;
  /** Also write legacy V1 keys where they differ from V2 keys (Kopf's default: true). */
  v1: boolean;
}

/**
 * Forms annotation keys from storage record keys (handler ids) the way Kopf does.
 *
 * V2 keys apply the 63-char limit to the name only; V1 keys (legacy) applied it to the whole
 * key including the prefix. Both are written while `v1` is on, for safe rollbacks; both are
 * read, V2 first.
 */
export class KeyFormer {
  /** The annotations prefix (without the trailing `/`). */
  readonly prefix: string;
  /** Whether the legacy V1 keys are also formed. */
  readonly v1: boolean;
  /** Keys formed so far, by marked record key. */
  #keys = new Map<string, readonly string[]>();

  /** Validate the prefix; warn (like Kopf) if keys under it may exceed 253 chars. */
  constructor(options: KeyFormingOptions) {
    if (!options.prefix) throw new Error("Annotations storages must be prefixed.");
    this.prefix = options.prefix;
    this.v1 = options.v1;
    if (this.prefix.length > MAX_KEY_LENGTH - MAX_NAME_LENGTH - 1) {
      logger.warn("The annotations prefix is too long. It can cause errors when PATCHing.", {
        prefix: this.prefix,
      });
    }
  }

  /** All keys for a record key: the V2 key first, then the V1 key if it differs. */
  makeKeys(key: string, body?: RawBody | null): readonly string[] {
    const marked = markKey(key, body);
    let keys = this.#keys.get(marked);
    if (!keys) {
      const v2 = this.makeV2Key(marked);
      const v1 = this.v1 ? this.makeV1Key(marked) : v2;
      keys = v1 === v2 ? [v2] : [v2, v1];
      // Record keys are the handlers' ids: few, and asked for on every cycle of every object.
      if (this.#keys.size < 10_000) this.#keys.set(marked, keys);
    }
    return keys;
  }

  /** The legacy key: the 63-char limit applies to prefix + name. */
  makeV1Key(key: string, maxLength: number = MAX_NAME_LENGTH): string {
    const safe = makeSafeName(key);
    const prefix = `${this.prefix}/`;
    const suffix = safe.length <= maxLength - prefix.length ? "" : makeSuffix(safe);
    // A negative end slices from the end, as Python's `safe_key[:n]` does for long prefixes.
    return `${prefix}${safe.slice(0, maxLength - prefix.length - suffix.length)}${suffix}`;
  }

  /** The current key: the 63-char limit applies to the name only. */
  makeV2Key(key: string, maxLength: number = MAX_NAME_LENGTH): string {
    const prefix = `${this.prefix}/`;
    // Kopf hashes the unsafe key here (and the safe one in V1); kept as is for identical keys.
    const suffix = key.length > maxLength ? makeSuffix(key) : "";
    const limit = Math.max(0, maxLength - suffix.length);
    return `${prefix}${makeSafeName(key).slice(0, limit)}${suffix}`;
  }
}

/**
 * Prefixes that belong to Kopf-based operators among the given annotation keys.
 *
 * A prefix is Kopf's if any key under it is `<prefix>/kopf-managed`, or if it is (a subdomain
 * of) `kopf.zalando.org`. Their annotations are excluded from essences to avoid ping-pong
 * between operators.
 */
export function detectMarkedPrefixes(keys: Iterable<string>): Set<string> {
  const prefixes = new Set<string>();
  for (const key of keys) {
    const slash = key.indexOf("/");
    if (slash < 0) continue;
    const prefix = key.slice(0, slash);
    const name = key.slice(slash + 1);
    if (KNOWN_MARKERS.has(name)) {
      prefixes.add(prefix);
    } else if (KNOWN_PREFIXES.some((p) => prefix === p || prefix.endsWith(`.${p}`))) {
      prefixes.add(prefix);
    }
  }
  return prefixes;
}

/** Add `<prefix>/kopf-managed: "yes"` unless the prefix starts with `kopf.` or it is there. */
export function storeMarker(prefix: string, patch: JsonObject, body: RawBody): void {
  if (!prefix || prefix.startsWith("kopf.")) return;
  const marker = `${prefix}/${MARKER_NAME}`;
  const bodyAnnotations = body.metadata?.annotations ?? {};
  const patchMeta = isObject(patch.metadata) ? patch.metadata : undefined;
  const patchAnnotations = isObject(patchMeta?.annotations) ? patchMeta.annotations : {};
  if (Object.hasOwn(bodyAnnotations, marker) || Object.hasOwn(patchAnnotations, marker)) return;
  const metadata = isObject(patch.metadata) ? patch.metadata : (patch.metadata = {});
  const annotations = isObject(metadata.annotations)
    ? metadata.annotations
    : (metadata.annotations = {});
  annotations[marker] = "yes";
}
