/**
 * The one logger of an object, whoever logs about it (handlers, daemons, indexes, the framework):
 * LogTape category `kopf.objects`, the object reference as the structured property `object`
 * (`namespace`, `name`, `uid`, `kind`, `apiVersion`) — the line sinks print it as Kopf's
 * `[namespace/name]` prefix, JSON output as an object reference. A message given as a single
 * string is taken literally — `logger.info(\`spec: ${JSON.stringify(spec)}\`)` logs the JSON as it
 * is, as Kopf's (Python `logging`) loggers do — while a message with a properties object keeps
 * LogTape's `{placeholder}` templating. With `posting.loggers` on, messages are also posted as
 * Kubernetes Events about the object, typed by level as Kopf types them (`Debug`, `Normal`,
 * `Warning`, `Error`, `Fatal`); a message logged with an error (`logger.error("…", error)`, or an
 * `Error` among its properties) is posted with the error's stack appended, where Kopf's
 * `logger.exception()` appends the traceback.
 *
 * @module
 */

import { getLogger, type Logger, type LogLevel } from "@logtape/logtape";
import type { EventPoster } from "../kube/events.ts";
import { type KubeObject, objectReference, type Resource } from "../kube/resource.ts";
import type { PostingSettings } from "../settings/settings.ts";

/** Log levels in the order of severity, as the posting settings name them. */
const SEVERITY: Readonly<Record<string, number>> = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  warning: 3,
  error: 4,
  fatal: 5,
};

const LEVEL_METHODS = new Set(Object.keys(SEVERITY));

/** LogTape's level of each log method. */
const METHOD_LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warn: "warning",
  warning: "warning",
  error: "error",
  fatal: "fatal",
};

/** The levels an object logger posts at, from `debug` to `fatal`. */
export type PostedLevel = "debug" | "info" | "warning" | "error" | "fatal";

/** What an object logger posts as a Kubernetes Event when `posting.loggers` is on. */
export type LogPoster = (level: PostedLevel, message: string) => void;

/** The Event type of a posted log message: Kopf's `K8sPoster` names them so. */
const EVENT_TYPES: Readonly<Record<PostedLevel, string>> = {
  debug: "Debug",
  info: "Normal",
  warning: "Warning",
  error: "Error",
  fatal: "Fatal",
};

/** Options of {@linkcode objectLogger}. */
export interface ObjectLoggerOptions {
  /** Post messages at or above `level` as Events (Kopf's `posting.loggers`). */
  post?: LogPoster;
  /** The minimal level of posted messages (Kopf's `posting.level`). */
  level?: "debug" | "info" | "warning" | "error";
  /**
   * Where the operator posts Events: messages are posted when its `posting.loggers` and
   * `posting.enabled` settings are on (at and above `posting.level`), instead of `post`.
   */
  posting?: {
    readonly settings: Pick<PostingSettings, "loggers" | "enabled" | "level">;
    readonly poster?: Pick<EventPoster, "event">;
  };
  /** The object's resource, for bodies without `apiVersion`/`kind` (watch tombstones). */
  resource?: Pick<Resource, "group" | "version" | "kind">;
}

/** Escape LogTape's placeholder braces so that a text is logged literally. */
export function literal(text: string): string {
  return text.replaceAll("{", "{{").replaceAll("}", "}}");
}

function render(args: readonly unknown[]): string | null {
  const [first, second] = args;
  if (typeof first !== "string") {
    if (Array.isArray(first) && "raw" in first) {
      const strings = first as unknown as TemplateStringsArray;
      return strings.reduce(
        (text, part, i) => text + part + (i < args.length - 1 ? String(args[i + 1]) : ""),
        "",
      );
    }
    return first instanceof Error ? first.message : null;
  }
  if (second instanceof Error) return `${first} ${second.message}`;
  if (typeof second !== "object" || second === null) return first;
  const props = second as Record<string, unknown>;
  return first.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (match, key?: string) => {
    if (match === "{{") return "{";
    if (match === "}}") return "}";
    const value = props[key!.trim()];
    if (value instanceof Error) return value.message; // as the line sinks show it
    return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  });
}

