/**
 * Stopping the operator: OS signals and the limits that keep a stop from hanging.
 *
 * - The first SIGINT/SIGTERM starts a graceful stop (as the `signal` of `kopf.run` does); a
 *   second one exits at once (130 for SIGINT, 143 for SIGTERM).
 * - Once stopping, an ultimate timer (`settings.process.ultimateExitingTimeout`, 600 s) exits
 *   the process with code 1 if the graceful stop has not finished: a stuck handler can never
 *   keep the process alive forever. The timer does not keep the process alive by itself.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const logger = getLogger(["kopf", "shutdown"]);

/** How the process exits (replaceable in tests). */
export type ExitFn = (code: number) => void;

const defaultExit: ExitFn = (code) => Deno.exit(code);

/** Options of {@linkcode handleSignals}. */
export interface SignalOptions {
  /** The signals (default SIGINT and SIGTERM). */
  signals?: readonly Deno.Signal[];
  /** How to exit on the second signal (default `Deno.exit`). */
  exit?: ExitFn;
}

/**
 * Call `onStop` on the first SIGINT/SIGTERM; exit at once on the second. Returns a disposer
 * that removes the listeners.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import { handleSignals } from "./shutdown.ts";
 *
 * const controller = new AbortController();
 * using _signals = handleSignals(() => controller.abort());
 * await kopf.run({ signal: controller.signal });
 * ```
 */
export function handleSignals(
  onStop: (signal: Deno.Signal) => void,
  options: SignalOptions = {},
): Disposable & { dispose(): void } {
  const exit = options.exit ?? defaultExit;
  const signals = options.signals ?? ["SIGINT", "SIGTERM"];
  let received = 0;
  const listeners = signals.map((name) => {
    const listener = () => {
      received += 1;
      if (received > 1) {
        logger.warn("Signal {signal} is received again. Exiting without a graceful stop.", {
          signal: name,
        });
        exit(name === "SIGINT" ? 130 : 143);
        return;
      }
      logger.info("Signal {signal} is received. Operator is stopping.", { signal: name });
      onStop(name);
    };
    Deno.addSignalListener(name, listener);
    return [name, listener] as const;
  });
  let disposed = false;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
  };
  return { dispose, [Symbol.dispose]: dispose };
}

/** Options of {@linkcode armUltimateExit}. */
export interface UltimateExitOptions {
  /** How to exit (default `Deno.exit`). */
  exit?: ExitFn;
  /** Exit code (default 1). */
  code?: number;
}

/**
 * Exit the process if it is still stopping after `seconds` (`null`: never). Returns a disposer
 * to call when the stop has finished. The timer is unref'd: it never keeps the process alive.
 *
 * @example
 * ```ts
 * import { Settings } from "../settings/settings.ts";
 * import { armUltimateExit } from "./shutdown.ts";
 *
 * const settings = new Settings();
 * const ultimate = armUltimateExit(settings.process.ultimateExitingTimeout);
 * try {
 *   await Promise.resolve(); // stop everything gracefully
 * } finally {
 *   ultimate.dispose();
 * }
 * ```
 */
export function armUltimateExit(
  seconds: number | null,
  options: UltimateExitOptions = {},
): Disposable & { dispose(): void } {
  if (seconds === null || !Number.isFinite(seconds)) {
    return { dispose: () => {}, [Symbol.dispose]: () => {} };
  }
  const exit = options.exit ?? defaultExit;
  const timer = setTimeout(() => {
    logger.error(
      "The operator did not stop in {seconds} seconds (process.ultimateExitingTimeout). Exiting.",
      { seconds },
    );
    exit(options.code ?? 1);
  }, Math.max(0, seconds * 1000));
  Deno.unrefTimer(timer);
  const dispose = () => clearTimeout(timer);
  return { dispose, [Symbol.dispose]: dispose };
}
