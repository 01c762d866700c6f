/**
 * The option rules of registrations, Kopf's plus our stricter ones: invalid combinations fail at
 * registration with a one-line `TypeError` naming the handler and the option.
 *
 * @module
 */

import type { ErrorsMode } from "./records.ts";
import {
  parseSelector,
  type Selector,
  type SelectorArg,
  type SelectorSpec,
} from "../kube/selector.ts";
import { type FieldPath, isObject, parseField } from "../storage/fields.ts";
import { isToken } from "./filters.ts";
import type { ChangingHandler } from "./records.ts";

const SELECTOR_KEYS = ["group", "version", "kind", "plural", "singular", "shortcut", "category"];
const ID_KEYS = ["id", "param"];
const RETRY_KEYS = ["errors", "timeout", "attemptTimeout", "retries", "backoff"];
const FILTER_KEYS = ["labels", "annotations", "when", "field", "value"];
const CHANGE_KEYS = ["old", "new"];
const SPAWNING_KEYS = ["initialDelay", "requiresFinalizer"];
const CANCELLATION_KEYS = ["cancellationBackoff", "cancellationTimeout", "cancellationPolling"];
const ERRORS_MODES: readonly ErrorsMode[] = ["temporary", "permanent", "ignored"];
const WEBHOOK_KEYS = [
  "operation",
  "operations",
  "subresource",
  "persistent",
  "sideEffects",
  "ignoreFailures",
  "timeout",
];
const OPERATIONS = ["CREATE", "UPDATE", "DELETE", "CONNECT"];

type Options = Record<string, unknown>;

/** A registration call to check: `source` names it in messages (`kopf.on.create(create_fn)`). */
export interface Registration {
  /** For messages: the API and the function's name, or where an anonymous one was registered. */
  source: string;
  /** What was given as the handler. */
  fn: unknown;
  /** The options object (`{}` when none was given). */
  options: Options;
}

type Rule = {
  keys: string[];
  /** Checked before the keys: options that are refused with a reason of their own. */
  refuse?: (source: string, options: Options) => void;
  check?: (source: string, options: Options, field: FieldPath | null) => void;
};

const WEBHOOK_RULE: Rule = {
  keys: [...FILTER_KEYS, ...WEBHOOK_KEYS],
  refuse: (source, options) => {
    const retrying = ["errors", "retries", "backoff", "attemptTimeout"].filter((k) => k in options);
    if (retrying.length) {
      fail(
        source,
        `${retrying.join("/")} cannot be given: admission handlers are not retried ` +
          "(a failure answers the request; see ignoreFailures)",
      );
    }
  },
  check: (source, options) => {
    const { operation, operations, subresource, timeout } = options;
    const ops = `one of ${OPERATIONS.map((o) => `"${o}"`).join(", ")}`;
    if (operation !== undefined && !OPERATIONS.includes(operation as string)) {
      fail(source, `operation must be ${ops}, got ${show(operation)}`);
    }
    if (operations !== undefined) {
      if (!Array.isArray(operations) || operations.length === 0) {
        fail(source, `operations must be a non-empty array of ${ops}, got ${show(operations)}`);
      }
      for (const op of operations) {
        if (!OPERATIONS.includes(op)) fail(source, `operations must be ${ops}, got ${show(op)}`);
      }
    }
    if (subresource !== undefined && (typeof subresource !== "string" || !subresource)) {
      fail(source, `subresource must be a non-empty string or "*", got ${show(subresource)}`);
    }
    for (const key of ["persistent", "sideEffects", "ignoreFailures"]) {
      checkBoolean(source, key, options[key]);
    }
    if (
      timeout !== undefined &&
      (!Number.isInteger(timeout) || (timeout as number) < 1 || (timeout as number) > 30)
    ) {
      fail(
        source,
        `timeout must be whole seconds from 1 to 30 (timeoutSeconds), got ${show(timeout)}`,
      );
    }
  },
};

