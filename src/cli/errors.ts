/**
 * Errors of the command line and the exit codes they map to.
 *
 * @module
 */
import { writeLine } from "../actions/stderr.ts";
import { exceptionLine, REPORT_VARIABLE } from "../testing/reporting.ts";

/** Exit code for bad input: wrong flags, missing files, unusable configuration. */
export const EXIT_USAGE = 2;

/** Exit code for an operator that stopped because of an error. */
export const EXIT_FAILURE = 1;

/**
 * Bad input from the user. The command line prints its message as one line on stderr and exits
 * with {@linkcode EXIT_USAGE}, without a stack trace.
 */
export class UsageError extends Error {
  /**
   * @param message One line, saying what is wrong and, where it helps, what to do.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Writes `kopf: error: <message>` as one line on stderr. */
export function printError(message: string): void {
  const line = message.replace(/\s*\n\s*/g, " ").trim();
  writeLine(`kopf: error: ${line}`);
}

/** Whether `KopfRunner` asked this `kopf` process to report its exception (see `testing/`). */
export function reportRequested(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): boolean {
  try {
    return Boolean(env(REPORT_VARIABLE));
  } catch {
    return false; // not readable with a scoped --allow-env: not asked
  }
}

/** Writes the line that gives `KopfRunner` the exception this process fails with. */
export function reportException(error: unknown): void {
  writeLine(exceptionLine(error));
}

/**
 * The exit code of a command that failed with bad input — a commander parsing error or a
 * {@linkcode UsageError} — after saying why in one line; anything else is rethrown. Help shown on
 * request exits 0; help shown because the command is missing is bad input.
 */
export function usageExitCode(error: unknown): number {
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === "string" && code.startsWith("commander.")) {
    if (code === "commander.helpDisplayed" || code === "commander.version") return 0;
    if (code === "commander.help") {
      return (error as { exitCode?: number }).exitCode === 0 ? 0 : EXIT_USAGE;
    }
    printError(error.message.replace(/^error: /, ""));
    if (reportRequested()) reportException(error);
    return EXIT_USAGE;
  }
  if (error instanceof UsageError) {
    printError(error.message);
    if (reportRequested()) reportException(error);
    return EXIT_USAGE;
  }
  throw error;
}
