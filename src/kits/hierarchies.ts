/**
 * Building object hierarchies the way Kopf does: owner references, labels, names and namespaces
 * of the children an operator creates for the object it handles.
 *
 * All functions work on plain JSON objects (a single object or an array, nested arrays allowed)
 * and modify them in place. The owner (and the name, namespace and labels taken from it)
 * defaults to the object currently being handled, kept in {@linkcode currentBody}.
 *
 * @example
 * ```ts
 * import { adopt } from "./hierarchies.ts";
 *
 * const owner = {
 *   apiVersion: "kopf.dev/v1",
 *   kind: "KopfExample",
 *   metadata: { name: "ex1", namespace: "default", uid: "1234", labels: { app: "demo" } },
 * };
 * const pod = { apiVersion: "v1", kind: "Pod", spec: { containers: [] } };
 * adopt(pod, owner);
 * // pod.metadata: { ownerReferences: [...], generateName: "ex1-", namespace: "default",
 * //                 labels: { app: "demo" } }
 * ```
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";

/**
 * What these utilities read from an owner: any Kubernetes object as plain JSON fits.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const owner: kopf.OwnerBody = {
 *   apiVersion: "kopf.dev/v1",
 *   kind: "KopfExample",
 *   metadata: { name: "ex1", namespace: "default", uid: "1234" },
 * };
 * const child = {};
 * kopf.adopt(child, owner);
 * assert.deepEqual(kopf.buildOwnerReference(owner).uid, "1234");
 * ```
 */
export interface OwnerBody {
  /** Goes into the owner reference. */
  apiVersion?: string;
  /** Goes into the owner reference. */
  kind?: string;
  /** Name, namespace, uid and labels, which the children inherit. */
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string | null>;
  };
}

/**
 * One Kubernetes object as plain JSON, or an array of them (nested arrays are flattened).
 * The objects are modified in place.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const children: kopf.HierarchyObjects = [{ kind: "Pod" }, [{ kind: "Service" }]]; // nested too
 * kopf.adjustNamespace(children, "team-a");
 * assert.deepEqual(children, [
 *   { kind: "Pod", metadata: { namespace: "team-a" } },
 *   [{ kind: "Service", metadata: { namespace: "team-a" } }],
 * ]);
 * ```
 */
export type HierarchyObjects = object | readonly object[];

/**
 * An entry of `metadata.ownerReferences`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const owner = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", uid: "u1" } };
 * const reference: kopf.OwnerReference = kopf.buildOwnerReference(owner, { controller: false });
 * assert.equal(reference.controller, false);
 * assert.equal(reference.blockOwnerDeletion, true);
 * ```
 */
export interface OwnerReference {
  /** The owner's `apiVersion`. */
  apiVersion?: string;
  /** The owner's `kind`. */
  kind?: string;
  /** The owner's name. */
  name?: string;
  /** The owner's uid: what the garbage collector and these utilities match on. */
  uid?: string;
  /** Whether the owner is the managing controller (at most one per object). */
  controller?: boolean;
  /** Whether the owner's foreground deletion waits for this object. */
  blockOwnerDeletion?: boolean;
}

/**
 * A reference to an object, as used by Events' `involvedObject`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const node = { apiVersion: "v1", kind: "Node", metadata: { name: "n1", uid: "u" } };
 * const reference: kopf.ObjectReference = kopf.buildObjectReference(node);
 * assert.equal(reference.namespace, undefined); // cluster-scoped
 * ```
 */
export interface ObjectReference {
  /** The object's `apiVersion`. */
  apiVersion?: string;
  /** The object's `kind`. */
  kind?: string;
  /** The object's name. */
  name?: string;
  /** The object's uid. */
  uid?: string;
  /** The object's namespace; absent for cluster-scoped objects. */
  namespace?: string;
}

/**
 * Options of {@linkcode buildOwnerReference} and {@linkcode appendOwnerReference}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // An owner that is not the child's controller and does not hold its own deletion.
 * const options: kopf.OwnerReferenceOptions = { controller: false, blockOwnerDeletion: null };
 * const owner = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", uid: "u1" } };
 * const child = {};
 * kopf.appendOwnerReference(child, owner, options);
 * assert.deepEqual(child, {
 *   metadata: {
 *     ownerReferences: [
 *       { controller: false, apiVersion: "v1", kind: "ConfigMap", name: "cm", uid: "u1" },
 *     ],
 *   },
 * });
 * ```
 */
export interface OwnerReferenceOptions {
  /** Mark the owner as the managing controller. Default: true; `null` omits the field. */
  controller?: boolean | null;
  /** Block the owner's foreground deletion until this child is gone. Default: true; `null` omits. */
  blockOwnerDeletion?: boolean | null;
}

