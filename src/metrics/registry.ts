/**
 * A small metrics registry: counters, gauges and histograms with labels, updated where things
 * happen, and families read at scrape time from the stats objects that already exist (the
 * client's counters, the watches', the Event poster's) — which cost nothing per event. Exposed
 * in the Prometheus text format (`exposition.ts`).
 *
 * Why not `prom-client` (under Deno's Node compatibility): measured by
 * `bench/metrics_registry_bench.ts` (see docs/operating.md), importing it costs more than this
 * whole module does, and its updates look label sets up by building a string key from an object
 * on every call; here a hot path resolves its labelled child once and keeps it, so an update is an
 * addition. What an operator needs of a registry — three types, labels, text exposition — is
 * about 250 lines.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { escapeHelp, formatLabels, formatValue, isLabelName, isMetricName } from "./exposition.ts";

const logger = getLogger(["kopf", "metrics"]);

/** The types a family can have (the `# TYPE` line). */
export type MetricType = "counter" | "gauge" | "histogram";

/** One sample of a family read at scrape time: its label values (in order) and value. */
export type PulledSample = readonly [labels: readonly string[], value: number];

/** A family as declared: its name, help text and label names. */
export interface FamilySpec {
  /** The metric name, e.g. `workqueue_depth`. */
  readonly name: string;
  /** What it measures (the `# HELP` line). */
  readonly help: string;
  /** The label names, in the order values are given. */
  readonly labelNames?: readonly string[];
}

/** What every family of the registry has. */
abstract class Family {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: MetricType;

  constructor(spec: FamilySpec) {
    if (!isMetricName(spec.name)) throw new TypeError(`invalid metric name: ${spec.name}`);
    for (const label of spec.labelNames ?? []) {
      if (!isLabelName(label)) throw new TypeError(`invalid label name of ${spec.name}: ${label}`);
    }
    this.name = spec.name;
    this.help = spec.help;
    this.labelNames = spec.labelNames ?? [];
  }

  /** The sample lines of this family (without `# HELP` and `# TYPE`). */
  abstract write(lines: string[]): void;

  protected checkArity(values: readonly string[]): void {
    if (values.length !== this.labelNames.length) {
      throw new TypeError(
        `${this.name} takes ${this.labelNames.length} label value(s) ` +
          `(${this.labelNames.join(", ")}), got ${values.length}`,
      );
    }
  }
}

interface Entry<C> {
  readonly values: readonly string[];
  readonly child: C;
}

/**
 * Children of a labelled family, one per set of label values: a tree of maps, one level per
 * label, so that a lookup builds no key string and no two sets of values can collide.
 */
abstract class LabelledFamily<C> extends Family {
  readonly #root = new Map<string, unknown>();
  readonly #entries = new Set<Entry<C>>();
  #unlabelled: Entry<C> | undefined;

  protected abstract make(): C;

  /** The child of these label values (made on first use; keep it on hot paths). */
  labels(...values: string[]): C {
    if (values.length === 0 && this.#unlabelled) return this.#unlabelled.child;
    let level: Map<string, unknown> = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]) as Map<string, unknown> | undefined;
      if (!next) level.set(values[i], next = new Map());
      level = next;
    }
    const found = (last < 0 ? this.#unlabelled : level.get(values[last])) as Entry<C> | undefined;
    if (found) return found.child;
    this.checkArity(values);
    const entry: Entry<C> = { values: [...values], child: this.make() };
    if (last < 0) this.#unlabelled = entry;
    else level.set(values[last], entry);
    this.#entries.add(entry);
    return entry.child;
  }

  /** Drop the child of these label values (e.g. a resource no longer served). */
  remove(...values: string[]): void {
    if (values.length === 0) {
      if (this.#unlabelled) this.#entries.delete(this.#unlabelled);
      this.#unlabelled = undefined;
      return;
    }
    let level: Map<string, unknown> | undefined = this.#root;
    for (let i = 0; i < values.length - 1 && level; i++) {
      level = level.get(values[i]) as Map<string, unknown> | undefined;
    }
    const entry = level?.get(values[values.length - 1]) as Entry<C> | undefined;
    if (!entry || entry.values.length !== values.length) return;
    level!.delete(values[values.length - 1]);
    this.#entries.delete(entry);
  }

  protected children(): Iterable<Entry<C>> {
    return this.#entries;
  }
}

