/**
 * Resource types as the API server serves them, and the URLs built from them.
 *
 * A {@linkcode Resource} is one concrete group/version/plural (e.g. `kopfexamples.v1.kopf.dev`),
 * as found by discovery. Objects themselves stay plain JSON ({@linkcode KubeObject}).
 *
 * @module
 */

/**
 * One concrete resource type served by the API server, as found by discovery.
 *
 * Two resources are the same when group, version and plural are equal; compare them with
 * {@linkcode resourceKey}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.event(kopf.EVERYTHING, function audit({ resource, type, name, logger }) {
 *   const served: kopf.Resource = resource; // e.g. { group: "apps", plural: "deployments", … }
 *   logger.info(`${type} ${served.plural}.${served.version}.${served.group}/${name}`);
 * });
 * ```
 */
export interface Resource {
  /** API group, `""` for the core group (pods, configmaps, …). */
  readonly group: string;
  /** API version, e.g. `"v1"`, `"v1beta1"`. */
  readonly version: string;
  /** Plural name used in URLs, e.g. `"kopfexamples"`. */
  readonly plural: string;
  /** Kind as in YAML, e.g. `"KopfExample"`. */
  readonly kind: string;
  /** Singular name, e.g. `"kopfexample"` (lower-cased kind when the server reports none). */
  readonly singular: string;
  /** Short names, e.g. `["kex"]`. */
  readonly shortcuts: readonly string[];
  /** Categories, e.g. `["all"]`. */
  readonly categories: readonly string[];
  /** Whether objects live in namespaces. */
  readonly namespaced: boolean;
  /** Whether this version is the group's preferred version. */
  readonly preferred: boolean;
  /** Verbs the server supports, e.g. `["get", "list", "watch", "patch"]`. */
  readonly verbs: readonly string[];
  /** Subresource names, e.g. `["status", "scale"]`. */
  readonly subresources: readonly string[];
}

/**
 * Standard object metadata (the fields the framework reads; everything else passes through).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function isBeingDeleted(meta: kopf.ObjectMeta): boolean {
 *   return meta.deletionTimestamp !== undefined;
 * }
 * kopf.daemon("kopfexamples", async function watcher({ meta, stopped }) {
 *   if (!isBeingDeleted(meta)) await stopped.wait();
 * });
 * ```
 */
export interface ObjectMeta {
  /** Object name, unique per namespace and resource. */
  name?: string;
  /** Prefix for a server-generated name (on create). */
  generateName?: string;
  /** Namespace of namespaced objects. */
  namespace?: string;
  /** Server-assigned unique id. */
  uid?: string;
  /** Opaque version of this state of the object (never compare it as a number). */
  resourceVersion?: string;
  /** Incremented on changes of the desired state (spec). */
  generation?: number;
  /** When the object was created (RFC 3339). */
  creationTimestamp?: string;
  /** Set when deletion was requested; finalizers then hold the object. */
  deletionTimestamp?: string;
  /** Grace period of a requested deletion. */
  deletionGracePeriodSeconds?: number;
  /** Labels. */
  labels?: Record<string, string>;
  /** Annotations. */
  annotations?: Record<string, string>;
  /** Finalizers that block the deletion until removed. */
  finalizers?: string[];
  /** Owners (for garbage collection and adoption). */
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
  /** Server-side apply bookkeeping. */
  managedFields?: unknown[];
  /** Anything else the server sends. */
  [key: string]: unknown;
}

/**
 * A Kubernetes object as plain JSON.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const configMap: kopf.KubeObject = {
 *   apiVersion: "v1",
 *   kind: "ConfigMap",
 *   metadata: { name: "settings" },
 *   data: { level: "debug" },
 * };
 * kopf.adjustNamespace(configMap, "default");
 * assert.equal(configMap.metadata?.namespace, "default");
 * ```
 */
export interface KubeObject {
  /** `group/version`, or `v1` for core objects. */
  apiVersion?: string;
  /** Kind, e.g. `KopfExample`. */
  kind?: string;
  /** Standard metadata. */
  metadata?: ObjectMeta;
  /** Desired state. */
  spec?: unknown;
  /** Observed state. */
  status?: unknown;
  /** Other top-level fields (`data`, `rules`, …). */
  [key: string]: unknown;
}

/** A list response: one page of objects plus the list's resourceVersion and continue token. */
export interface KubeList<T = KubeObject> {
  /** `group/version` of the list. */
  apiVersion?: string;
  /** E.g. `KopfExampleList`. */
  kind?: string;
  /** The list's resourceVersion (to watch from) and the continue token of the next page. */
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  /** The objects of this page. */
  items: T[];
}

