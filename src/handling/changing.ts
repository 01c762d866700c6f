/**
 * The changing handlers of one cause (Kopf's `process_changing_cause` and
 * `execute_handlers_once`): the handlers due for the cause with their stored progress, run as the
 * lifecycle orders them (all at once by default), sub-handlers after their parent, and their
 * progress, results and the diff-base put into the cycle's patch. Handlers that finished for
 * this very cause in this process are never called again (the object's memory says so).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { deliverResults } from "../actions/application.ts";
import { changingCauseContext, changingContext } from "../actions/contexts.ts";
import { HandlerChildrenRetry, type Outcome } from "../actions/errors.ts";
import { execute } from "../actions/execution.ts";
import { invoke } from "../actions/invocation.ts";
import type { Patch } from "../storage/patch.ts";
import type { Resource } from "../kube/resource.ts";
import type { ChangingMatchCause } from "../registry/registry.ts";
import { selectChangingHandlers } from "../registry/registry.ts";
import type { ChangingHandler } from "../registry/records.ts";
import { Subhandlers, withSubhandlers } from "../registry/subhandlers.ts";
import type { Lifecycle } from "../settings/lifecycles.ts";
import { deepCopy, deepEqual, type RawBody, resolveField } from "../storage/fields.ts";
import { applyMergePatch } from "../storage/patch.ts";
import { capitalizedTitle, type Essences, HANDLER_REASONS, type Reason, TITLES } from "./causes.ts";
import { reduceDiff } from "../storage/diff.ts";
import type { ObjectMemory } from "./memories.ts";
import { State } from "./progression.ts";
import type { CycleEnvironment } from "./environment.ts";

/** Everything one run of the changing handlers shares. */
export interface ChangingRun {
  readonly env: CycleEnvironment;
  readonly resource: Resource;
  readonly body: RawBody;
  /** The body handlers see, with what the handlers before them in this cycle did. */
  readonly view: BodyView;
  readonly patch: Patch;
  readonly logger: Logger;
  readonly memory: ObjectMemory;
  readonly signal: AbortSignal;
  readonly reason: Reason;
  readonly initial: boolean;
  readonly essences: Essences;
  /** Outcomes of handlers that already finished for this cause in this process. */
  readonly finished: ReadonlyMap<string, Outcome>;
  /**
   * Whether finished handlers' records are purged when the cause is done. Not while a deletion
   * keeps our finalizer (daemons still stopping): until the finalizer goes, the records say
   * that the deletion handlers have run, also to an operator started after this one.
   */
  readonly purgeWhenDone: boolean;
}

/**
 * The body handlers see: a copy of the cached one (handlers cannot corrupt the cache through it)
 * with the cycle's patch so far applied — the results and patches of the handlers that ran before
 * in this cycle, as Kopf's handlers see them after its per-handler patches. Made when first read,
 * again after each outcome; most cycles call no handler and make none.
 */
export class BodyView {
  readonly #body: RawBody;
  readonly #patch: Patch;
  #copy: RawBody | undefined;

  /** A view of `body` with `patch` applied. */
  constructor(body: RawBody, patch: Patch) {
    this.#body = body;
    this.#patch = patch;
  }