/** A counter's value for one set of labels. */
export class CounterChild {
  /** The count so far. */
  value = 0;

  /** Add `by` (default 1; never negative). */
  inc(by = 1): void {
    if (by > 0) this.value += by;
  }
}

/**
 * A monotonic counter (`…_total`), updated where things happen.
 *
 * @example
 * ```ts
 * import { Registry } from "./registry.ts";
 *
 * const registry = new Registry();
 * const requests = registry.counter({
 *   name: "rest_client_requests_total",
 *   help: "Requests by status code, method and host.",
 *   labelNames: ["code", "method", "host"],
 * });
 * const ok = requests.labels("200", "GET", "127.0.0.1:6443"); // resolved once, kept
 * ok.inc();
 * ```
 */
export class Counter extends LabelledFamily<CounterChild> {
  readonly type = "counter";

  protected make(): CounterChild {
    return new CounterChild();
  }

  write(lines: string[]): void {
    for (const { values, child } of this.children()) {
      lines.push(
        `${this.name}${formatLabels(this.labelNames, values)} ${formatValue(child.value)}`,
      );
    }
  }
}

/** A gauge's value for one set of labels. */
export class GaugeChild {
  /** The current value. */
  value = 0;

  /** Set the value. */
  set(value: number): void {
    this.value = value;
  }

  /** Add `by` (default 1). */
  inc(by = 1): void {
    this.value += by;
  }

  /** Subtract `by` (default 1). */
  dec(by = 1): void {
    this.value -= by;
  }
}

/**
 * A gauge updated where things happen (for values read at scrape time, see
 * {@linkcode Registry.pulled}).
 *
 * @example
 * ```ts
 * import { Registry } from "./registry.ts";
 *
 * const registry = new Registry();
 * const depth = registry.gauge({ name: "workqueue_depth", help: "Keys waiting.", labelNames: ["name"] });
 * depth.labels("kopfexamples.kopf.dev").inc();
 * ```
 */
export class Gauge extends LabelledFamily<GaugeChild> {
  readonly type = "gauge";

  protected make(): GaugeChild {
    return new GaugeChild();
  }

  write(lines: string[]): void {
    for (const { values, child } of this.children()) {
      lines.push(
        `${this.name}${formatLabels(this.labelNames, values)} ${formatValue(child.value)}`,
      );
    }
  }
}

/** A histogram's buckets for one set of labels. */
export class HistogramChild {
  readonly #bounds: Float64Array;
  /** Observations per bucket (not cumulative), the last one for `+Inf`. */
  readonly counts: Float64Array;
  /** The sum of the observed values. */
  sum = 0;
  /** How many values were observed. */
  count = 0;

  /** A child over the family's upper bounds. */
  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Count one value. */
  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram's declaration: a family with its buckets' upper bounds. */
export interface HistogramSpec extends FamilySpec {
  /** Upper bounds of the buckets, ascending (`+Inf` is implied). */
  readonly buckets: readonly number[];
}

/**
 * A histogram (`…_bucket`, `…_sum`, `…_count`).
 *
 * @example
 * ```ts
 * import { Registry } from "./registry.ts";
 *
 * const registry = new Registry();
 * const duration = registry.histogram({
 *   name: "kopf_handler_duration_seconds",
 *   help: "How long handler calls took.",
 *   labelNames: ["handler"],
 *   buckets: [0.01, 0.1, 1, 10],
 * });
 * duration.labels("create_fn").observe(0.042);
 * ```
 */
export class Histogram extends LabelledFamily<HistogramChild> {
  readonly type = "histogram";
  readonly #bounds: Float64Array;
  readonly #les: readonly string[];

  /** A histogram with the given buckets. */
  constructor(spec: HistogramSpec) {
    super(spec);
    if (this.labelNames.includes("le")) throw new TypeError(`${spec.name}: "le" is reserved`);
    const bounds = [...spec.buckets];
    if (!bounds.length || bounds.some((b, i) => !(b > (bounds[i - 1] ?? -Infinity)))) {
      throw new TypeError(`${spec.name}: buckets must be ascending and not empty`);
    }
    this.#bounds = Float64Array.from(bounds);
    this.#les = [...bounds.map(formatValue), "+Inf"];
  }

