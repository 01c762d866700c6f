/**
 * Kopf's resource selector grammar: what a handler names as its resource, and how that name is
 * matched against the resources the API server actually serves.
 *
 * Positional forms (at most three), exactly as in Kopf:
 *
 * | arguments | meaning |
 * | --- | --- |
 * | `"kopfexamples"`, `"KopfExample"`, `"kopfexample"`, `"kex"` | any name (plural, kind, singular, short name) in any group, preferred version |
 * | `"kopfexamples.kopf.dev"` | name + group (kubectl style) |
 * | `"kopfexamples.v1.kopf.dev"` | name + version + group (version looks like `v1`, `v2beta3`, …) |
 * | `"kopf.dev", "kopfexamples"` | group + name, preferred version |
 * | `"kopf.dev/v1", "kopfexamples"` or `"kopf.dev", "v1", "kopfexamples"` | exact |
 * | `"v1", "pods"` or `"", "v1", "pods"` | the core group |
 * | `EVERYTHING` (optionally after group / version) | all resources except events |
 * | `(resource) => boolean` | a predicate (any version; events excluded) |
 *
 * plus an object `{ group, version, kind, plural, singular, shortcut, category }`, alone or after
 * the positional ones (like Kopf's keyword arguments). Exactly one name must remain.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Resource, resourceKey } from "./resource.ts";

const logger = getLogger(["kopf", "discovery"]);

/**
 * Selects every resource the cluster serves — except core `v1/events` and
 * `events.k8s.io/events`, which the operator itself produces (serving them would loop).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.event(kopf.EVERYTHING, function anyEvent({ resource, name }) {
 *   console.log(resource.plural, name);
 * });
 * kopf.on.event("kopf.dev", kopf.EVERYTHING, function kopfEvent({ resource, name }) {
 *   console.log(resource.plural, name);
 * });
 * ```
 */
export const EVERYTHING: unique symbol = Symbol.for("kopf.EVERYTHING");

/**
 * A predicate selecting resources programmatically.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * // Every resource of our group that has a status subresource.
 * const withStatus: kopf.ResourcePredicate = (resource) =>
 *   resource.group === "example.com" && resource.subresources.includes("status");
 * kopf.on.event(withStatus, function anyEvent({ resource, name }) {
 *   console.log(resource.plural, name);
 * });
 * ```
 */
export type ResourcePredicate = (resource: Resource) => boolean;

/**
 * The keyword form of a selector, like Kopf's keyword arguments.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const deployments: kopf.SelectorSpec = { group: "apps", kind: "Deployment" };
 * kopf.on.update({ ...deployments, field: "spec.replicas" }, function scaled({ old, new: value }) {
 *   console.log(`scaled from ${old} to ${value}`);
 * });
 * ```
 */
export interface SelectorSpec {
  /** API group (`""` for core). */
  group?: string;
  /** API version; without it only preferred versions match. */
  version?: string;
  /** Match by kind, e.g. `"KopfExample"`. */
  kind?: string;
  /** Match by plural, e.g. `"kopfexamples"`. */
  plural?: string;
  /** Match by singular, e.g. `"kopfexample"`. */
  singular?: string;
  /** Match by one of the short names, e.g. `"kex"`. */
  shortcut?: string;
  /** Match by category, e.g. `"all"`. */
  category?: string;
}

/**
 * One positional selector argument.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const selectors: kopf.SelectorArg[] = [
 *   "kopfexamples", // any name: plural, kind, singular or short name
 *   "kopfexamples.v1.kopf.dev", // kubectl style
 *   (resource) => resource.group === "kopf.dev", // a predicate
 * ];
 * for (const selector of selectors) kopf.on.event(selector, function anyEvent() {});
 * ```
 */
export type SelectorArg = string | typeof EVERYTHING | ResourcePredicate;

// "name.v1", "name.v1beta2.group.tld": a conventional version right after the first dot.
const GROUP_VERSION_PATTERN = /^[^.]*\.v\d+(?:(?:alpha|beta)\d+)?(?:\..*)?$/;

