/**
 * The handling cycle of one object (docs/engine.md): read-your-writes, cause detection on the
 * essence against the stored diff-base, the handlers due for the cause (all at once by
 * default), their progress, results and the diff-base — and one write of it all (plus one to
 * `/status`). Also the `on.event` handlers, which see every raw event outside the cycle.
 *
 * The cycle keeps Kopf's order and log lines (Kopf's `process_resource_causes` and
 * `process_changing_cause`), with three differences that save writes: the finalizer is added in
 * the same write as the first outcome (unless `persistence.finalizerFirst`), delayed handlers
 * are woken up by the queue's timer rather than by a "touch" patch, and superseded causes purge
 * only the handlers that are not part of the new cause (Kopf purges all and loses their delays).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { EventPoster } from "../kube/events.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Resource } from "../kube/resource.ts";
import { sleepUnless } from "../kube/time.ts";
import type { EventType } from "../registry/context.ts";
import type { ChangingMatchCause, Registry } from "../registry/registry.ts";
import { selectChangingHandlers } from "../registry/registry.ts";
import type { ChangingHandler, WatchingHandler } from "../registry/records.ts";
import { Subhandlers, withSubhandlers } from "../registry/subhandlers.ts";
import type { Settings } from "../settings.ts";
import { deepCopy, deepEqual, type RawBody, resolveField } from "../storage/fields.ts";
import { isDeletionBlocked, isDeletionOngoing } from "../storage/finalizers.ts";
import {
  capitalizedTitle,
  computeEssences,
  detectReason,
  type Essences,
  HANDLER_REASONS,
  type Reason,
  TITLES,
} from "./causes.ts";
import { reduceDiff } from "./diff.ts";
import { HandlerChildrenRetry, type Outcome } from "../actions/errors.ts";
import { execute } from "../actions/execution.ts";
import { addFinalizer, removeFinalizer } from "../actions/finalizers.ts";
import { invoke } from "../actions/invocation.ts";
import { changingCauseContext, changingContext, eventContext } from "../actions/contexts.ts";
import { objectLogger } from "../actions/loggers.ts";
import type { BackgroundEngine, EngineVerdict } from "./contracts.ts";
import type { Memories, ObjectMemory } from "./memories.ts";
import { applyMergePatch, mergePatches, Patch, type PatchFn } from "../actions/patch.ts";
import { State } from "./progression.ts";
import { deliverResults, planWrite, writeOutcome } from "../actions/application.ts";

/** What the cycle works with (one per operator). */
export interface CycleEnvironment {
  /** The API client (only patch and get are used). */
  readonly client: Pick<KubeClient, "patch" | "get">;
  /** The handlers. */
  readonly registry: Registry;
  /** The settings. */
  readonly settings: Settings;
  /** Per-object memories. */
  readonly memories: Memories;
  /** Where object loggers post Events when `settings.posting.loggers` is on. */
  readonly poster?: Pick<EventPoster, "event">;
  /** The operator's indexes, by id. */
  readonly indices?: () => Readonly<Record<string, unknown>>;
  /** Background engines taking part in every cycle. */
  readonly engines?: readonly Pick<BackgroundEngine, "cycle">[];
}

/** One cycle's input. */
export interface CycleInput {
  /** The operator's key of the object (resource + namespace + name). */
  readonly key: string;
  /** The resource. */
  readonly resource: Resource;
  /** The latest body from the cache (`undefined`: gone). */
  readonly body: RawBody | undefined;
  /** Aborted when the operator stops waiting for this cycle. */
  readonly signal: AbortSignal;
}

/** What the queue should do next with the object. */
export interface CycleResult {
  /** Run the object again after so many seconds (delayed handlers, consistency wait). */
  readonly requeueAfter?: number;
  /** Requests that changed the object in this cycle. */
  readonly writes?: number;
}

/** The logger of an object, posting to Events if the settings say so. */
export function loggerFor(env: CycleEnvironment, body: RawBody): Logger {
  return objectLogger(body, { posting: { settings: env.settings.posting, poster: env.poster } });
}