/** Where an object lives: its namespace (for namespaced resources), name and subresource. */
export interface ObjectLocation {
  /** Namespace; omit for cluster-scoped resources or for cluster-wide lists. */
  namespace?: string;
  /** Object name; omit for collections. */
  name?: string;
  /** Subresource such as `"status"`; needs a name. */
  subresource?: string;
}

/**
 * A reference to an object for log records (Kopf's `k8s_ref`): the `object` property every log line about an object
 * carries, which the CLI's sinks print as Kopf's `[namespace/name]` prefix.
 */
export interface ObjectRef {
  /** `group/version`. */
  apiVersion?: string;
  /** The kind. */
  kind?: string;
  /** The namespace (namespaced objects). */
  namespace?: string;
  /** The name. */
  name?: string;
  /** The uid. */
  uid?: string;
}

/**
 * The reference of an object, from its body (and its resource, for bodies without
 * `apiVersion`/`kind`, such as those of watch tombstones).
 *
 * @example
 * ```ts
 * import { objectReference } from "./resource.ts";
 * objectReference({ apiVersion: "v1", kind: "Pod", metadata: { namespace: "ns", name: "p" } });
 * // { apiVersion: "v1", kind: "Pod", namespace: "ns", name: "p" }
 * ```
 */
export function objectReference(
  body: KubeObject,
  resource?: Pick<Resource, "group" | "version" | "kind">,
): ObjectRef {
  const meta = body.metadata ?? {};
  const ref: ObjectRef = {};
  const version = body.apiVersion ?? (resource ? apiVersion(resource) : undefined);
  const kind = body.kind ?? resource?.kind;
  if (version) ref.apiVersion = version;
  if (kind) ref.kind = kind;
  if (meta.namespace) ref.namespace = meta.namespace;
  if (meta.name) ref.name = meta.name;
  if (meta.uid) ref.uid = meta.uid;
  return ref;
}

/**
 * The one key of an object, everywhere: the informer's cache, the queue, the per-object memories,
 * the engines and their indexes. `<resource>/<namespace>/<name>`, or `<resource>/<name>` for
 * cluster-scoped objects, where `<resource>` is {@linkcode resourceKey} (which has no slash, nor
 * do namespaces and names). Made by {@linkcode objectKey}/{@linkcode objectKeyOf}, read by
 * {@linkcode parseObjectKey}.
 */
export type ObjectKey = string;

// The `<resource>/` prefix per resource, made once: keys are built on every watch event.
const prefixes = new WeakMap<object, string>();

function keyPrefix(resource: Pick<Resource, "group" | "version" | "plural">): string {
  let prefix = prefixes.get(resource);
  if (prefix === undefined) prefixes.set(resource, prefix = `${resourceKey(resource)}/`);
  return prefix;
}

/**
 * The key of the object `name` (in `namespace`, if namespaced) of a resource.
 *
 * @example
 * ```ts
 * import { objectKey } from "./resource.ts";
 * objectKey({ group: "kopf.dev", version: "v1", plural: "kopfexamples" }, "ns", "ex");
 * // "kopfexamples.v1.kopf.dev/ns/ex"
 * ```
 */
export function objectKey(
  resource: Pick<Resource, "group" | "version" | "plural">,
  namespace: string | null | undefined,
  name: string,
): ObjectKey {
  const prefix = keyPrefix(resource);
  return namespace ? `${prefix}${namespace}/${name}` : prefix + name;
}

/** The key of an object of a resource, from its body. */
export function objectKeyOf(
  resource: Pick<Resource, "group" | "version" | "plural">,
  body: KubeObject,
): ObjectKey {
  return objectKey(resource, body.metadata?.namespace, body.metadata?.name ?? "");
}

/**
 * The parts of an object key.
 *
 * @example
 * ```ts
 * import { parseObjectKey } from "./resource.ts";
 * parseObjectKey("kopfexamples.v1.kopf.dev/ns/ex");
 * // { resource: "kopfexamples.v1.kopf.dev", namespace: "ns", name: "ex" }
 * ```
 */
export function parseObjectKey(
  key: ObjectKey,
): { resource: string; namespace?: string; name: string } {
  const first = key.indexOf("/");
  const second = key.indexOf("/", first + 1);
  const resource = key.slice(0, first);
  return second < 0
    ? { resource, name: key.slice(first + 1) }
    : { resource, namespace: key.slice(first + 1, second), name: key.slice(second + 1) };
}

/**
 * The `apiVersion` of a resource's objects: `"v1"` for core, else `"group/version"`.
 *
 * @example
 * ```ts
 * import { apiVersion } from "./resource.ts";
 * apiVersion({ group: "kopf.dev", version: "v1" }); // "kopf.dev/v1"
 * ```
 */
export function apiVersion(resource: Pick<Resource, "group" | "version">): string {
  return resource.group ? `${resource.group}/${resource.version}` : resource.version;
}

