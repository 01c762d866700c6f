/**
 * Errors of the command line and the exit codes they map to.
 *
 * @module
 */

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
  Deno.stderr.writeSync(new TextEncoder().encode(`kopf: error: ${line}\n`));
}