/** Per resource registration: its own options and its own rules (after the common ones). */
const RULES = {
  resume: {
    keys: [...RETRY_KEYS, ...FILTER_KEYS, "deleted"],
    check: (source, options) => checkBoolean(source, "deleted", options.deleted),
  },
  create: { keys: [...RETRY_KEYS, ...FILTER_KEYS] },
  update: { keys: [...RETRY_KEYS, ...FILTER_KEYS, ...CHANGE_KEYS] },
  delete: {
    keys: [...RETRY_KEYS, ...FILTER_KEYS, "optional"],
    check: (source, options) => checkBoolean(source, "optional", options.optional),
  },
  field: {
    keys: [...RETRY_KEYS, ...FILTER_KEYS, ...CHANGE_KEYS],
    check: (source, _options, field) => {
      if (field === null) fail(source, "field is required for on.field handlers");
    },
  },
  event: { keys: FILTER_KEYS },
  index: { keys: [...RETRY_KEYS, ...FILTER_KEYS] },
  validate: WEBHOOK_RULE,
  mutate: WEBHOOK_RULE,
  daemon: {
    keys: [...RETRY_KEYS, ...FILTER_KEYS, ...SPAWNING_KEYS, ...CANCELLATION_KEYS],
    check: (source, options) => {
      checkSpawning(source, options);
      for (const key of CANCELLATION_KEYS) {
        checkSeconds(source, key, options[key], key === "cancellationPolling");
      }
    },
  },
  timer: {
    keys: [...RETRY_KEYS, ...FILTER_KEYS, ...SPAWNING_KEYS, "interval", "sharp", "idle"],
    check: (source, options) => {
      checkSpawning(source, options);
      checkSeconds(source, "interval", options.interval, true);
      checkSeconds(source, "idle", options.idle);
      checkBoolean(source, "sharp", options.sharp);
      if (options.sharp && options.interval === undefined) {
        fail(source, "sharp needs an interval to align to");
      }
    },
  },
} satisfies Record<string, Rule>;

/**
 * The registrations of resource handlers: `kopf.on.*` but activities, daemon, timer, index,
 * and the admission handlers `validate` and `mutate`.
 */
export type ResourceApi = keyof typeof RULES;

/** A registration error: the message names the registration (`source`) and the option. */
function fail(source: string, message: string): never {
  throw new TypeError(`${source}: ${message}`);
}

/**
 * Checks a resource registration's handler, options and selector (positional arguments, or
 * options such as `kind`); returns its `field` and its selector, parsed.
 */
export function checkResourceOptions(
  api: ResourceApi,
  { source, fn, options }: Registration,
  positional: SelectorArg[],
): { field: FieldPath | null; selector: Selector } {
  const rules: Rule = RULES[api];
  rules.refuse?.(source, options);
  checkKeys(source, options, [...SELECTOR_KEYS, ...ID_KEYS, ...rules.keys, "registry"]);
  checkCommon(source, fn, options);
  if (rules !== WEBHOOK_RULE) checkRetry(source, options);
  const field = checkFilters(source, options);
  rules.check?.(source, options, field);
  const keywords: SelectorSpec = {};
  for (const key of SELECTOR_KEYS) {
    if (options[key] !== undefined) (keywords as Options)[key] = options[key];
  }
  try {
    const selector = Object.keys(keywords).length
      ? parseSelector(...positional, keywords)
      : parseSelector(...positional);
    return { field, selector };
  } catch (error) {
    return fail(source, error instanceof Error ? error.message : String(error));
  }
}

/** Checks an activity registration (`hasSelector`: positional selector arguments were given). */
export function checkActivityOptions({ source, fn, options }: Registration, hasSelector: boolean) {
  if (hasSelector) fail(source, "activities take no resource selector");
  checkKeys(source, options, [...ID_KEYS, ...RETRY_KEYS, "registry"]);
  checkCommon(source, fn, options);
  checkRetry(source, options);
}

/**
 * Checks a sub-handler registration under `parent` (old/new filters only under update and field
 * handlers); returns its `field`, parsed.
 */
export function checkSubhandlerOptions(
  parent: ChangingHandler,
  { source, fn, options }: Registration,
): FieldPath | null {
  checkKeys(source, options, [...ID_KEYS, ...RETRY_KEYS, ...FILTER_KEYS, ...CHANGE_KEYS]);
  checkCommon(source, fn, options);
  checkRetry(source, options);
  const field = checkFilters(source, options);
  const isUpdateLike = parent.reason === "update" || (parent.reason === null && !parent.initial);
  if ((options.old !== undefined || options.new !== undefined) && !isUpdateLike) {
    fail(source, "old/new filters can only be used in sub-handlers of update and field handlers");
  }
  return field;
}

function checkKeys(source: string, options: Options, allowed: string[]): void {
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const camel = key.replace(/_([a-z])/g, (_m, ch: string) => ch.toUpperCase());
    const hint = camel !== key && allowed.includes(camel)
      ? ` (did you mean "${camel}"?)`
      : `; known options: ${allowed.join(", ")}`;
    fail(source, `unknown option "${key}"${hint}`);
  }
}