  protected make(): HistogramChild {
    return new HistogramChild(this.#bounds);
  }

  write(lines: string[]): void {
    const names = [...this.labelNames, "le"];
    for (const { values, child } of this.children()) {
      let cumulative = 0;
      for (let i = 0; i < this.#les.length; i++) {
        cumulative += child.counts[i];
        const labels = formatLabels(names, [...values, this.#les[i]]);
        lines.push(`${this.name}_bucket${labels} ${formatValue(cumulative)}`);
      }
      const labels = formatLabels(this.labelNames, values);
      lines.push(`${this.name}_sum${labels} ${formatValue(child.sum)}`);
      lines.push(`${this.name}_count${labels} ${formatValue(child.count)}`);
    }
  }
}

/** A counter or gauge whose samples are read at scrape time. */
class PulledFamily extends Family {
  readonly type: "counter" | "gauge";
  readonly #read: () => Iterable<PulledSample>;

  constructor(type: "counter" | "gauge", spec: FamilySpec, read: () => Iterable<PulledSample>) {
    super(spec);
    this.type = type;
    this.#read = read;
  }

  write(lines: string[]): void {
    for (const [values, value] of this.#read()) {
      this.checkArity(values);
      lines.push(`${this.name}${formatLabels(this.labelNames, values)} ${formatValue(value)}`);
    }
  }
}

/**
 * The families of one operator, and their exposition.
 *
 * @example
 * ```ts
 * import { Registry } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const registry = new Registry();
 * registry.counter({ name: "events_total", help: "Events." }).labels().inc(3);
 * registry.pulled("gauge", { name: "cached_objects", help: "Objects." }, () => [[[], 42]]);
 * assert.equal(
 *   registry.expose(),
 *   "# HELP events_total Events.\n# TYPE events_total counter\nevents_total 3\n" +
 *     "# HELP cached_objects Objects.\n# TYPE cached_objects gauge\ncached_objects 42\n",
 * );
 * ```
 */
export class Registry {
  readonly #families = new Map<string, Family>();
  readonly #failing = new Set<string>();

  /** Declare a counter. */
  counter(spec: FamilySpec): Counter {
    return this.#add(new Counter(spec));
  }

  /** Declare a gauge. */
  gauge(spec: FamilySpec): Gauge {
    return this.#add(new Gauge(spec));
  }

  /** Declare a histogram. */
  histogram(spec: HistogramSpec): Histogram {
    return this.#add(new Histogram(spec));
  }

  /**
   * Declare a counter or gauge whose samples `read` returns at every scrape (from stats that
   * exist anyway: nothing is counted twice, nothing is paid per event).
   */
  pulled(
    type: "counter" | "gauge",
    spec: FamilySpec,
    read: () => Iterable<PulledSample>,
  ): void {
    this.#add(new PulledFamily(type, spec, read));
  }

  /**
   * The text exposition of every family. A family whose samples cannot be read (a bug, or a
   * component half stopped) is left out of this scrape with one error logged, not the whole
   * answer.
   */
  expose(): string {
    const lines: string[] = [];
    for (const family of this.#families.values()) {
      const samples: string[] = [];
      try {
        family.write(samples);
        this.#failing.delete(family.name);
      } catch (error) {
        if (!this.#failing.has(family.name)) {
          this.#failing.add(family.name);
          logger.error("Metric {name} could not be read and is left out: {error}", {
            name: family.name,
            error,
          });
        }
        continue;
      }
      lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
      lines.push(`# TYPE ${family.name} ${family.type}`);
      for (const sample of samples) lines.push(sample);
    }
    return lines.length ? lines.join("\n") + "\n" : "";
  }

  #add<F extends Family>(family: F): F {
    if (this.#families.has(family.name)) {
      throw new TypeError(`metric ${family.name} is declared twice`);
    }
    this.#families.set(family.name, family);
    return family;
  }
}
