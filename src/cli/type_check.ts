/**
 * The type check of `kopf run`: `deno check` of the handler files, resolved as the operator
 * process will resolve them, before anything starts. A misspelt field of the handler context
 * (`({ nmae })`) is then an error with its place instead of an `undefined` at run time.
 * `--no-check` skips it, as it does for `deno test`.
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import { resolutionFlags } from "./module_graph.ts";

/** One problem `deno check` reported: where and what. */
export interface CheckProblem {
  /** `file:line:column`, the file relative to the working directory where it is under it. */
  where: string;
  /** The message, one line: `TS2339 Property 'nmae' does not exist on type …`. */
  message: string;
}

/** How many problems {@linkcode typeCheck} shows; `deno check` shows them all. */
export const SHOWN_PROBLEMS = 5;

// deno check's diagnostics (NO_COLOR): "TS2339 [ERROR]: message", source lines, "    at URL:L:C";
// a syntax error: "error: SyntaxError: message", source lines, "    at URL:L:C".
const HEADER = /^(?:error: )?(TS\d+) \[ERROR\]: (.*)$|^error: ((?:SyntaxError|TypeError): .*)$/;
const LOCATION = /^\s+at (\S+?):(\d+):(\d+)$/;

/** Reads `deno check`'s output (without colours) into its problems, in order. */
export function parseCheckOutput(text: string, cwd: string): CheckProblem[] {
  const problems: CheckProblem[] = [];
  let pending: string | undefined;
  for (const line of text.split("\n")) {
    const header = line.match(HEADER);
    if (header) {
      pending = header[1] ? `${header[1]} ${header[2]}` : header[3];
      continue;
    }
    const at = line.match(LOCATION);
    if (at && pending !== undefined) {
      problems.push({ where: `${relativeTo(cwd, at[1])}:${at[2]}:${at[3]}`, message: pending });
      pending = undefined;
    }
  }
  return problems;
}

function relativeTo(cwd: string, url: string): string {
  if (!url.startsWith("file://")) return url;
  const path = decodeURIComponent(new URL(url).pathname);
  const base = cwd.endsWith("/") ? cwd : `${cwd}/`;
  return path.startsWith(base) ? path.slice(base.length) : path;
}

/** What {@linkcode typeCheck} checks, and how. */
export interface TypeCheckOptions {
  /** Local handler files (absolute paths) and remote modules, as the operator imports them. */
  roots: string[];
  /** The URL of the operator process's entry: its config is the one the check resolves with. */
  entry: string;
  /** The operator's Deno flags: a `--config` among them is the one used. */
  denoFlags?: readonly string[];
  cwd?: string;
  /** The `deno` executable; defaults to this one. */
  deno?: string;
}

/**
 * Type-checks the handler files with `deno check` (local modules only, as `deno run --check`
 * would) and throws a {@linkcode UsageError} whose message has the first problems, one per line
 * as `file:line:column: message`. Returns how long it took, in milliseconds.
 */
export async function typeCheck(options: TypeCheckOptions): Promise<number> {
  if (options.roots.length === 0) return 0;
  const started = performance.now();
  const cwd = options.cwd ?? Deno.cwd();
  const out = await new Deno.Command(options.deno ?? Deno.execPath(), {
    args: [
      "check",
      "--quiet",
      ...resolutionFlags(options.entry, options.denoFlags),
      ...options.roots,
    ],
    cwd,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const millis = Math.round(performance.now() - started);
  if (out.success) return millis;
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  const problems = parseCheckOutput(text, cwd);
  if (problems.length === 0) {
    // Not a diagnostic (a module that does not resolve, a bad config): deno's own first line.
    const first = text.split("\n").map((l) => l.trim()).find((l) => l.startsWith("error:")) ??
      text.trim().split("\n")[0];
    throw new UsageError(
      `the handler files do not type-check: ${first.replace(/^error: /, "")} ` +
        "(run with --no-check to skip the check)",
    );
  }
  const shown = problems.slice(0, SHOWN_PROBLEMS).map((p) => `${p.where}: ${p.message}`);
  if (problems.length === 1) {
    throw new TypeCheckError(`${shown[0]} (deno check; --no-check skips it)`, []);
  }
  const more = problems.length > SHOWN_PROBLEMS
    ? [`… and ${problems.length - SHOWN_PROBLEMS} more: see \`deno check\``]
    : [];
  throw new TypeCheckError(
    `deno check found ${problems.length} errors in the handler files (--no-check skips it):`,
    [...shown, ...more],
  );
}

/**
 * A failed type check: one line for one problem, else a heading and one line per problem, each
 * printed on its own line.
 */
export class TypeCheckError extends UsageError {
  /** The problems after the heading, `file:line:column: message` each (none for one problem). */
  readonly lines: string[];
  /**
   * @param heading What failed (the one problem, or how many there are).
   * @param lines One line per problem, when there are several.
   */
  constructor(heading: string, lines: string[]) {
    super([heading, ...lines].join("\n"));
    this.name = "TypeCheckError";
    this.lines = lines;
  }
}