/**
 * A parsed resource selector: what a handler wants, before discovery tells what exists.
 *
 * @example
 * ```ts
 * import { parseSelector } from "./selector.ts";
 * const selector = parseSelector("kopfexamples.kopf.dev");
 * selector.group; // "kopf.dev"
 * selector.anyName; // "kopfexamples"
 * ```
 */
export class Selector {
  /** API group, or `undefined` for any group. */
  readonly group?: string;
  /** API version, or `undefined` for the preferred version. */
  readonly version?: string;
  /** Matched exactly against the kind. */
  readonly kind?: string;
  /** Matched exactly against the plural. */
  readonly plural?: string;
  /** Matched exactly against the singular. */
  readonly singular?: string;
  /** Matched against the short names. */
  readonly shortcut?: string;
  /** Matched against the categories. */
  readonly category?: string;
  /** A name matched against kind, plural, singular and short names — or {@linkcode EVERYTHING}. */
  readonly anyName?: string | typeof EVERYTHING;
  /** The predicate, for predicate selectors. */
  readonly fn?: ResourcePredicate;

  /** Use {@linkcode parseSelector}; this constructor only validates an already split spec. */
  constructor(
    spec: SelectorSpec & { anyName?: string | typeof EVERYTHING; fn?: ResourcePredicate },
  ) {
    this.group = spec.group;
    this.version = spec.version;
    this.kind = spec.kind;
    this.plural = spec.plural;
    this.singular = spec.singular;
    this.shortcut = spec.shortcut;
    this.category = spec.category;
    this.anyName = spec.anyName;
    this.fn = spec.fn;

    const names: [string, unknown][] = [
      ["kind", this.kind],
      ["plural", this.plural],
      ["singular", this.singular],
      ["shortcut", this.shortcut],
      ["category", this.category],
      ["name", this.anyName],
      ["predicate", this.fn],
    ];
    const given = names.filter(([, value]) => value !== undefined);
    // Empty names would match every built-in resource (their singular is often empty).
    const empty = given.filter(([, value]) => value === "");
    if (empty.length) {
      throw new TypeError(
        `Resource selector: ${empty.map(([k]) => k).join(", ")} must not be an empty string`,
      );
    }
    if (given.length > 1) {
      throw new TypeError(
        `Ambiguous resource selector: ${
          given.map(([k, v]) => `${k}=${describeValue(v)}`).join(", ")
        } — give exactly one name`,
      );
    }
    if (given.length < 1) {
      throw new TypeError(
        "Resource selector without a name: give a plural, kind, singular, short name, " +
          "category, EVERYTHING, or a predicate",
      );
    }
  }

  /**
   * Whether the selector names one specific resource (a name, not a category, EVERYTHING or a
   * predicate). Only specific selectors are checked for ambiguity.
   */
  get isSpecific(): boolean {
    return this.kind !== undefined || this.shortcut !== undefined ||
      this.plural !== undefined || this.singular !== undefined ||
      (this.anyName !== undefined && this.anyName !== EVERYTHING);
  }

  /** Whether one resource matches (Kopf's `Selector.check`). */
  check(resource: Resource): boolean {
    return (
      (this.group === undefined || this.group === resource.group) &&
      ((this.version === undefined && (resource.preferred || this.fn !== undefined)) ||
        (this.version !== undefined && this.version === resource.version)) &&
      (this.kind === undefined || this.kind === resource.kind) &&
      (this.plural === undefined || this.plural === resource.plural) &&
      (this.singular === undefined || this.singular === resource.singular) &&
      (this.category === undefined || resource.categories.includes(this.category)) &&
      (this.shortcut === undefined || resource.shortcuts.includes(this.shortcut)) &&
      (this.anyName === undefined ||
        this.anyName === resource.kind ||
        this.anyName === resource.plural ||
        this.anyName === resource.singular ||
        (typeof this.anyName === "string" && resource.shortcuts.includes(this.anyName)) ||
        (this.anyName === EVERYTHING && !isEvents(resource))) &&
      (this.fn === undefined || (this.fn(resource) && !isEvents(resource)))
    );
  }

