/**
 * Sub-handlers: handlers registered by a running changing handler, collected per invocation
 * and run by the handling cycle after the parent returns (Kopf's `@kopf.subhandler` and
 * `kopf.register`).
 *
 * Two spellings: the context's `subhandler()`/`register()`, and the top-level
 * `kopf.subhandler()`/`kopf.register()` which find the running handler's collector through
 * `AsyncLocalStorage` (as Kopf does with context variables).
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { Lifecycle } from "../settings/lifecycles.ts";
import type { ChangingFn, SubhandlerApi, SubhandlerOptions } from "./context.ts";
import { buildSubhandler } from "./builders.ts";
import type { ChangingHandler } from "./records.ts";
import type { Registry } from "./registry.ts";

/**
 * Runs sub-handlers now, within the parent's invocation (given by the handling cycle): throws
 * a retry of the parent when they are not all finished.
 */
export type SubhandlerExecutor = (
  handlers: readonly ChangingHandler[],
  lifecycle?: Lifecycle,
) => Promise<void>;

/** The sub-handlers registered during one invocation of a parent handler. */
export class Subhandlers {
  /** The parent handler. */
  readonly parent: ChangingHandler;
  /** Runs sub-handlers now (`kopf.execute()`). */
  readonly execute: SubhandlerExecutor;
  readonly #handlers: ChangingHandler[] = [];

  /** Start collecting for one invocation of `parent`. */
  constructor(parent: ChangingHandler, execute: SubhandlerExecutor = notExecuted) {
    this.parent = parent;
    this.execute = execute;
  }

  /** The collected sub-handlers, in registration order. */
  get handlers(): readonly ChangingHandler[] {
    return this.#handlers;
  }

  /**
   * Add a sub-handler. Ids must be unique per invocation: two sub-handlers with one id would
   * share (and corrupt) one progress record, e.g. anonymous functions registered in a loop.
   */
  add(fn: unknown, options: SubhandlerOptions = {}, api = "subhandler"): ChangingHandler {
    const handler = buildSubhandler(this.parent, fn, options as Record<string, unknown>, api);
    const clash = this.#handlers.find((h) => h.id === handler.id);
    if (clash && clash.fn !== handler.fn) {
      throw new TypeError(
        `${this.parent.title}: sub-handler id '${handler.id}' is registered twice in one ` +
          "invocation; give each sub-handler a unique id (e.g. { id: `task-${name}` })",
      );
    }
    if (!clash) this.#handlers.push(handler);
    return handler;
  }

  /** The `subhandler()`/`register()` functions for the parent's context. */
  api<S, St>(): SubhandlerApi<S, St> {
    const subhandler = (
      first: ChangingFn<S, St> | SubhandlerOptions<S, St>,
      second?: ChangingFn<S, St>,
    ): ChangingFn<S, St> => {
      const [options, fn] = typeof first === "function" ? [{}, first] : [first, second];
      this.add(fn, options as SubhandlerOptions, "subhandler");
      return fn as ChangingFn<S, St>;
    };
    const register = (
      fn: ChangingFn<S, St>,
      options?: SubhandlerOptions<S, St>,
    ): ChangingFn<S, St> => {
      this.add(fn, (options ?? {}) as SubhandlerOptions, "register");
      return fn;
    };
    return { subhandler: subhandler as SubhandlerApi<S, St>["subhandler"], register };
  }
}

const current = new AsyncLocalStorage<Subhandlers>();

function notExecuted(): Promise<void> {
  return Promise.reject(new TypeError("kopf.execute(): no handling cycle runs this handler"));
}

/** Run a parent handler's invocation with `collector` as the target of top-level registrations. */
export function withSubhandlers<T>(collector: Subhandlers, fn: () => T): T {
  return current.run(collector, fn);
}

function collector(api: string): Subhandlers {
  const found = current.getStore();
  if (!found) {
    throw new TypeError(
      `kopf.${api}(): sub-handlers can only be registered while a changing handler ` +
        "(create/update/delete/resume/field) is running",
    );
  }
  return found;
}