  /** The body as it stands in this cycle. */
  get(): RawBody {
    if (this.#copy) return this.#copy;
    const copy = deepCopy(this.#body);
    applyMergePatch(copy, this.#patch.toMergePatch());
    for (const fn of this.#patch.fns) fn(copy);
    return this.#copy = copy;
  }

  /** The patch has grown: the next read makes a new copy. */
  changed(): void {
    this.#copy = undefined;
  }
}

function handlerReason(reason: Reason): "create" | "update" | "delete" | "resume" {
  return (HANDLER_REASONS.includes(reason) ? reason : "update") as
    | "create"
    | "update"
    | "delete"
    | "resume";
}

export function matchCause(
  run: Omit<ChangingRun, "patch" | "signal">,
  patch: Patch,
): ChangingMatchCause {
  return {
    resource: run.resource,
    body: run.body,
    reason: run.reason,
    initial: run.initial,
    essences: { old: run.essences.old, new: run.essences.new },
    context: () =>
      changingCauseContext({
        resource: run.resource,
        body: run.view.get(),
        patch,
        logger: run.logger,
        memory: run.memory,
        signal: new AbortController().signal,
        indices: run.env.indices?.(),
        api: run.env.api,
        reason: handlerReason(run.reason),
        diff: run.essences.diff,
        old: run.essences.old ?? undefined,
        new: run.essences.new,
      }),
  };
}

/**
 * Run the due handlers of a cause as Kopf's cycles would, within this one (Kopf's
 * `execute_handlers_once`, repeated): round after round, the lifecycle picks which of the due
 * handlers run (Kopf's `asap`, the default: one, the least retried, in declared order), and each
 * sees the results and patches of those before it. A handler runs again in the same cycle only
 * when its sub-handlers made progress (a parent re-invoked for its next sub-handler, as Kopf
 * re-invokes it every cycle); anything else due again waits for the next cycle. Returns the last
 * outcome per handler and the state after them. Sub-handlers get one round per invocation of
 * their parent (`rounds: 1`): the parent's next invocation runs the next. When the operator
 * stops, the handlers not started yet are skipped and what ran so far is returned.
 */
async function executeHandlers(
  run: ChangingRun,
  handlers: readonly ChangingHandler[],
  initial: State,
  containers: readonly Set<string>[],
  { rounds = Infinity, lifecycle = run.env.settings.execution.lifecycle }: {
    rounds?: number;
    lifecycle?: Lifecycle;
  } = {},
): Promise<{ outcomes: Map<string, Outcome>; state: State }> {
  let state = initial;
  const outcomes = new Map<string, Outcome>();
  for (const handler of handlers) {
    const finished = run.finished.get(handler.id);
    if (finished && !state.get(handler.id)?.finished) {
      // Its outcome is not (or no longer) in the stored progress, but it is this cause's.
      run.logger.debug(`${handler.title} has already finished for this cause: not called again.`);
      outcomes.set(handler.id, finished);
    }
  }
  state = state.withOutcomes(outcomes, new Date());
  // Handlers that ran in this cycle and may not run again in it.
  const spent = new Set<string>();
  for (let round = 0; round < rounds && !run.signal.aborted; round++) {
    const now = new Date();
    const todo = handlers.filter((h) => !spent.has(h.id) && state.get(h.id)?.isAwakened(now));
    const plan = lifecycle(todo, { retries: (id) => state.get(id)?.retries ?? 0 });
    if (!plan.length) break;
    run.memory.handlingStarted = true;
    const round = run.env.settings.execution.concurrent
      ? await Promise.all(plan.map((h) => executeChanging(run, h, state, containers)))
      : [];
    for (const [i, handler] of plan.entries()) {
      if (run.signal.aborted) break;
      let executed: Executed;
      try {
        executed = round[i] ?? await executeChanging(run, handler, state, containers);
      } catch (error) {
        if (run.signal.aborted) break;
        throw error;
      }
      outcomes.set(handler.id, executed.outcome);
      state = state.withOutcomes(new Map([[handler.id, executed.outcome]]), new Date());
      deliverResults(new Map([[handler.id, executed.outcome]]), run.patch.raw);
      run.view.changed();
      if (!executed.childrenProgressed) spent.add(handler.id);
    }
  }
  run.memory.rememberFinished(run.reason, run.essences.old, outcomes);
  return { outcomes, state };
}

/** One invocation of a handler: its outcome, and whether its sub-handlers got any further. */
interface Executed {
  readonly outcome: Outcome;
  readonly childrenProgressed: boolean;
}

async function executeChanging(
  run: ChangingRun,
  handler: ChangingHandler,
  state: State,
  containers: readonly Set<string>[],
): Promise<Executed> {
  const handlerState = state.get(handler.id)!;
  const subrefs = new Set<string>();
  const { essences } = run;
  const scoped = handler.field !== null;
  let childrenProgressed = false;
  // Sub-handlers run now (kopf.execute()) or after the parent returns (the implicit execute).
  const runChildren = async (
    children: readonly ChangingHandler[],
    lifecycle?: Lifecycle,
  ): Promise<void> => {
    const ran = await executeSubhandlers(run, children, [...containers, subrefs], lifecycle);
    childrenProgressed ||= ran.progressed;
    if (ran.delay !== null) {
      throw new HandlerChildrenRetry("Sub-handlers are not finished.", { delay: ran.delay });
    }
  };
  const call = async (): Promise<unknown> => {
    const collector = new Subhandlers(handler, runChildren);
    const controller = new AbortController();
    const now = new Date();
    const body = run.view.get();
    const context = changingContext({
      resource: run.resource,
      body,
      patch: run.patch,
      logger: run.logger,
      memory: run.memory,
      signal: AbortSignal.any([run.signal, controller.signal]),
      indices: run.env.indices?.(),
      api: run.env.api,
      param: handler.param,
      reason: handlerReason(run.reason),
      diff: scoped ? reduceDiff(essences.diff, handler.field!) : essences.diff,
      old: scoped ? resolveField(essences.old, handler.field!) : essences.old ?? undefined,
      new: scoped ? resolveField(essences.new, handler.field!) : essences.new,
      retry: handlerState.retries,
      started: handlerState.started,
      runtime: handlerState.runtime(now),
      subhandlers: collector.api(),
    });
    const result = await invoke(handler.fn, context as never, {
      title: handler.title,
      logger: run.logger,
      body,
      // Kopf's `timeout` counts across attempts and never aborts one; `attemptTimeout` does.
      timeout: handler.attemptTimeout,
      signal: run.signal,
      controller,
      around: (fn) => withSubhandlers(collector, fn),
      execution: run.env.settings.execution,
    });
    // Sub-handlers run after their parent returns, as if at its end (Kopf's implicit execute).
    await runChildren(collector.handlers);
    return result;
  };
  const outcome = await execute(call, {
    handler,
    state: handlerState,
    defaultErrors: "temporary",
    defaultBackoff: run.env.settings.execution.defaultBackoff,
    storedResult: true,
    logger: run.logger,
    signal: run.signal,
    subrefs,
  });
  return { outcome, childrenProgressed };
}

/**
 * Run the sub-handlers of one invocation of a parent, as its lifecycle picks them (one per
 * invocation by default, as Kopf); their progress goes to the same patch. Says whether any of
 * them finished now, and — while some are unfinished — when the parent should try again.
 */
async function executeSubhandlers(
  run: ChangingRun,
  handlers: readonly ChangingHandler[],
  containers: readonly Set<string>[],
  lifecycle?: Lifecycle,
): Promise<{ progressed: boolean; delay: number | null }> {
  if (!handlers.length) return { progressed: false, delay: null };
  const storage = run.env.settings.persistence.progressStorage;
  const now = new Date();
  const selected = selectChangingHandlers(handlers, matchCause(run, run.patch));
  // Their progress so far in this cycle is in the view, not yet in the cached body.
  const initial = State.fromStorage(run.view.get(), storage, handlers.map((h) => h.id), now)
    .withPurpose(run.reason)
    .withHandlers(selected.map((h) => h.id), now);
  const before = selected.filter((h) => initial.get(h.id)?.finished).length;
  const { state } = await executeHandlers(run, selected, initial, containers, {
    rounds: 1,
    lifecycle,
  });
  state.store(run.body, run.patch.raw, storage);
  run.view.changed();
  for (const id of state.states.keys()) {
    for (const container of containers) container.add(id);
  }
  const progressed = selected.filter((h) => state.get(h.id)?.finished).length > before;
  return { progressed, delay: state.done ? null : state.delay(new Date()) ?? 0 };
}

/** A stored retry time further ahead than this is reported: it holds the handler back for long. */
const FAR_DELAY_MS = 24 * 3600 * 1000;

/**
 * Say once (per object and handler, in this process) when stored progress keeps a handler from
 * running for a long time or at all: a retry time far in the future, or records of a creation or
 * an update that say every due handler has finished although the change was never marked handled
 * (no matching diff-base) — this engine and Kopf store the last outcome and the diff-base in one
 * write, so such records come from elsewhere (an object copied with its annotations, a hand edit).
 */
function warnSuppressed(
  run: ChangingRun,
  state: State,
  selected: readonly ChangingHandler[],
  now: Date,
): void {
  const { logger, memory, reason } = run;
  for (const handler of selected) {
    const handlerState = state.get(handler.id);
    const delayed = handlerState?.delayed;
    if (
      handlerState?.origin && !handlerState.finished && delayed &&
      delayed.getTime() - now.getTime() > FAR_DELAY_MS && memory.firstTime(`far:${handler.id}`)
    ) {
      logger.warn(
        `${handler.title} is not due before ${delayed.toISOString()}, as its stored progress ` +
          "says: it will not run until then.",
      );
    }
  }
  if (reason !== "create" && reason !== "update") return;
  const stale = selected.filter((h) => state.get(h.id)?.origin && state.get(h.id)!.finished);
  if (!stale.length || stale.length < selected.length || run.finished.size) return;
  for (const handler of stale) {
    if (!memory.firstTime(`stale:${handler.id}`)) continue;
    logger.warn(
      `${handler.title} is recorded as finished for this ${TITLES[reason]}, but the change ` +
        "was never marked as handled (no matching diff-base): it will not run for it. " +
        "Remove its progress record to run it.",
    );
  }
}

/** Kopf's `process_changing_cause`: returns the delays of unfinished handlers. */
export async function processChanging(run: ChangingRun): Promise<number[]> {
  const { env, body, patch, logger, reason, essences } = run;
  const { registry, settings } = env;
  if (reason === "free") {
    logger.debug("Deletion, but we are done with it, and we do not care.");
    return [];
  }
  if (reason === "noop") {
    logger.debug("Something has changed, but we are not interested (the essence is the same).");
    return [];
  }
  if (!HANDLER_REASONS.includes(reason)) return [];

  const storage = settings.persistence.progressStorage;
  const title = TITLES[reason];
  const Title = capitalizedTitle(reason);
  const now = new Date();
  const owned = registry.changingHandlers(run.resource);
  const ownedIds = owned.map((h) => h.id);
  // Selected before deduplication (Kopf's order): one function registered for both resume
  // and create must run on creation under its create registration.
  const candidates = registry.resourceHandlers(run.resource).filter((h): h is ChangingHandler =>
    h.kind === "changing"
  );
  const selected = selectChangingHandlers(candidates, matchCause(run, patch));
  const selectedIds = selected.map((h) => h.id);
  let state = State.fromStorage(body, storage, ownedIds, now)
    .withPurpose(reason)
    .withHandlers(selectedIds, now);

  const extras = state.extras;
  for (const [extra, counters] of extras) {
    logger.info(
      `${capitalizedTitle(extra)} is superseded by ${title}: ${counters.success} succeeded; ` +
        `${counters.failure} failed; ${counters.running} left to the moment.`,
    );
    state = state.withPurpose(reason, selectedIds);
  }
  if (extras.size) {
    // Only what the new cause does not continue: its own handlers keep their progress.
    const stale = new Map([...state.states].filter(([, s]) => !s.active));
    new State(stale, reason).purge(body, patch.raw, storage, []);
  }

  warnSuppressed(run, state, selected, now);

  logger.debug(`${Title} is in progress: {body}`, { body });
  if (essences.diff.length && essences.old !== null) {
    logger.debug(`${Title} diff: {diff}`, { diff: essences.diff });
  }

  let finished = true;
  let delays: number[] = [];
  if (selected.length) {
    state = (await executeHandlers(run, selected, state, [])).state;
    state.store(body, patch.raw, storage);
    if (state.done) {
      const counts = state.counts;
      logger.info(
        `${Title} is processed: ${counts.success} succeeded; ${counts.failure} failed.`,
      );
      if (run.purgeWhenDone) state.purge(body, patch.raw, storage, ownedIds);
    }
    finished = state.done;
    delays = state.delays(new Date());
  }
  if (finished) {
    if (!deepEqual(essences.old, essences.new)) {
      settings.persistence.diffbaseStorage.store(body, patch.raw, essences.new);
    }
    run.memory.fullyHandledOnce = true;
  }
  return delays;
}