/**
 * A stable string identifying a resource: `plural.version.group` (`pods.v1` for core),
 * the same spelling kubectl accepts and Kopf prints.
 *
 * @example
 * ```ts
 * import { resourceKey } from "./resource.ts";
 * resourceKey({ group: "kopf.dev", version: "v1", plural: "kopfexamples" }); // "kopfexamples.v1.kopf.dev"
 * ```
 */
export function resourceKey(resource: Pick<Resource, "group" | "version" | "plural">): string {
  return [resource.plural, resource.version, resource.group].filter((part) => part).join(".");
}

/**
 * The API path of a collection, an object, or an object's subresource.
 *
 * Follows Kopf's rules: a subresource needs a name; a namespace is rejected for cluster-scoped
 * resources (silently dropping it would hide a bug); a named namespaced object needs a
 * namespace. Without a namespace, a namespaced collection is listed across all namespaces.
 *
 * @example
 * ```ts
 * import { resourcePath } from "./resource.ts";
 * const pods = { group: "", version: "v1", plural: "pods", namespaced: true };
 * resourcePath(pods, { namespace: "default", name: "web", subresource: "status" });
 * // "/api/v1/namespaces/default/pods/web/status"
 * ```
 */
export function resourcePath(
  resource: Pick<Resource, "group" | "version" | "plural" | "namespaced">,
  location: ObjectLocation = {},
): string {
  const { namespace, name, subresource } = location;
  if (subresource !== undefined && name === undefined) {
    throw new TypeError(
      `${resourceKey(resource)}: subresource "${subresource}" needs an object name`,
    );
  }
  if (!resource.namespaced && namespace !== undefined) {
    throw new TypeError(
      `${resourceKey(resource)} is cluster-scoped: namespace "${namespace}" cannot be used`,
    );
  }
  if (resource.namespaced && namespace === undefined && name !== undefined) {
    throw new TypeError(`${resourceKey(resource)} is namespaced: "${name}" needs a namespace`);
  }
  let path = resource.group === ""
    ? `/api/${resource.version}`
    : `/apis/${resource.group}/${resource.version}`;
  if (namespace !== undefined) path += `/namespaces/${segment(namespace, "namespace")}`;
  path += `/${resource.plural}`;
  if (name !== undefined) path += `/${segment(name, "name")}`;
  if (subresource !== undefined) path += `/${segment(subresource, "subresource")}`;
  return path;
}

function segment(value: string, what: string): string {
  if (value === "" || value === "." || value === "..") {
    throw new TypeError(`invalid ${what} ${JSON.stringify(value)} in an API path`);
  }
  return encodeURIComponent(value);
}

/** What {@linkcode describePath} found in an API path. */
export interface PathParts {
  /** API group (`""` for core). */
  group: string;
  /** API version. */
  version: string;
  /** Plural resource name. */
  plural: string;
  /** Namespace, for namespaced paths. */
  namespace?: string;
  /** Object name, for object paths. */
  name?: string;
  /** Subresource (`status`, `scale`, …). */
  subresource?: string;
}

/**
 * Splits a resource API path (`/api/v1/namespaces/ns/pods/name/status`) into its parts;
 * `undefined` for non-resource paths such as `/apis` or `/version`.
 */
export function parsePath(path: string): PathParts | undefined {
  const clean = path.split("?")[0].replace(/\/+$/, "");
  const parts = clean.split("/").slice(1).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  let rest: string[];
  let group: string;
  let version: string;
  if (parts[0] === "api" && parts.length >= 3) {
    group = "";
    version = parts[1];
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1];
    version = parts[2];
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  // `namespaces/<ns>/<plural>...` is a namespaced path; `namespaces/<ns>` alone is the
  // Namespace object itself.
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, ...sub] = rest;
  if (!plural) return undefined;
  return {
    group,
    version,
    plural,
    namespace,
    name,
    subresource: sub.length ? sub.join("/") : undefined,
  };
}

/**
 * A short human description of what a request path addresses, for error messages and logs:
 * `kopfexamples.kopf.dev ns/name`, `pods/status ns/web`, `namespaces default`,
 * `kopfexamples.kopf.dev in ns`, `pods` (all namespaces, or cluster-scoped); non-resource
 * paths as they are.
 */
export function describePath(path: string): string {
  const parts = parsePath(path);
  if (!parts) return path.split("?")[0];
  const type = (parts.group ? `${parts.plural}.${parts.group}` : parts.plural) +
    (parts.subresource ? `/${parts.subresource}` : "");
  if (parts.name !== undefined) {
    return `${type} ${parts.namespace !== undefined ? `${parts.namespace}/` : ""}${parts.name}`;
  }
  return parts.namespace !== undefined ? `${type} in ${parts.namespace}` : type;
}
