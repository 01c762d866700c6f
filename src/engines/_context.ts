/**
 * The context objects the background engines give to handlers: index handlers, daemons and
 * timers get Kopf's resource kwargs by name. For daemons and timers the body is live: every
 * property reads the latest state of the object, as Kopf's live body views do.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Patch } from "../handling/patch.ts";
import type { KubeObject, ObjectMeta, Resource } from "../kube/resource.ts";
import type { Logger, Memo, ResourceContext } from "../registry/context.ts";

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

/** A reference to the object for log records (what the CLI's sinks print as `[ns/name]`). */
export function objectRef(resource: Resource, body: KubeObject): Record<string, string> {
  const meta = body.metadata ?? {};
  const ref: Record<string, string> = {};
  const apiVersion = resource.group ? `${resource.group}/${resource.version}` : resource.version;
  ref.apiVersion = body.apiVersion ?? apiVersion;
  ref.kind = body.kind ?? resource.kind;
  if (meta.namespace) ref.namespace = meta.namespace;
  if (meta.name) ref.name = meta.name;
  if (meta.uid) ref.uid = meta.uid;
  return ref;
}

/** The per-object logger of handlers (category `kopf.objects`, with the object reference). */
export function objectLogger(resource: Resource, body: KubeObject): Logger {
  return getLogger(["kopf", "objects"]).with({ object: objectRef(resource, body) });
}

/** What {@linkcode resourceContext} needs. */
export interface ResourceContextInput {
  /** The resource. */
  resource: Resource;
  /** The object's latest body (called on every property read). */
  body: () => KubeObject;
  /** The logger. */
  logger: Logger;
  /** The object's memo. */
  memo: Memo;
  /** The handler's `param`. */
  param: unknown;
  /** Aborts when the handler should stop. */
  signal: AbortSignal;
  /** The operator's indexes. */
  indices: Readonly<Record<string, unknown>>;
  /** The patch the handler may fill. */
  patch: Patch;
}

/**
 * A resource context whose body properties read the latest body each time, plus `extra`
 * properties (retry info, `stopped`, …).
 */
export function resourceContext<E extends object>(
  input: ResourceContextInput,
  extra: E,
): ResourceContext & E {
  const { body } = input;
  const meta = (): ObjectMeta => body().metadata ?? {};
  const context = {
    resource: input.resource,
    logger: input.logger,
    memo: input.memo,
    param: input.param,
    signal: input.signal,
    indices: input.indices,
    patch: input.patch,
    ...extra,
  };
  const live: Record<string, () => unknown> = {
    body: () => body(),
    spec: () => body().spec ?? EMPTY,
    status: () => body().status ?? EMPTY,
    meta,
    uid: () => meta().uid,
    name: () => meta().name,
    namespace: () => meta().namespace,
    labels: () => meta().labels ?? EMPTY,
    annotations: () => meta().annotations ?? EMPTY,
  };
  for (const [key, get] of Object.entries(live)) {
    Object.defineProperty(context, key, { get, enumerable: true, configurable: true });
  }
  return context as unknown as ResourceContext & E;
}