/**
 * Register a sub-handler of the running changing handler (Kopf's `@kopf.subhandler`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function createFn({ spec }) {
 *   for (const item of spec.items as string[]) {
 *     kopf.subhandler({ id: `item-${item}` }, ({ logger }) => logger.info(`Handling ${item}`));
 *   }
 * });
 * ```
 */
export function subhandler<S = Record<string, unknown>, St = Record<string, unknown>>(
  ...args: [fn: ChangingFn<S, St>] | [options: SubhandlerOptions<S, St>, fn: ChangingFn<S, St>]
): ChangingFn<S, St> {
  const [options, fn] = args.length === 1 ? [{}, args[0]] : args;
  collector("subhandler").add(fn, options as SubhandlerOptions, "subhandler");
  return fn;
}

/**
 * Register a function as a sub-handler of the running changing handler (Kopf's `kopf.register`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", function createFn({ spec }) {
 *   for (const item of spec.items as string[]) {
 *     kopf.register(({ logger }) => logger.info(item), { id: `item-${item}` });
 *   }
 * });
 * ```
 */
export function register<S = Record<string, unknown>, St = Record<string, unknown>>(
  fn: ChangingFn<S, St>,
  options?: SubhandlerOptions<S, St>,
): ChangingFn<S, St> {
  collector("register").add(fn, (options ?? {}) as SubhandlerOptions, "register");
  return fn;
}

/**
 * What {@linkcode execute} runs.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const steps: kopf.ExecuteOptions = { fns: [function stepOne() {}, function stepTwo() {}] };
 * kopf.on.create("kopfexamples", async function createFn() {
 *   await kopf.execute(steps);
 * });
 * ```
 */
export interface ExecuteOptions<S = Record<string, unknown>, St = Record<string, unknown>> {
  /** Functions to run as sub-handlers: by id (`{ id: fn }`), or a list (ids from their names). */
  fns?: Record<string, ChangingFn<S, St>> | Iterable<ChangingFn<S, St>>;
  /** Functions to run as sub-handlers, as `fns` given as a list. */
  handlers?: Iterable<ChangingFn<S, St>>;
  /** A registry whose changing handlers run as sub-handlers. */
  registry?: Registry;
  /** Which of them run per invocation of the parent (default: `settings.execution.lifecycle`). */
  lifecycle?: Lifecycle;
}

/**
 * Run sub-handlers now, inside the running changing handler (Kopf's `kopf.execute()`): the given
 * functions — or, with nothing given, the sub-handlers registered so far with
 * `kopf.subhandler()`/`kopf.register()`. Each keeps its own progress on the object. Resolves when
 * all have finished; while some have not (one runs per invocation with Kopf's `asap` lifecycle,
 * or some failed temporarily), it throws, and the parent is called again later — run it early in
 * the parent, before anything that must not be repeated.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async function createFn({ logger }) {
 *   await kopf.execute({
 *     fns: {
 *       "step-one": () => logger.info("one"),
 *       "step-two": () => logger.info("two"),
 *     },
 *   });
 *   logger.info("both steps are done");
 * });
 * ```
 */
export async function execute<S = Record<string, unknown>, St = Record<string, unknown>>(
  options: ExecuteOptions<S, St> = {},
): Promise<void> {
  const parent = collector("execute");
  const handlers: ChangingHandler[] = [];
  const fns = options.fns;
  if (fns && typeof (fns as Iterable<unknown>)[Symbol.iterator] !== "function") {
    for (const [id, fn] of Object.entries(fns as Record<string, ChangingFn<S, St>>)) {
      handlers.push(parent.add(fn, { id } as SubhandlerOptions, "execute"));
    }
  }
  for (const list of [fns, options.handlers]) {
    if (!list || typeof (list as Iterable<unknown>)[Symbol.iterator] !== "function") continue;
    for (const fn of list as Iterable<ChangingFn<S, St>>) {
      handlers.push(parent.add(fn, {}, "execute"));
    }
  }
  for (const handler of options.registry?.handlers ?? []) {
    if (handler.kind !== "changing") continue;
    handlers.push(parent.add(handler.fn, { id: handler.id, param: handler.param }, "execute"));
  }
  const given = fns !== undefined || options.handlers !== undefined || options.registry;
  await parent.execute(given ? handlers : parent.handlers, options.lifecycle);
}