/**
 * The object being handled right now, for utilities called without an explicit owner.
 *
 * The handling cycle runs each handler inside `currentBody.run(body, …)`; code outside a handler
 * sees `undefined` and must pass the owner explicitly. It is Kopf's `cause_var` contextvar in
 * `AsyncLocalStorage` form, so it follows the handler through every `await`.
 *
 * @example
 * ```ts
 * import { currentBody, label } from "./hierarchies.ts";
 *
 * const body = { metadata: { name: "ex1", labels: { app: "demo" } } };
 * const child = {};
 * currentBody.run(body, () => label(child)); // child.metadata.labels: { app: "demo" }
 * ```
 */
export const currentBody: AsyncLocalStorage<OwnerBody> = new AsyncLocalStorage<OwnerBody>();

/**
 * Builds an owner reference to `body` for its children.
 *
 * Fields the body lacks are left out, as are the flags given as `null`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const reference = kopf.buildOwnerReference({
 *   apiVersion: "v1",
 *   kind: "Pod",
 *   metadata: { name: "p", uid: "u" },
 * });
 * assert.deepEqual(reference, {
 *   controller: true,
 *   blockOwnerDeletion: true,
 *   apiVersion: "v1",
 *   kind: "Pod",
 *   name: "p",
 *   uid: "u",
 * });
 * ```
 */
export function buildOwnerReference(
  body: OwnerBody,
  { controller = true, blockOwnerDeletion = true }: OwnerReferenceOptions = {},
): OwnerReference {
  return dropWhere({
    controller,
    blockOwnerDeletion,
    apiVersion: body.apiVersion,
    kind: body.kind,
    name: body.metadata?.name,
    uid: body.metadata?.uid,
  }, (value) => value === undefined || value === null) as OwnerReference;
}

/**
 * Builds an object reference to `body` (e.g. an Event's `involvedObject`).
 *
 * Empty fields are left out: cluster-scoped objects have no namespace, some have no uid.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const node = { apiVersion: "v1", kind: "Node", metadata: { name: "n1", uid: "u" } };
 * assert.deepEqual(kopf.buildObjectReference(node), {
 *   apiVersion: "v1",
 *   kind: "Node",
 *   name: "n1",
 *   uid: "u",
 * });
 * ```
 */
export function buildObjectReference(body: OwnerBody): ObjectReference {
  return dropWhere({
    apiVersion: body.apiVersion,
    kind: body.kind,
    name: body.metadata?.name,
    uid: body.metadata?.uid,
    namespace: body.metadata?.namespace,
  }, (value) => !value) as ObjectReference;
}

/**
 * Adds an owner reference to `owner` (by default, the object being handled) to each object,
 * unless one with the owner's uid is already there.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const owner = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", uid: "u1" } };
 * const child = { metadata: { name: "child" } };
 * kopf.appendOwnerReference(child, owner, { controller: false });
 * assert.deepEqual(child.metadata, {
 *   name: "child",
 *   ownerReferences: [
 *     {
 *       controller: false,
 *       blockOwnerDeletion: true,
 *       apiVersion: "v1",
 *       kind: "ConfigMap",
 *       name: "cm",
 *       uid: "u1",
 *     },
 *   ],
 * });
 * ```
 */
export function appendOwnerReference(
  objs: HierarchyObjects,
  owner?: OwnerBody,
  options: OwnerReferenceOptions = {},
): void {
  const ref = buildOwnerReference(guessOwner(owner), options);
  for (const obj of walk(objs)) {
    const refs = (metadataOf(obj).ownerReferences ??= []);
    if (!refs.some((existing) => existing?.uid === ref.uid)) refs.push(ref);
  }
}

/**
 * Removes the owner references to `owner` (by default, the object being handled), matched by
 * uid, from each object.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const owner = { metadata: { uid: "u1" } };
 * const child = { metadata: { ownerReferences: [{ uid: "u1" }, { uid: "u2" }] } };
 * kopf.removeOwnerReference(child, owner);
 * assert.deepEqual(child.metadata.ownerReferences, [{ uid: "u2" }]);
 * ```
 */
export function removeOwnerReference(objs: HierarchyObjects, owner?: OwnerBody): void {
  const uid = guessOwner(owner).metadata?.uid;
  for (const obj of walk(objs)) {
    const meta = obj.metadata;
    if (meta?.ownerReferences?.some((ref) => ref?.uid === uid)) {
      meta.ownerReferences = meta.ownerReferences.filter((ref) => ref?.uid !== uid);
    }
  }
}

/**
 * Options of {@linkcode label}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const options: kopf.LabelOptions = { forced: true, nested: ["spec.template"] };
 * const deployment = { metadata: { labels: { app: "mine" } }, spec: { template: {} } };
 * kopf.label(deployment, { app: "demo" }, options);
 * assert.deepEqual(deployment.metadata.labels, { app: "demo" });
 * ```
 */