  /**
   * All matching resources, preferring the core group for specific selectors (as Kubernetes and
   * kubectl do: `"pods"` means `pods.v1`, not `pods.v1beta1.metrics.k8s.io`). No ambiguity or
   * verb checks — for webhooks and indexes, which Kopf does not check either.
   */
  match(resources: Iterable<Resource>): Resource[] {
    const seen = new Map<string, Resource>();
    for (const resource of resources) {
      if (this.check(resource)) seen.set(resourceKey(resource), resource);
    }
    let result = [...seen.values()];
    if (this.isSpecific) {
      const core = result.filter((r) => r.group === "");
      if (core.length) result = core;
    }
    return result;
  }

  /**
   * The resources to watch for this selector, with Kopf's runtime rules: a specific selector
   * matching two or more resources (after preferring the core group) is ambiguous, and none of
   * them is served (with a warning); resources that cannot be both listed and watched are
   * dropped.
   *
   * @example
   * ```ts
   * import { parseSelector } from "./selector.ts";
   * const pods = {
   *   group: "", version: "v1", plural: "pods", kind: "Pod", singular: "pod", shortcuts: ["po"],
   *   categories: ["all"], namespaced: true, preferred: true,
   *   verbs: ["get", "list", "watch", "patch"], subresources: ["status"],
   * };
   * parseSelector("po").select([pods]); // [pods]
   * ```
   */
  select(resources: Iterable<Resource>): Resource[] {
    const matched = this.match(resources);
    if (this.isSpecific && matched.length > 1) {
      logger.warn(
        "Ambiguous resources will not be served (try specifying API groups): {selector} => {resources}",
        { selector: this.toString(), resources: matched.map(resourceKey).join(", ") },
      );
      return [];
    }
    const watchable = matched.filter((r) => r.verbs.includes("list") && r.verbs.includes("watch"));
    const dropped = matched.filter((r) => !watchable.includes(r));
    if (dropped.length) {
      // EVERYTHING and categories routinely hit unwatchable resources (bindings, reviews, …).
      const message =
        "Resources without list/watch verbs will not be served: {selector} => {resources}";
      const props = { selector: this.toString(), resources: dropped.map(resourceKey).join(", ") };
      if (this.isSpecific) logger.warn(message, props);
      else logger.debug(message, props);
    }
    return watchable;
  }

  /** A readable form for messages, e.g. `kopf.dev/v1 kopfexamples` or `kind=KopfExample`. */
  toString(): string {
    const gv = this.group === undefined
      ? this.version === undefined ? "" : `*/${this.version}`
      : this.version === undefined
      ? this.group === "" ? "core" : this.group
      : this.group === ""
      ? this.version
      : `${this.group}/${this.version}`;
    const name = this.anyName === EVERYTHING
      ? "EVERYTHING"
      : this.anyName !== undefined
      ? this.anyName
      : this.fn !== undefined
      ? `<predicate ${this.fn.name || "anonymous"}>`
      : this.kind !== undefined
      ? `kind=${this.kind}`
      : this.plural !== undefined
      ? `plural=${this.plural}`
      : this.singular !== undefined
      ? `singular=${this.singular}`
      : this.shortcut !== undefined
      ? `shortcut=${this.shortcut}`
      : `category=${this.category}`;
    return gv ? `${gv} ${name}` : name;
  }
}

/**
 * Parses Kopf's selector arguments (see the module docs for every form). Throws a `TypeError`
 * at registration time for too many arguments, no name, two names, or an empty name.
 *
 * @example
 * ```ts
 * import { parseSelector } from "./selector.ts";
 * parseSelector("kopfexamples");
 * parseSelector("kopf.dev/v1", "kopfexamples");
 * parseSelector("", "v1", "pods");
 * parseSelector({ group: "apps", kind: "Deployment" });
 * parseSelector((resource) => resource.group === "kopf.dev");
 * ```
 */
