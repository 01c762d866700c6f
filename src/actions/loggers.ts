/**
 * The one logger of an object, whoever logs about it (handlers, daemons, indexes, the framework):
 * LogTape category `kopf.objects`, the object reference as the structured property `object`
 * (`namespace`, `name`, `uid`, `kind`, `apiVersion`) — the line sinks print it as Kopf's
 * `[namespace/name]` prefix, JSON output as an object reference. A message given as a single
 * string is taken literally — `logger.info(\`spec: ${JSON.stringify(spec)}\`)` logs the JSON as it
 * is, as Kopf's (Python `logging`) loggers do — while a message with a properties object keeps
 * LogTape's `{placeholder}` templating. With `posting.loggers` on, messages are also posted as
 * Kubernetes Events about the object.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
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

/** What an object logger posts as a Kubernetes Event when `posting.loggers` is on. */
export type LogPoster = (level: "debug" | "info" | "warning" | "error", message: string) => void;

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
    return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  });
}

function wrap(logger: Logger, options: ObjectLoggerOptions): Logger {
  const minimal = SEVERITY[options.level ?? "info"] ?? SEVERITY.info;
  return new Proxy(logger, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === "with" && typeof value === "function") {
        return (properties: Record<string, unknown>) =>
          wrap((value as Logger["with"]).call(target, properties), options);
      }
      if (typeof property !== "string" || !LEVEL_METHODS.has(property)) return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        // A lone string is a finished message (Kopf style): its braces are not placeholders.
        const literalOnly = typeof args[0] === "string" &&
          (args.length === 1 || args[1] instanceof Error);
        const call = literalOnly ? [literal(args[0] as string), ...args.slice(1)] : args;
        const result = method.apply(target, call);
        if (options.post && SEVERITY[property] >= minimal) {
          const text = literalOnly ? render([args[0], args[1]]) : render(args);
          const level = SEVERITY[property] >= SEVERITY.error
            ? "error"
            : SEVERITY[property] >= SEVERITY.warn
            ? "warning"
            : SEVERITY[property] >= SEVERITY.info
            ? "info"
            : "debug";
          if (text !== null) options.post(level, text);
        }
        return result;
      };
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
      poster.event(body, {
        type: level === "error" ? "Error" : level === "warning" ? "Warning" : "Normal",
        reason: "Logging",
        message,
      })
    : undefined;
  return wrap(getLogger(["kopf", "objects"]).with({ object }), { post, level: settings.level });
}