export interface LabelOptions {
  /** Overwrite labels the objects already have. */
  forced?: boolean;
  /** Field paths inside each object (e.g. `spec.template`) that get the labels too. */
  nested?: NestedFields;
}

/**
 * Field paths, dotted (`"spec.template"`) or as arrays of keys.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * // Label a CronJob's jobs and their pods too.
 * const nested: kopf.NestedFields = [
 *   "spec.jobTemplate",
 *   ["spec", "jobTemplate", "spec", "template"],
 * ];
 * const cronJob = { spec: { jobTemplate: { spec: { template: {} } } } };
 * kopf.label(cronJob, { app: "demo" }, { nested });
 * const template = cronJob.spec.jobTemplate.spec.template;
 * assert.deepEqual(template, { metadata: { labels: { app: "demo" } } });
 * ```
 */
export type NestedFields = string | readonly (string | readonly string[])[];

/**
 * Sets labels on each object, keeping the values they already have unless `forced`.
 *
 * Without `labels`, the labels of the object being handled are used. With `nested`, the
 * objects at those field paths (e.g. a pod template) are labelled too, if they exist.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const deployment = { metadata: { labels: { app: "mine" } }, spec: { template: {} } };
 * kopf.label(deployment, { app: "demo", tier: "web" }, { nested: "spec.template" });
 * assert.deepEqual(deployment, {
 *   metadata: { labels: { app: "mine", tier: "web" } }, // kept its own `app`
 *   spec: { template: { metadata: { labels: { app: "demo", tier: "web" } } } },
 * });
 * ```
 */
export function label(
  objs: HierarchyObjects,
  labels?: Record<string, string | null>,
  { forced = false, nested }: LabelOptions = {},
): void {
  const values = labels ?? guessOwner(undefined).metadata?.labels ?? {};
  for (const obj of walk(objs, nested)) {
    const target = (metadataOf(obj).labels ??= {});
    for (const [key, value] of Object.entries(values)) {
      if (forced || !Object.hasOwn(target, key)) target[key] = value;
    }
  }
}

/**
 * Options of {@linkcode harmonizeNaming}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const options: kopf.NamingOptions = { strict: true }; // exactly the owner's name
 * const service = {};
 * kopf.harmonizeNaming(service, "ex1", options);
 * assert.deepEqual(service, { metadata: { name: "ex1" } });
 * ```
 */
export interface NamingOptions {
  /** Rename objects that already have a `name` or `generateName`. */
  forced?: boolean;
  /** Use the name as is, instead of as a `generateName` prefix (`<name>-`). */
  strict?: boolean;
}

/**
 * Names the objects after `name` (by default, the name of the object being handled).
 *
 * Not strict: `generateName: "<name>-"`, so the API server adds a random suffix (take the
 * real name from its response). Strict: exactly `name`. Objects that already have a `name`
 * or `generateName` keep it unless `forced`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const child = {};
 * kopf.harmonizeNaming(child, "parent");
 * assert.deepEqual(child, { metadata: { generateName: "parent-" } });
 * kopf.harmonizeNaming(child, "parent", { forced: true, strict: true });
 * assert.deepEqual(child, { metadata: { name: "parent" } });
 * ```
 */
export function harmonizeNaming(
  objs: HierarchyObjects,
  name?: string | null,
  { forced = false, strict = false }: NamingOptions = {},
): void {
  const realName = name === undefined ? guessOwner(undefined).metadata?.name : name;
  if (realName === undefined || realName === null) {
    throw new Error("The name must be set explicitly: couldn't find it automatically.");
  }
  for (const obj of walk(objs)) {
    const meta = obj.metadata;
    const unnamed = !meta || (!Object.hasOwn(meta, "name") && !Object.hasOwn(meta, "generateName"));
    if (!forced && !unnamed) continue;
    const target = metadataOf(obj);
    if (strict) {
      target.name = realName;
      delete target.generateName;
    } else {
      target.generateName = `${realName}-`;
      delete target.name;
    }
  }
}

/**
 * Options of {@linkcode adjustNamespace}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const options: kopf.NamespaceOptions = { forced: true };
 * const child = { metadata: { namespace: "elsewhere" } };
 * kopf.adjustNamespace(child, "team-a", options);
 * assert.equal(child.metadata.namespace, "team-a");
 * ```
 */
export interface NamespaceOptions {
  /** Overwrite the namespace the objects already have. */
  forced?: boolean;
}

/**
 * Puts the objects into `namespace` (by default, the namespace of the object being handled),
 * unless they already have one and it is not `forced`. A `null` namespace (a cluster-scoped
 * owner) leaves objects without one; with `forced`, it removes theirs.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const child = { metadata: { name: "c" } };
 * kopf.adjustNamespace(child, "team-a");
 * assert.deepEqual(child.metadata, { name: "c", namespace: "team-a" });
 * ```
 */