function checkSeconds(source: string, name: string, value: unknown, positive = false): void {
  if (value === undefined) return;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 0 || (positive && value === 0)
  ) {
    const sign = positive ? "positive" : "non-negative";
    fail(source, `${name} must be a ${sign} number of seconds, got ${show(value)}`);
  }
}

function checkBoolean(source: string, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") {
    fail(source, `${name} must be true or false, got ${show(value)}`);
  }
}

function show(value: unknown): string {
  if (typeof value === "function") return `<function ${value.name || "anonymous"}>`;
  if (typeof value === "symbol") return value.description ?? "symbol";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function checkRetry(source: string, options: Options): void {
  const { errors, timeout, attemptTimeout, retries, backoff } = options;
  if (errors !== undefined && !ERRORS_MODES.includes(errors as ErrorsMode)) {
    const modes = ERRORS_MODES.map((m) => `"${m}"`).join(", ");
    fail(source, `errors must be one of ${modes}, got ${show(errors)}`);
  }
  checkSeconds(source, "timeout", timeout);
  checkSeconds(source, "attemptTimeout", attemptTimeout);
  checkSeconds(source, "backoff", backoff);
  if (retries !== undefined && (!Number.isInteger(retries) || (retries as number) < 1)) {
    // Kopf accepts 0, which fails the handler before its first attempt; reject it loudly.
    fail(
      source,
      `retries must be a positive integer (the number of attempts), got ${show(retries)}`,
    );
  }
}

function checkMetaFilter(source: string, name: string, filter: unknown): void {
  if (filter === undefined) return;
  if (!isObject(filter)) {
    fail(source, `${name} must be an object of key → value, got ${show(filter)}`);
  }
  for (const [key, value] of Object.entries(filter)) {
    if (value === null || value === undefined) {
      fail(source, `${name}["${key}"] is ${value}; use kopf.PRESENT or kopf.ABSENT`);
    }
    if (typeof value !== "string" && typeof value !== "function" && !isToken(value)) {
      const allowed = "a string, kopf.PRESENT, kopf.ABSENT or a function";
      fail(source, `${name}["${key}"] must be ${allowed}, got ${show(value)}`);
    }
  }
}

function checkField(source: string, field: unknown): FieldPath | null {
  if (field === undefined) return null;
  const valid = (typeof field === "string" && field !== "") ||
    (Array.isArray(field) && field.length > 0 && field.every((k) => typeof k === "string" && k));
  if (!valid) {
    fail(source, `field must be a dotted path or a non-empty array of keys, got ${show(field)}`);
  }
  const path = parseField(field as string | string[]);
  if (path.some((k) => k === "")) fail(source, `field ${show(field)} has an empty part`);
  return path;
}

function checkValueFilters(source: string, options: Options, field: FieldPath | null): void {
  const given = ["value", "old", "new"].filter((k) => options[k] !== undefined);
  if (given.length && field === null) {
    fail(source, `${given.join("/")} filters need a field (give field: "spec.something")`);
  }
  if (options.value !== undefined && (options.old !== undefined || options.new !== undefined)) {
    fail(source, "either value or old/new can be given, not both");
  }
}

function checkCommon(source: string, fn: unknown, options: Options): void {
  if (typeof fn !== "function") fail(source, `the handler must be a function, got ${show(fn)}`);
  if (options.id !== undefined && (typeof options.id !== "string" || options.id === "")) {
    fail(source, `id must be a non-empty string, got ${show(options.id)}`);
  }
  if (options.registry !== undefined) {
    const registry = options.registry as { append?: unknown } | null;
    if (typeof registry?.append !== "function") fail(source, "registry must be a kopf.Registry");
  }
}

function checkFilters(source: string, options: Options): FieldPath | null {
  checkMetaFilter(source, "labels", options.labels);
  checkMetaFilter(source, "annotations", options.annotations);
  if (options.when !== undefined && typeof options.when !== "function") {
    fail(source, `when must be a function, got ${show(options.when)}`);
  }
  const field = checkField(source, options.field);
  checkValueFilters(source, options, field);
  return field;
}

function checkSpawning(source: string, options: Options): void {
  const { initialDelay } = options;
  if (typeof initialDelay !== "function") checkSeconds(source, "initialDelay", initialDelay);
  checkBoolean(source, "requiresFinalizer", options.requiresFinalizer);
}
