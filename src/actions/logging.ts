/**
 * Where log records go and how they look: one of Kopf's three formats (`full`, `plain`, `json`),
 * one line per record on stderr — the only place where LogTape is configured. The framework logs
 * through `getLogger(["kopf", …])` and never picks sinks by itself: `kopf run` configures these
 * for the operator it starts, and {@linkcode configure} (Kopf's `kopf.configure()`) for an operator
 * embedded with `kopf.run()`. Next to the object logger (`loggers.ts`), whose record shape the
 * formats print.
 *
 * @module
 */
import { queueLine } from "./stderr.ts";
import { configureSync, type LogLevel, type LogRecord, type Sink } from "@logtape/logtape";

export { LOG_FORMATS, type LogFormat, type LoggingOptions, type Verbosity } from "./log_options.ts";
import { LOG_FORMATS, type LogFormat, type LoggingOptions, type Verbosity } from "./log_options.ts";

import type { ObjectRef } from "../kube/resource.ts";

/**
 * Categories whose debug records are internals: the API client, watches, caches and queues. `-v`
 * keeps them at INFO so that handler-level debugging stays readable; `-d` shows them too.
 */
export const INTERNAL_CATEGORIES: readonly (readonly string[])[] = [
  ["kopf", "kube"],
  ["kopf", "client"],
  ["kopf", "http"],
  ["kopf", "watch"],
  ["kopf", "informer"],
  ["kopf", "cache"],
  ["kopf", "queue"],
  ["kopf", "discovery"],
  ["kopf", "rate_limit"],
];

const LEVEL_NAMES: Record<LogLevel, string> = {
  trace: "DEBUG",
  debug: "DEBUG",
  info: "INFO",
  warning: "WARNING",
  error: "ERROR",
  fatal: "CRITICAL",
};

const SEVERITIES: Record<LogLevel, string> = {
  trace: "debug",
  debug: "debug",
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "fatal",
};

const REF_FIELDS = ["apiVersion", "kind", "namespace", "name", "uid"] as const;

/** The lowest level shown for a verbosity (Kopf: `-q` WARNING, default INFO, `-v`/`-d` DEBUG). */
export function levelOf(verbosity: Verbosity): LogLevel {
  switch (verbosity) {
    case "quiet":
      return "warning";
    case "normal":
      return "info";
    default:
      return "debug";
  }
}

/**
 * The object a record is about: its `object` property (Kopf's `k8s_ref` too), the one shape every
 * object logger writes (`actions/loggers.ts`).
 */
export function objectRefOf(record: Pick<LogRecord, "properties">): ObjectRef | undefined {
  const nested = record.properties.object ?? record.properties.k8s_ref;
  if (!isRecord(nested) || typeof nested.name !== "string") return undefined;
  const ref: ObjectRef = {};
  for (const field of REF_FIELDS) {
    const value = nested[field];
    if (typeof value === "string" && value) ref[field] = value;
  }
  return ref;
}

/** The text of a record's message, with non-string values rendered like `Deno.inspect`. */
export function renderMessage(record: Pick<LogRecord, "message">): string {
  let text = "";
  record.message.forEach((part, i) => {
    text += i % 2 === 0 ? String(part) : renderValue(part);
  });
  return text;
}

function renderValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message || value.name;
  return Deno.inspect(value, { colors: false, depth: 4, breakLength: Infinity });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function prefixOf(ref: ObjectRef | undefined): string {
  if (!ref?.name) return "";
  return ref.namespace ? `[${ref.namespace}/${ref.name}] ` : `[${ref.name}] `;
}