export function adjustNamespace(
  objs: HierarchyObjects,
  namespace?: string | null,
  { forced = false }: NamespaceOptions = {},
): void {
  const realNamespace = namespace === undefined
    ? guessOwner(undefined).metadata?.namespace
    : namespace;
  for (const obj of walk(objs)) {
    const current = obj.metadata?.namespace;
    if (!forced && current !== undefined && current !== null) continue;
    const target = metadataOf(obj);
    if (realNamespace === undefined || realNamespace === null) delete target.namespace;
    else target.namespace = realNamespace;
  }
}

/**
 * Options of {@linkcode adopt}.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const options: kopf.AdoptOptions = { strict: true, nested: "spec.template" };
 * const owner = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", uid: "u1" } };
 * const deployment = { spec: { template: {} } };
 * kopf.adopt(deployment, owner, options);
 * assert.equal((deployment as { metadata?: { name?: string } }).metadata?.name, "cm");
 * ```
 */
export interface AdoptOptions {
  /** Overwrite the name, namespace and labels the children already have. */
  forced?: boolean;
  /** Use the owner's name as the exact name instead of a `generateName` prefix. */
  strict?: boolean;
  /** Field paths inside each child (e.g. `spec.template`) that get the labels too. */
  nested?: NestedFields;
}

/**
 * Makes the objects children of `owner` (by default, the object being handled): owned by it,
 * named after it, in its namespace, and with its labels.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import assert from "node:assert/strict";
 *
 * const owner = {
 *   apiVersion: "kopf.dev/v1",
 *   kind: "KopfExample",
 *   metadata: { name: "ex1", namespace: "default", uid: "1234", labels: { app: "demo" } },
 * };
 * const deployment = { spec: { template: { spec: { containers: [] } } } };
 * kopf.adopt(deployment, owner, { nested: "spec.template" });
 * assert.deepEqual(deployment, {
 *   metadata: {
 *     ownerReferences: [kopf.buildOwnerReference(owner)],
 *     generateName: "ex1-",
 *     namespace: "default",
 *     labels: { app: "demo" },
 *   },
 *   spec: { template: { metadata: { labels: { app: "demo" } }, spec: { containers: [] } } },
 * });
 *
 * // In a handler, the owner is the object being handled:
 * kopf.on.create("kopfexamples", function createPod() {
 *   const pod = { apiVersion: "v1", kind: "Pod", spec: { containers: [] } };
 *   kopf.adopt(pod);
 *   // … create the pod with a Kubernetes client …
 * });
 * ```
 */
export function adopt(
  objs: HierarchyObjects,
  owner?: OwnerBody,
  { forced = false, strict = false, nested }: AdoptOptions = {},
): void {
  const realOwner = guessOwner(owner);
  appendOwnerReference(objs, realOwner);
  harmonizeNaming(objs, realOwner.metadata?.name ?? null, { forced, strict });
  adjustNamespace(objs, realOwner.metadata?.namespace ?? null, { forced });
  label(objs, realOwner.metadata?.labels ?? {}, { forced, nested });
}

interface MutableMeta {
  name?: string;
  generateName?: string;
  namespace?: string | null;
  labels?: Record<string, string | null>;
  ownerReferences?: OwnerReference[];
}

interface MutableObject {
  metadata?: MutableMeta;
}

function guessOwner(owner: OwnerBody | undefined): OwnerBody {
  if (owner !== undefined) return owner;
  const body = currentBody.getStore();
  if (body !== undefined) return body;
  throw new Error("The owner must be set explicitly, since running outside of a handler.");
}

function metadataOf(obj: MutableObject): MutableMeta {
  return (obj.metadata ??= {});
}

function* walk(objs: HierarchyObjects, nested?: NestedFields): Generator<MutableObject> {
  if (objs === null || objs === undefined) return;
  if (Array.isArray(objs)) {
    for (const obj of objs) yield* walk(obj, nested);
    return;
  }
  if (typeof objs !== "object") {
    throw new TypeError(`Kubernetes objects must be plain objects, got ${typeof objs}.`);
  }
  yield objs as MutableObject;
  const paths = nested === undefined ? [] : typeof nested === "string" ? [nested] : nested;
  for (const path of paths) {
    const found = resolve(objs, typeof path === "string" ? path.split(".") : path);
    // Absent or non-object sub-fields are skipped: there is nothing to label there.
    if (found !== null && typeof found === "object" && !Array.isArray(found)) {
      yield found as MutableObject;
    }
  }
}

function resolve(obj: unknown, path: readonly string[]): unknown {
  let current = obj;
  for (const key of path) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function dropWhere(
  record: Record<string, unknown>,
  drop: (value: unknown) => boolean,
): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => !drop(value)));
}