/** Everything one run of the changing handlers shares. */
interface ChangingRun {
  readonly env: CycleEnvironment;
  readonly resource: Resource;
  readonly body: RawBody;
  /** The body handlers see: a copy of the cached one, made when first needed. */
  readonly view: () => RawBody;
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

function handlerReason(reason: Reason): "create" | "update" | "delete" | "resume" {
  return (HANDLER_REASONS.includes(reason) ? reason : "update") as
    | "create"
    | "update"
    | "delete"
    | "resume";
}

function matchCause(run: Omit<ChangingRun, "patch" | "signal">, patch: Patch): ChangingMatchCause {
  return {
    resource: run.resource,
    body: run.body,
    reason: run.reason,
    initial: run.initial,
    essences: { old: run.essences.old, new: run.essences.new },
    context: () =>
      changingCauseContext({
        resource: run.resource,
        body: run.view(),
        patch,
        logger: run.logger,
        memory: run.memory,
        signal: new AbortController().signal,
        indices: run.env.indices?.(),
        reason: handlerReason(run.reason),
        diff: run.essences.diff,
        old: run.essences.old ?? undefined,
        new: run.essences.new,
      }),
  };
}

/**
 * Run the planned handlers of a cause once each (Kopf's `execute_handlers_once`): the awakened
 * ones, as many and in the order the lifecycle picks. When the operator stops, the handlers not
 * started yet are skipped and the outcomes so far are returned.
 */
async function executeHandlers(
  run: ChangingRun,
  handlers: readonly ChangingHandler[],
  state: State,
  containers: readonly Set<string>[],
): Promise<Map<string, Outcome>> {
  const now = new Date();
  const outcomes = new Map<string, Outcome>();
  for (const handler of handlers) {
    const finished = run.finished.get(handler.id);
    if (finished && !state.get(handler.id)?.finished) {
      // Its outcome is not (or no longer) in the stored progress, but it is this cause's.
      run.logger.debug(`${handler.title} has already finished for this cause: not called again.`);
      outcomes.set(handler.id, finished);
    }
  }
  const todo = handlers.filter((h) => !outcomes.has(h.id) && state.get(h.id)?.isAwakened(now));
  const plan = run.env.settings.execution.lifecycle(todo, {
    retries: (id) => state.get(id)?.retries ?? 0,
  });
  if (plan.length) run.memory.handlingStarted = true;
  for (const handler of plan) {
    if (run.signal.aborted) break;
    try {
      outcomes.set(handler.id, await executeChanging(run, handler, state, containers));
    } catch (error) {
      if (run.signal.aborted) break;
      throw error;
    }
  }
  run.memory.rememberFinished(run.reason, run.essences.old, outcomes);
  return outcomes;
}

async function executeChanging(
  run: ChangingRun,
  handler: ChangingHandler,
  state: State,
  containers: readonly Set<string>[],
): Promise<Outcome> {
  const handlerState = state.get(handler.id)!;
  const subrefs = new Set<string>();
  const { essences } = run;
  const scoped = handler.field !== null;
  const call = async (remaining: number | undefined): Promise<unknown> => {
    const collector = new Subhandlers(handler);
    const controller = new AbortController();
    const now = new Date();
    const context = changingContext({
      resource: run.resource,
      body: run.view(),
      patch: run.patch,
      logger: run.logger,
      memory: run.memory,
      signal: AbortSignal.any([run.signal, controller.signal]),
      indices: run.env.indices?.(),
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
      body: run.view(),
      timeout: remaining,
      signal: run.signal,
      controller,
      around: (fn) => withSubhandlers(collector, fn),
    });
    // Sub-handlers run after their parent returns, as if at its end (Kopf's implicit execute).
    await executeSubhandlers(run, collector.handlers, [...containers, subrefs]);
    return result;
  };
  return await execute(call, {
    handler,
    state: handlerState,
    defaultErrors: "temporary",
    defaultBackoff: run.env.settings.execution.defaultBackoff,
    storedResult: true,
    logger: run.logger,
    signal: run.signal,
    subrefs,
  });
}

/**
 * Run the sub-handlers registered by one invocation of a parent; their progress goes to the
 * same patch. Unfinished ones make the parent retry (after their earliest delay).
 */
async function executeSubhandlers(
  run: ChangingRun,
  handlers: readonly ChangingHandler[],
  containers: readonly Set<string>[],
): Promise<void> {
  if (!handlers.length) return;
  const storage = run.env.settings.persistence.progressStorage;
  const now = new Date();
  const selected = selectChangingHandlers(handlers, matchCause(run, run.patch));
  let state = State.fromStorage(run.body, storage, handlers.map((h) => h.id), now)
    .withPurpose(run.reason)
    .withHandlers(selected.map((h) => h.id), now);
  const outcomes = await executeHandlers(run, selected, state, containers);
  state = state.withOutcomes(outcomes, new Date());
  state.store(run.body, run.patch.raw, storage);
  deliverResults(outcomes, run.patch.raw);
  for (const id of state.states.keys()) {
    for (const container of containers) container.add(id);
  }
  if (!state.done) {
    throw new HandlerChildrenRetry("Sub-handlers are not finished.", {
      delay: state.delay(new Date()),
    });
  }
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
async function processChanging(run: ChangingRun): Promise<number[]> {
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
    const outcomes = await executeHandlers(run, selected, state, []);
    state = state.withOutcomes(outcomes, new Date());
    state.store(body, patch.raw, storage);
    deliverResults(outcomes, patch.raw);
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

/**
 * One handling cycle of one object. Returns when to run it again (delayed handlers, or the
 * remaining wait for our own write to come back through the watch).
 */
export async function processObject(
  env: CycleEnvironment,
  input: CycleInput,
): Promise<CycleResult> {
  const { key, resource, body, signal } = input;
  if (!body) return {};
  const { registry, settings } = env;
  const persistence = settings.persistence;
  const finalizer = persistence.finalizer;
  const memory = env.memories.recall(key, body.metadata?.uid);

  // Read-your-writes: never act on a state older than our own last write.
  const wait = memory.consistencyWait(Date.now());
  if (wait > 0) return { requeueAfter: wait / 1000 };

  const logger = loggerFor(env, body);
  const patch = new Patch();
  const fns: PatchFn[] = [];
  // Most cycles call no handler (e.g. our own writes coming back): no copy for them.
  let copy: RawBody | undefined;
  const view = () => copy ??= deepCopy(body);

  let essences: Essences | null = null;
  let reason: Reason | null = null;
  let initial = false;
  if (registry.hasHandlers(resource, "changing")) {
    essences = computeEssences({
      body,
      diffbaseStorage: persistence.diffbaseStorage,
      progressStorage: persistence.progressStorage,
      extraFields: registry.extraFields(resource),
    });
    const detected = detectReason({
      eventType: null,
      body,
      finalizer,
      old: essences.old,
      diff: essences.diff,
      initial: memory.noticedByListing && !memory.fullyHandledOnce,
    });
    reason = detected.reason;
    initial = detected.initial;
  }

  const verdicts: EngineVerdict[] = [];
  for (const engine of env.engines ?? []) {
    if (!engine.cycle) continue;
    verdicts.push(
      await engine.cycle({
        key,
        resource,
        body,
        changed: (essences?.diff.length ?? 0) > 0,
        memory,
        logger,
      }),
    );
  }
  const excluded = new Set(verdicts.flatMap((v) => [...(v.excluded ?? [])]));
  const delays = verdicts.flatMap((v) => [...(v.delays ?? [])]);

  // Handlers that finished for this very cause in this process are never called again.
  const finished = memory.finishedFor(reason, essences?.old ?? null);
  const base = {
    env,
    resource,
    body,
    view,
    logger,
    memory,
    reason: reason ?? "noop",
    initial,
    finished,
    purgeWhenDone: !(reason === "delete" && delays.length > 0),
  };
  const cause = matchCause({ ...base, essences: essences ?? emptyEssences() }, patch);
  // Objects that match no changing handler are handled in stealth: no state, no logs.
  let changing = reason !== null && registry.prematchesChanging(cause);

  const ongoing = isDeletionOngoing(body);
  const blocked = isDeletionBlocked(body, finalizer);
  const mustBlock = registry.requiresFinalizer(cause, excluded);
  let finalizerRemoved = false;
  if (mustBlock && !blocked && !ongoing) {
    logger.debug("Adding the finalizer, thus preventing the actual deletion.");
    fns.push(addFinalizer(finalizer));
    if (persistence.finalizerFirst) changing = false;
  }
  if (!mustBlock && blocked) {
    logger.debug("Removing the finalizer, as there are no handlers requiring it.");
    fns.push(removeFinalizer(finalizer));
    memory.released = true;
    finalizerRemoved = true;
    changing = false;
  }

  if (changing && essences) {
    const run: ChangingRun = { ...base, essences, patch, signal };
    delays.push(...await processChanging(run));
  }

  if (ongoing && blocked && !finalizerRemoved && !delays.length) {
    logger.debug("Removing the finalizer, thus allowing the actual deletion.");
    fns.push(removeFinalizer(finalizer));
    memory.released = true;
  }

  let writes = 0;
  fns.push(...patch.fns);
  const merge = patch.toMergePatch();
  if (Object.keys(merge).length || fns.length) {
    // Kopf's touch-dummy is never written here; one left by Kopf goes with the next real write.
    persistence.progressStorage.touch(body, merge, null);
    memory.expectWrite();
    const written = await writeOutcome({
      client: env.client,
      resource,
      body,
      patch: merge,
      fns,
      logger,
      // Outcomes of handlers that did run are written even when the operator is stopping.
      signal: signal.aborted ? AbortSignal.timeout(10_000) : undefined,
    });
    writes = written.writes;
    if (written.gone) return { writes };
    memory.await(
      written.object?.metadata?.resourceVersion,
      persistence.consistencyTimeout * 1000,
      Date.now(),
    );
  }

  if (delays.length) {
    const delay = Math.min(...delays);
    if (!writes && delay > 0) {
      logger.debug(`Sleeping for ${delay} seconds for the delayed handlers.`);
    }
    return { requeueAfter: delay, writes };
  }
  if (changing) logger.debug("Handling cycle is finished, waiting for new changes.");
  return { writes };
}

/** An object that is gone for good, as {@linkcode processOrphan} takes it. */
export interface OrphanInput {
  /** The operator's key of the object. */
  readonly key: string;
  /** The resource. */
  readonly resource: Resource;
  /** The object's last known state (from its DELETED event). */
  readonly body: RawBody;
  /** The object's memory (forgotten by the operator already; its memo lives on here). */
  readonly memory: ObjectMemory;
  /** Aborted when the operator stops. */
  readonly signal: AbortSignal;
}

/**
 * Whether an object that is gone was deleted without our consent while it needed its deletion
 * handlers: its last state still carries our finalizer (the API server deleted it anyway — a
 * deletion that raced with the write adding the finalizer — or someone removed the finalizer),
 * or its handlers had started here before the finalizer was ever in place
 * (`persistence.finalizerFirst = false`) and we never released it.
 */
export function isOrphaned(env: CycleEnvironment, input: Omit<OrphanInput, "signal">): boolean {
  const { body, memory, resource } = input;
  const needs = env.registry.changingHandlers(resource).some((h) => h.requiresFinalizer);
  if (!needs || memory.released) return false;
  return isDeletionBlocked(body, env.settings.persistence.finalizer) || memory.handlingStarted;
}

/**
 * Run the deletion handlers of an object that is already gone (see {@linkcode isOrphaned}), on
 * its last known state. Nothing can be written to it any more: its handlers' progress is kept
 * here in memory, through their retries, until they are done or the operator stops.
 */
export async function processOrphan(env: CycleEnvironment, input: OrphanInput): Promise<void> {
  const { resource, memory, signal } = input;
  const persistence = env.settings.persistence;
  // The object as it would be had the finalizer held: being deleted, with our finalizer.
  const body = deepCopy(input.body);
  const metadata = body.metadata ??= {};
  metadata.deletionTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, "Z");
  if (!isDeletionBlocked(body, persistence.finalizer)) {
    metadata.finalizers = [...(metadata.finalizers ?? []), persistence.finalizer];
  }
  const logger = loggerFor(env, body);
  logger.warn(
    "The object is gone without waiting for our finalizer (deleted while it was being added, " +
      "or it was removed by someone else): its deletion handlers run on its last known state, " +
      "with their progress in memory only.",
  );
  while (!signal.aborted) {
    const essences = computeEssences({
      body,
      diffbaseStorage: persistence.diffbaseStorage,
      progressStorage: persistence.progressStorage,
      extraFields: env.registry.extraFields(resource),
    });
    const patch = new Patch();
    const delays = await processChanging({
      env,
      resource,
      body,
      view: () => deepCopy(body),
      patch,
      logger,
      memory,
      signal,
      reason: "delete",
      initial: false,
      essences,
      finished: memory.finishedFor("delete", essences.old),
      purgeWhenDone: false,
    });
    // The progress goes into the local copy, which stands in for the object.
    applyMergePatch(body, patch.toMergePatch());
    if (!delays.length) return;
    await sleepUnless(Math.min(...delays), signal);
  }
}

function emptyEssences(): Essences {
  return { old: null, new: {}, diff: [], degraded: false };
}

/** One raw watch event for the `on.event` handlers. */
export interface EventInput {
  /** The operator's key of the object. */
  readonly key: string;
  /** The resource. */
  readonly resource: Resource;
  /** The event type (`null` for the initial listing). */
  readonly type: EventType;
  /** The object as the event brought it. */
  readonly object: RawBody;
  /** The latest cached state (results are compared with it), if the object still exists. */
  readonly latest?: RawBody;
  /** Aborted when the operator stops. */
  readonly signal: AbortSignal;
}

/**
 * Run the `on.event` handlers for one raw event (Kopf's `process_watching_cause`): no retries,
 * errors logged and ignored; their results (and `patch`) are written only if they change the
 * object.
 */
export async function processEvent(env: CycleEnvironment, input: EventInput): Promise<number> {
  const { registry } = env;
  const { resource, object, signal } = input;
  if (!registry.hasHandlers(resource, "watching")) return 0;
  const memory = env.memories.get(input.key) ??
    env.memories.recall(input.key, object.metadata?.uid);
  const logger = loggerFor(env, object);
  const patch = new Patch();
  const view = deepCopy(object);
  const build = (handler?: WatchingHandler, handlerSignal?: AbortSignal) =>
    eventContext({
      resource,
      body: view,
      patch,
      logger,
      memory,
      signal: handlerSignal ?? signal,
      indices: env.indices?.(),
      param: handler?.param,
      type: input.type,
      object: view,
    });
  const handlers = registry.selectWatching({ resource, body: object, context: () => build() });
  const outcomes = new Map<string, Outcome>();
  const started = new Date();
  for (const handler of handlers) {
    if (signal.aborted) break;
    try {
      const outcome = await execute(async () => {
        const controller = new AbortController();
        const context = build(handler, AbortSignal.any([signal, controller.signal]));
        return await invoke(handler.fn, context as never, {
          title: handler.title,
          logger,
          body: view,
          signal,
          controller,
        });
      }, {
        handler,
        state: { retries: 0, started },
        defaultErrors: "ignored",
        defaultBackoff: env.settings.execution.defaultBackoff,
        storedResult: true,
        logger,
        signal,
      });
      outcomes.set(handler.id, outcome);
    } catch (error) {
      if (signal.aborted) break;
      throw error;
    }
  }
  if (input.type === "DELETED" || !input.latest) return 0;
  deliverResults(outcomes, patch.raw);
  // Only what would change the object is written (as for daemons and timers).
  const plan = planWrite(resource, [input.latest], patch);
  if (!plan.body && !plan.status && !plan.json.length) return 0;
  const written = await writeOutcome({
    client: env.client,
    resource,
    body: input.latest,
    patch: mergePatches(plan.body, plan.status),
    fns: plan.json.length ? patch.fns : [],
    logger,
  });
  return written.writes;
}
