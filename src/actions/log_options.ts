/**
 * The logging options, as plain data: what `--log-format`, `-q`/`-v`/`-d` and `kopf.configure()`
 * accept. Apart from {@link ./logging.ts} so that the launcher of `kopf run`, which only parses
 * and forwards them, does not load LogTape (about 6 MiB of resident memory for its whole life).
 *
 * @module
 */

/**
 * The output formats of Kopf's `--log-format`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const format: kopf.LogFormat = "json"; // one JSON object per line, for log collectors
 * kopf.configure({ logFormat: format });
 * ```
 */
export type LogFormat = "plain" | "full" | "json";

/** The formats accepted by `--log-format`, in the order shown in the help. */
export const LOG_FORMATS: readonly LogFormat[] = ["full", "plain", "json"];

/** How loud the operator is: Kopf's `-q`, default, `-v`, `-d`. */
export type Verbosity = "quiet" | "normal" | "verbose" | "debug";

/** What {@linkcode configureLogging} needs. */
export interface LoggingOptions {
  /** Default `"full"`, like Kopf. */
  format?: LogFormat;
  /** Default `"normal"` (INFO). */
  verbosity?: Verbosity;
  /** Prefix object messages with `[namespace/name]`; default on for text, off for JSON. */
  prefix?: boolean;
  /** The JSON key of the object reference; default `"object"`. */
  refKey?: string;
  /** Where formatted lines go; default: synchronous writes to stderr. */
  write?: (line: string) => void;
}
