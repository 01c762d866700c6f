/**
 * The process's stderr, where log lines go: written in batches, in order.
 *
 * A write per log line was 6 % of the operator's busy time in a burst of 1,000 objects
 * (`bench/profile_operator.ts`): {@linkcode queueLine} keeps the lines of one turn of the event
 * loop and writes them together a millisecond later at most (at once beyond 64 KiB), and before
 * the process ends (normally, by `Deno.exit()`, or by an uncaught error). Lines written directly
 * ({@linkcode writeLine}: the CLI's own `kopf: …` lines) go after whatever was queued, so that the
 * order on stderr stays the order of events.
 *
 * @module
 */

const encoder = new TextEncoder();
/** Beyond this many characters queued, they are written at once. */
const FLUSH_AT = 64 * 1024;

let pending: string[] = [];
let pendingLength = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

/**
 * Queues one line (without its newline) for stderr.
 *
 * @example
 * ```ts
 * import { queueLine } from "./stderr.ts";
 * queueLine("[2026-12-03 10:00:00,000] kopf.operator [INFO    ] Hello.");
 * ```
 */
export function queueLine(line: string): void {
  pending.push(line);
  pendingLength += line.length + 1;
  if (pendingLength >= FLUSH_AT) flush();
  else timer ??= setTimeout(flush, 0);
}

/**
 * Writes one line (without its newline) to stderr now, after the queued ones.
 *
 * @example
 * ```ts
 * import { writeLine } from "./stderr.ts";
 * writeLine("kopf: error: something went wrong");
 * ```
 */
export function writeLine(line: string): void {
  pending.push(line);
  flush();
}

/** Writes every queued line now. */
export function flush(): void {
  clearTimeout(timer);
  timer = undefined;
  if (!pending.length) return;
  const bytes = encoder.encode(pending.join("\n") + "\n");
  pending = [];
  pendingLength = 0;
  let written = 0;
  // A pipe may take a partial write; loop so a long JSON line is never cut.
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

globalThis.addEventListener("unload", flush);
globalThis.addEventListener("error", flush);
globalThis.addEventListener("unhandledrejection", flush);
