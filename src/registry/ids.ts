/**
 * Handler ids: they key each handler's stored progress and its results in `status.<id>`, so
 * they must stay the same across operator restarts. See docs/handler-ids.md for the rules.
 *
 * @module
 */

/** Where a function was registered: the file's base name and the line. */
export interface CallSite {
  /** The file's base name, e.g. `operator.ts`. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
}

// Frames inside the framework itself (src/ and the public entry points) are not call sites.
const FRAMEWORK_ROOT = new URL("../../", import.meta.url).href;
const FRAMEWORK_DIRS = [new URL("../", import.meta.url).href];
const FRAMEWORK_FILES = ["mod.ts", "cli.ts", "testing.ts"].map((f) => FRAMEWORK_ROOT + f);

const FRAME = /\(?((?:file|https?|data|jsr|npm|blob):[^\s()]*?):(\d+):(\d+)\)?\s*$/;

function isFramework(url: string): boolean {
  return FRAMEWORK_DIRS.some((dir) => url.startsWith(dir)) || FRAMEWORK_FILES.includes(url);
}

/**
 * The first stack frame outside the framework: where the user called `kopf.on.*`.
 * `null` if the stack cannot be read.
 */
export function captureCallSite(): CallSite | null {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 50;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  for (const line of stack.split("\n").slice(1)) {
    const match = FRAME.exec(line.trim());
    if (!match) continue;
    const [, url, lineNo] = match;
    if (isFramework(url)) continue;
    const path = url.split(/[?#]/)[0];
    const file = decodeURIComponent(path.slice(path.lastIndexOf("/") + 1)) || path;
    return { file, line: Number(lineNo) };
  }
  return null;
}

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
