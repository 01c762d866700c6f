/**
 * Handler ids: they key each handler's stored progress and its results in `status.<id>`, so
 * they must stay the same across operator restarts. See docs/handler-ids.md for the rules.
 *
 * @module
 */

import type { CallSite } from "../code/call_site.ts";

/**
 * The id of a function: its name (`create_fn`, `createFn`; `bound f` → `f`), or for anonymous
 * functions `lambda:<file>:<line>` of the registration call site (Kopf's lambda rule).
 */
export function callableId(fn: (...args: never[]) => unknown, site: CallSite | null): string {
  let name = typeof fn.name === "string" ? fn.name : "";
  while (name.startsWith("bound ")) name = name.slice("bound ".length);
  if (name && name !== "anonymous") return name;
  if (site) return `lambda:${site.file}:${site.line}`;
  throw new TypeError(
    "Cannot derive an id for an anonymous handler (no call site in the stack); pass { id }.",
  );
}

/** Inputs of {@linkcode generateId}. */
export interface IdParts {
  /** The handler function. */
  readonly fn: (...args: never[]) => unknown;
  /** An explicit id (wins over the function's name). */
  readonly id?: string;
  /** The parent handler's id, for sub-handlers (`parent/child`). */
  readonly prefix?: string;
  /** The field path for field handlers (`fn/spec.field`). */
  readonly suffix?: string;
  /** The registration call site, for anonymous functions. */
  readonly site: CallSite | null;
}

/**
 * A handler id, Kopf's way: explicit id or the function's id, then `/<suffix>` for field
 * handlers, then `<prefix>/` for sub-handlers.
 *
 * @example
 * ```ts
 * generateId({ fn: function update_fn() {}, suffix: "spec.size", site: null });
 * // "update_fn/spec.size"
 * ```
 */
export function generateId(parts: IdParts): string {
  let id = parts.id ?? callableId(parts.fn, parts.site);
  if (parts.suffix) id = `${id}/${parts.suffix}`;
  if (parts.prefix) id = `${parts.prefix}/${id}`;
  return id;
}