export function parseSelector(...args: (SelectorArg | SelectorSpec)[]): Selector {
  let spec: SelectorSpec = {};
  let positional = args;
  const last = args.at(-1);
  if (isSpec(last)) {
    spec = last;
    positional = args.slice(0, -1);
  }
  for (const arg of positional) {
    if (isSpec(arg)) {
      throw new TypeError("Resource selector: the keyword object must be the last argument");
    }
    if (typeof arg !== "string" && typeof arg !== "function" && arg !== EVERYTHING) {
      throw new TypeError(
        `Resource selector: unsupported argument ${describeValue(arg)} ` +
          "(expected a string, EVERYTHING, a predicate, or a keyword object)",
      );
    }
  }
  for (const [key, value] of Object.entries(spec)) {
    if (!SPEC_KEYS.has(key)) {
      throw new TypeError(
        `Resource selector: unknown keyword "${key}" (known: ${[...SPEC_KEYS].join(", ")})`,
      );
    }
    if (value !== undefined && typeof value !== "string") {
      throw new TypeError(
        `Resource selector: ${key} must be a string, got ${describeValue(value)}`,
      );
    }
  }

  const parsed = parsePositional(positional as SelectorArg[]);
  for (const key of ["group", "version"] as const) {
    if (parsed[key] !== undefined && spec[key] !== undefined && parsed[key] !== spec[key]) {
      throw new TypeError(
        `Resource selector: ${key} "${spec[key]}" contradicts "${parsed[key]}" from the arguments`,
      );
    }
  }
  return new Selector({
    ...spec,
    group: parsed.group ?? spec.group,
    version: parsed.version ?? spec.version,
    anyName: parsed.anyName,
    fn: parsed.fn,
  });
}

const SPEC_KEYS = new Set([
  "group",
  "version",
  "kind",
  "plural",
  "singular",
  "shortcut",
  "category",
]);

interface Positional {
  group?: string;
  version?: string;
  anyName?: string | typeof EVERYTHING;
  fn?: ResourcePredicate;
}

// Mirrors the `match` statement of Kopf's `Selector.__post_init__`, case by case, in order.
function parsePositional(args: SelectorArg[]): Positional {
  const [a1, a2] = args;
  if (args.length > 3) {
    throw new TypeError(
      `Resource selector: too many positional arguments (${args.length}); at most 3 are accepted`,
    );
  }
  if (typeof a1 === "function") {
    if (args.length > 1) {
      throw new TypeError("Resource selector: a predicate cannot be combined with other names");
    }
    return { fn: a1 };
  }
  if (args.some((a) => typeof a === "function")) {
    throw new TypeError("Resource selector: a predicate must be the only positional argument");
  }
  const [n1, n2, n3] = args as (string | typeof EVERYTHING)[];
  if (args.length === 0) return {};
  if (args.length === 1) {
    if (typeof a1 === "string" && GROUP_VERSION_PATTERN.test(a1)) {
      const parts = a1.split(".");
      return {
        group: parts.length >= 3 ? parts.slice(2).join(".") : undefined,
        version: parts[1],
        anyName: parts[0],
      };
    }
    if (typeof a1 === "string" && a1.includes(".")) {
      const dot = a1.indexOf(".");
      return { group: a1.slice(dot + 1), anyName: a1.slice(0, dot) };
    }
    return { anyName: n1 };
  }
  if (a1 === EVERYTHING || (args.length === 3 && a2 === EVERYTHING)) {
    throw new TypeError("Resource selector: EVERYTHING can only be the last argument");
  }
  if (args.length === 2) {
    const group = a1 as string;
    if (group.includes("/")) {
      const slash = group.lastIndexOf("/");
      return { group: group.slice(0, slash), version: group.slice(slash + 1), anyName: n2 };
    }
    if (group === "v1") return { group: "", version: "v1", anyName: n2 };
    return { group, anyName: n2 };
  }
  return { group: n1 as string, version: n2 as string, anyName: n3 };
}

function isSpec(value: unknown): value is SelectorSpec {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isEvents(resource: Resource): boolean {
  return resource.plural === "events" &&
    ((resource.group === "" && resource.version === "v1") || resource.group === "events.k8s.io");
}

function describeValue(value: unknown): string {
  if (value === EVERYTHING) return "EVERYTHING";
  if (typeof value === "function") return `<function ${value.name || "anonymous"}>`;
  return JSON.stringify(value) ?? String(value);
}
