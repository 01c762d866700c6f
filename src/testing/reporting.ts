/**
 * How a `kopf` process tells {@linkcode KopfRunner} the exception it failed with — Kopf's
 * `runner.exception`, which a Python test gets from the CLI running in its own thread, while ours
 * runs in another process: the runner sets {@linkcode REPORT_VARIABLE} for the launcher, which
 * asks the operator process to report too, and the one that fails writes one
 * {@linkcode EXCEPTION_MARKER} line on stderr. The runner takes that line out of the output.
 *
 * @module
 */

/** The variable `KopfRunner` sets for `kopf`: report the exception on failure. */
export const REPORT_VARIABLE = "KOPF_REPORT_EXCEPTION";

/** The start of the stderr line that carries the exception, as JSON after it. */
export const EXCEPTION_MARKER = "kopf-exception: ";

/** What the exception line carries. */
export interface ReportedException {
  /** The error's class name in the operator process, e.g. `ActivityError`. */
  name: string;
  /** Its message. */
  message: string;
  /** Its stack, as the operator process printed it. */
  stack?: string;
}

/** The line reporting `error` (without the newline). */
export function exceptionLine(error: unknown): string {
  const reported: ReportedException = error instanceof Error
    ? { name: error.name, message: error.message, stack: error.stack }
    : { name: "Error", message: String(error) };
  return EXCEPTION_MARKER + JSON.stringify(reported);
}

/** The error a report line describes, or `undefined` if the line is not one. */
export function parseExceptionLine(line: string): Error | undefined {
  if (!line.startsWith(EXCEPTION_MARKER)) return undefined;
  let reported: Partial<ReportedException>;
  try {
    reported = JSON.parse(line.slice(EXCEPTION_MARKER.length));
  } catch {
    return undefined;
  }
  const error = new Error(String(reported.message ?? ""));
  error.name = String(reported.name ?? "Error");
  if (typeof reported.stack === "string") error.stack = reported.stack;
  return error;
}
