/**
 * Containment of user code: one handler must never end or stall the operator for the others.
 *
 * Every call of user code (handlers, daemons, timers, index functions, activities) runs inside an
 * {@linkcode Attribution} kept by `AsyncLocalStorage`, so work it starts and leaves behind — a
 * promise nobody awaits, a timer callback, a microtask — is still known to be that handler's, for
 * the object it was called for. While an operator runs, {@linkcode contain} holds process-wide
 * guards:
 *
 * - an unhandled promise rejection and an uncaught error are logged at ERROR in one line naming
 *   the handler and the object (when the work can be attributed; otherwise as not attributable)
 *   and the process goes on — Deno's default is to print a stack trace and exit;
 * - `Deno.exit()` (and Node's `process.exit()`, which calls it) from the code of a handler of
 *   objects is refused: it throws {@linkcode HandlerExitError}, and the handler fails permanently,
 *   even if it catches that error; called from an activity (startup, cleanup, login, probe) or
 *   outside any handler (an embedding application, the framework) it exits as usual;
 * - `new Worker(…, { deno: { permissions } })` without Deno's `--unstable-worker-options` flag
 *   throws {@linkcode HandlerExitError} instead of letting Deno end the whole process (exit code 70);
 * - errors thrown by `setTimeout`/`setInterval` callbacks scheduled by handler code are attributed
 *   to that handler (Deno reports them outside the context that scheduled them).
 *
 * Attribution costs one `AsyncLocalStorage` frame per call of user code; timers scheduled outside
 * any handler are not wrapped.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { getLogger, type Logger } from "@logtape/logtape";
import { errorMessage, PermanentError } from "./errors.ts";

const logger = getLogger(["kopf", "handling"]);

/** Whose code is running: a handler, for an object. */
export interface Attribution {
  /** The handler's title, e.g. `Handler 'create_fn'`. */
  readonly title: string;
  /** The object's logger (its lines name the object). */
  readonly logger: Logger;
  /**
   * Operator activities (startup, cleanup, login, probe) may end the process: they are the
   * operator's own code paths, not one object's (a startup handler that prints and exits).
   */
  readonly mayExit?: boolean;
  /** Whether the call is still running (then its own outcome reports a refused exit). */
  active: boolean;
  /** The code of a refused `Deno.exit()` during the call. */
  exitCode?: number;
}

/**
 * User code tried to end the operator process (`Deno.exit()`, or a Worker option that makes Deno
 * exit): refused, and the handler fails permanently.
 */
export class HandlerExitError extends PermanentError {}

const attributions = new AsyncLocalStorage<Attribution>();

/**
 * Run user code attributed to a handler. Resolves or rejects as `fn` does; a refused
 * `Deno.exit()` during the call turns a success into a {@linkcode HandlerExitError}.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 * import { attributed } from "./containment.ts";
 *
 * const logger = getLogger(["kopf", "objects"]);
 * const result = await attributed({ title: "Handler 'createFn'", logger }, () => 42);
 * assert.equal(result, 42); // had the function called Deno.exit(), a HandlerExitError instead
 * ```
 */
export async function attributed<T>(
  who: { readonly title: string; readonly logger: Logger; readonly mayExit?: boolean },
  fn: () => T | Promise<T>,
): Promise<T> {
  const attribution: Attribution = { ...who, active: true };
  try {
    const result = await attributions.run(attribution, fn);
    if (attribution.exitCode !== undefined) throw exitRefused(attribution);
    return result;
  } finally {
    attribution.active = false;
  }
}

function exitRefused(attribution: Attribution): HandlerExitError {
  return new HandlerExitError(
    `Deno.exit(${attribution.exitCode}) was called, which handler code may not do: the operator ` +
      "keeps running, and the handler fails permanently.",
  );
}

/** Options of {@linkcode contain}. */
export interface ContainmentOptions {
  /**
   * Whether Deno runs with `--unstable-worker-options` (then `Worker`'s `deno.permissions` is
   * allowed). Default: read from `/proc/self/cmdline` when permitted, else `false`.
   */
  workerOptions?: boolean;
}

/** Defaults of {@linkcode contain} for this process (the CLI sets what it knows of Deno's flags). */
export const containmentDefaults: ContainmentOptions = {};

interface Installed {
  refs: number;
  restore: () => void;
}

let installed: Installed | undefined;