/**
 * The error a log call carries, if any — Kopf's `exc_info`: the message itself, the argument after
 * a literal message, or an `Error` among the properties (`error` first).
 */
function attachedError(args: readonly unknown[]): Error | undefined {
  const [first, second] = args;
  if (first instanceof Error) return first;
  if (second instanceof Error) return second;
  if (typeof second !== "object" || second === null) return undefined;
  const props = second as Record<string, unknown>;
  if (props.error instanceof Error) return props.error;
  return Object.values(props).find((value): value is Error => value instanceof Error);
}

/** The text of a posted message: with the stack of its error appended, as Kopf's traceback. */
function withStack(text: string, error: Error | undefined): string {
  if (!error) return text;
  const stack = error.stack || `${error.name}: ${error.message}`;
  return `${text}\n${stack}`;
}

/** The posted level of a log method. */
function postedLevel(method: string): PostedLevel {
  const severity = SEVERITY[method];
  return severity >= SEVERITY.fatal
    ? "fatal"
    : severity >= SEVERITY.error
    ? "error"
    : severity >= SEVERITY.warn
    ? "warning"
    : severity >= SEVERITY.info
    ? "info"
    : "debug";
}

function wrap(logger: Logger, options: ObjectLoggerOptions): Logger {
  const minimal = SEVERITY[options.level ?? "info"] ?? SEVERITY.info;
  // One function per log method and logger, made on first use.
  const methods = new Map<string, (...args: unknown[]) => unknown>();
  return new Proxy(logger, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === "with" && typeof value === "function") {
        return (properties: Record<string, unknown>) =>
          wrap((value as Logger["with"]).call(target, properties), options);
      }
      if (typeof property !== "string" || !LEVEL_METHODS.has(property)) return value;
      let bound = methods.get(property);
      if (bound) return bound;
      const method = value as (...args: unknown[]) => unknown;
      const level = METHOD_LEVELS[property];
      const posts = options.post !== undefined && SEVERITY[property] >= minimal;
      bound = (...args: unknown[]) => {
        // A line neither printed nor posted is not built: the engine's debug lines, at the
        // default level, cost one check each.
        if (!posts && !target.isEnabledFor(level)) return undefined;
        // A lone string is a finished message (Kopf style): its braces are not placeholders.
        const literalOnly = typeof args[0] === "string" &&
          (args.length === 1 || args[1] instanceof Error);
        const call = literalOnly ? [literal(args[0] as string), ...args.slice(1)] : args;
        const result = method.apply(target, call);
        if (posts) {
          const text = literalOnly ? render([args[0], args[1]]) : render(args);
          if (text !== null) {
            options.post!(postedLevel(property), withStack(text, attachedError(args)));
          }
        }
        return result;
      };
      methods.set(property, bound);
      return bound;
    },
  });
}

/**
 * A logger that takes a lone string message literally (as the object logger does), for handlers'
 * loggers that are not about an object (activities).
 */
export function literalLogger(logger: Logger): Logger {
  return wrap(logger, {});
}

/**
 * The logger of one object: category `kopf.objects`, the object reference as properties, single
 * string messages taken literally, and optionally messages posted as Events.
 *
 * @example
 * ```ts
 * import { objectLogger } from "./loggers.ts";
 *
 * const logger = objectLogger({ metadata: { namespace: "ns", name: "ex1" } });
 * logger.info(`Created with spec: ${JSON.stringify({ size: 1 })}`);
 * // logged as: [ns/ex1] Created with spec: {"size":1}
 * ```
 */
export function objectLogger(body: KubeObject, options: ObjectLoggerOptions = {}): Logger {
  const object = objectReference(body, options.resource);
  const posting = options.posting;
  if (!posting) return wrap(getLogger(["kopf", "objects"]).with({ object }), options);
  const { settings, poster } = posting;
  const post: LogPoster | undefined = settings.loggers && settings.enabled && poster
    ? (level, message) =>
      poster.event(body, { type: EVENT_TYPES[level], reason: "Logging", message })
    : undefined;
  return wrap(getLogger(["kopf", "objects"]).with({ object }), { post, level: settings.level });
}