/** Python's `%(asctime)s`: `2024-01-31 12:34:56,789` in local time. */
function asctime(timestamp: number): string {
  const d = new Date(timestamp);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

function fit(text: string, width: number): string {
  return text.length > width ? text.slice(0, width) : text.padEnd(width);
}

/**
 * Formats one record as one line (without the newline) in one of Kopf's formats:
 * `plain` is `%(message)s`, `full` is `[%(asctime)s] %(name)-20.20s [%(levelname)-8.8s]
 * %(message)s`, `json` is one object with `timestamp`, `severity`, `logger`, `message`, the object
 * reference under `refKey`, and the record's other properties.
 *
 * @example
 * ```ts
 * import { formatRecord } from "./logging.ts";
 * const line = formatRecord({
 *   category: ["kopf", "objects"], level: "info", message: ["Handler 'x' succeeded."],
 *   rawMessage: "Handler 'x' succeeded.", timestamp: 0,
 *   properties: { object: { namespace: "ns", name: "obj", kind: "KopfExample" } },
 * }, "plain");
 * // line === "[ns/obj] Handler 'x' succeeded."
 * ```
 */
export function formatRecord(
  record: LogRecord,
  format: LogFormat,
  options: { prefix?: boolean; refKey?: string } = {},
): string {
  const ref = objectRefOf(record);
  const message = renderMessage(record);
  if (format === "json") {
    const line: Record<string, unknown> = {
      timestamp: new Date(record.timestamp).toISOString(),
      severity: SEVERITIES[record.level],
      logger: record.category.join("."),
      message: (options.prefix ?? false) ? prefixOf(ref) + message : message,
    };
    const refKey = options.refKey ?? "object";
    for (const [key, value] of Object.entries(record.properties)) {
      const isRef = key === "object" || key === "k8s_ref";
      if ((ref && isRef) || key in line) continue;
      line[key] = jsonValue(value);
    }
    if (ref) line[refKey] = ref;
    return JSON.stringify(line);
  }
  const text = (options.prefix ?? true) ? prefixOf(ref) + message : message;
  if (format === "plain") return text;
  const name = fit(record.category.join("."), 20);
  const level = fit(LEVEL_NAMES[record.level], 8);
  return `[${asctime(record.timestamp)}] ${name} [${level}] ${text}`;
}

function jsonValue(value: unknown): unknown {
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  if (typeof value === "bigint") return String(value);
  if (typeof value === "function" || typeof value === "symbol") return String(value);
  return value;
}

/** A LogTape sink that writes every record as one line in the given format. */
export function getLineSink(options: LoggingOptions = {}): Sink {
  const format = options.format ?? "full";
  const write = options.write ?? queueLine;
  const prefix = options.prefix ?? format !== "json";
  return (record) => write(formatRecord(record, format, { prefix, refKey: options.refKey }));
}

/**
 * Configures LogTape for an operator process: every category (the framework's and the user's own)
 * goes to one line sink on stderr at the level of `verbosity`, with internals held at INFO unless
 * `verbosity` is `"debug"`. Replaces any earlier configuration.
 *
 * @example
 * ```ts
 * import { configureLogging } from "./logging.ts";
 * configureLogging({ format: "json", verbosity: "verbose" });
 * ```
 */
export function configureLogging(options: LoggingOptions = {}): void {
  const verbosity = options.verbosity ?? "normal";
  const lowest = levelOf(verbosity);
  const internal: LogLevel = verbosity === "debug" ? "debug" : lowest === "debug" ? "info" : lowest;
  configureSync({
    reset: true,
    sinks: { line: getLineSink(options) },
    loggers: [
      { category: [], sinks: ["line"], lowestLevel: lowest },
      // LogTape's own notices are noise unless something is broken in the logging itself.
      { category: ["logtape", "meta"], lowestLevel: "warning" },
      ...INTERNAL_CATEGORIES.map((category) => ({
        category: [...category],
        lowestLevel: internal,
      })),
    ],
  });
}

/**
 * How {@linkcode configure} sets up logging: Kopf's `kopf.configure()` keywords, camel-cased —
 * the same choices as `kopf run`'s `-d`, `-v`, `-q`, `--log-format`, `--log-prefix` and
 * `--log-refkey`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.ConfigureOptions = { verbose: true, logFormat: "json" };
 * kopf.configure(options);
 * ```
 */
export interface ConfigureOptions {
  /** Show debug records, the framework's internals (API client, watches, queues) too (`-d`). */
  debug?: boolean;
  /** Show debug records, with the internals held at INFO (`-v`). */
  verbose?: boolean;
  /** Show warnings and errors only (`-q`). */
  quiet?: boolean;
  /** `"full"` (the default), `"plain"` or `"json"`, as Kopf's `--log-format`. */
  logFormat?: LogFormat;
  /**
   * Prefix messages about objects with `[namespace/name]`. Default `false`, as in Kopf's
   * `configure()`; `null` decides by the format, as `kopf run` does: on for text, off for JSON.
   */
  logPrefix?: boolean | null;
  /** The key of the object reference in JSON records (default `"object"`). */
  logRefkey?: string;
}

/**
 * Configures logging for an embedded operator as `kopf run` configures it for its own (Kopf's
 * `kopf.configure()`): every record, the framework's and the program's own, goes to stderr as one
 * line in one of Kopf's formats, at the level that `debug`, `verbose` or `quiet` choose (INFO by
 * default). Replaces LogTape's configuration, whoever made it; call it before `kopf.run()`, since
 * nothing is printed until logging is configured.
 *
 * @example
 * ```ts ignore
 * import * as kopf from "jsr:@kopf/kopf";
 *
 * kopf.configure({ verbose: true, logFormat: "plain", logPrefix: true });
 * await kopf.run({ namespaces: ["default"], signal });
 * ```
 */
export function configure(options: ConfigureOptions = {}): void {
  const format = options.logFormat ?? "full";
  if (!(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new TypeError(
      `kopf.configure(): logFormat must be one of ${LOG_FORMATS.join(", ")}, not "${format}"`,
    );
  }
  const verbosity: Verbosity = options.debug
    ? "debug"
    : options.verbose
    ? "verbose"
    : options.quiet
    ? "quiet"
    : "normal";
  const logPrefix = options.logPrefix === undefined ? false : options.logPrefix;
  configureLogging({
    format,
    verbosity,
    prefix: logPrefix ?? undefined,
    refKey: options.logRefkey,
  });
}