/**
 * Hold the process-wide guards (see the module docs) until the returned function is called.
 * Nested calls share one installation (several operators in one process).
 */
export function contain(options: ContainmentOptions = {}): () => void {
  if (installed) installed.refs++;
  else installed = { refs: 1, restore: install(options) };
  let released = false;
  return () => {
    if (released || !installed) return;
    released = true;
    if (--installed.refs > 0) return;
    installed.restore();
    installed = undefined;
  };
}

type TimerFn = (callback: unknown, delay?: number, ...args: unknown[]) => number;

function install(options: ContainmentOptions): () => void {
  const restores: (() => void)[] = [];
  const replace = <O extends object, K extends keyof O>(owner: O, key: K, value: O[K]) => {
    const descriptor = Object.getOwnPropertyDescriptor(owner, key);
    if (!descriptor?.configurable) return;
    // Some globals are accessors (lazily loaded by Deno): replaced by a plain value meanwhile.
    const { enumerable } = descriptor;
    Object.defineProperty(owner, key, { value, enumerable, configurable: true, writable: true });
    restores.push(() => Object.defineProperty(owner, key, descriptor));
  };

  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    report("left a promise rejected with nothing awaiting it", event.reason);
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    report("threw an error that nothing caught", event.error ?? event.message);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  restores.push(() => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  });

  const exit = Deno.exit;
  replace(
    Deno,
    "exit",
    function (code?: number): never {
      const who = attributions.getStore();
      if (!who || who.mayExit) return exit(code);
      who.exitCode = code ?? 0;
      const error = exitRefused(who);
      // Said once: by the call's own outcome, or here if the call has finished already.
      if (!who.active) {
        who.logger.error("{title} called Deno.exit({code}) after it had finished: refused.", {
          title: who.title,
          code: who.exitCode,
        });
      }
      reported.add(error);
      throw error;
    } as typeof Deno.exit,
  );

  for (const name of ["setTimeout", "setInterval"] as const) {
    const original = globalThis[name] as unknown as TimerFn;
    replace(
      globalThis,
      name,
      function (callback: unknown, delay?: number, ...args: unknown[]) {
        const who = attributions.getStore();
        if (!who || typeof callback !== "function") return original(callback, delay, ...args);
        return original(
          function (this: unknown, ...callArgs: unknown[]) {
            try {
              return callback.apply(this, callArgs);
            } catch (error) {
              report("threw an error in a timer callback that nothing caught", error, who);
            }
          },
          delay,
          ...args,
        );
      } as unknown as (typeof globalThis)[typeof name],
    );
  }

  const workerOptions = options.workerOptions ?? containmentDefaults.workerOptions ??
    workerOptionsFlag();
  if (!workerOptions && typeof globalThis.Worker === "function") {
    const Original = globalThis.Worker;
    const Guarded = class Worker extends Original {
      constructor(specifier: string | URL, options?: WorkerOptions) {
        if ((options as { deno?: { permissions?: unknown } } | undefined)?.deno?.permissions) {
          throw new HandlerExitError(
            "new Worker(…, { deno: { permissions } }) needs Deno's --unstable-worker-options " +
              "flag (kopf run --deno-flag=--unstable-worker-options); without it, Deno would " +
              "end the whole operator.",
          );
        }
        super(specifier, options);
      }
    };
    replace(globalThis, "Worker", Guarded);
  }

  return () => {
    for (const restore of restores.reverse()) restore();
  };
}

/** Refused exits, which are reported where they are refused (not again when left uncaught). */
const reported = new WeakSet<object>();

/** Log an uncaught failure of user code in one line, naming the handler and object if known. */
function report(what: string, error: unknown, who = attributions.getStore()): void {
  if (error instanceof HandlerExitError && reported.has(error)) return;
  const message = errorMessage(error);
  if (who) {
    who.logger.error("{title} {what}: {message}", { title: who.title, what, message });
  } else {
    logger.error("Code outside any handler's call {what}: {message}", { what, message });
  }
  const stack = error instanceof Error ? error.stack : undefined;
  if (stack) logger.debug("{stack}", { stack });
}

/** Whether this process runs with `--unstable-worker-options` (or `--unstable`), if readable. */
function workerOptionsFlag(): boolean {
  const path = "/proc/self/cmdline";
  try {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return false;
    const args = Deno.readTextFileSync(path).split("\0");
    return args.includes("--unstable-worker-options") || args.includes("--unstable");
  } catch {
    return false;
  }
}
