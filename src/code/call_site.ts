/**
 * Where the user's code is: the first stack frame outside the framework, for handler ids of
 * anonymous functions and for messages about a user's mistake ("file:line: …").
 *
 * @module
 */

/** A place in the user's code: the file's base name and the line. */
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
 * The first stack frame outside the framework: where the user called `kopf.on.*`, assigned a
 * setting, …; `null` if the stack cannot be read.
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
