/**
 * The Prometheus text exposition format (version 0.0.4), which every Prometheus server and
 * agent scrapes: `# HELP` and `# TYPE` lines, then one line per sample. Only the escaping and
 * the number spelling live here; what the samples are is `registry.ts`'s job.
 *
 * Escaping follows the format's rules: in label values a backslash, a double quote and a line
 * feed are escaped (`\\`, `\"`, `\n`); in help texts a backslash and a line feed. Everything else
 * — any Unicode, including resource names in other scripts — goes through as UTF-8.
 *
 * @module
 */

/** The `Content-Type` of a scrape's answer. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Whether `name` may name a metric. */
export function isMetricName(name: string): boolean {
  return METRIC_NAME.test(name);
}

/** Whether `name` may name a label (names starting with `__` are Prometheus's own). */
export function isLabelName(name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith("__");
}

/**
 * A label value as it goes between the double quotes of a sample line.
 *
 * @example
 * ```ts
 * import { escapeLabelValue } from "./exposition.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeLabelValue('say "hi"\nback\\slash'), 'say \\"hi\\"\\nback\\\\slash');
 * ```
 */
export function escapeLabelValue(value: string): string {
  // Most values need nothing: test once rather than run three replacements.
  if (!/[\\"\n]/.test(value)) return value;
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** A help text as it goes after `# HELP name`. */
export function escapeHelp(help: string): string {
  if (!/[\\\n]/.test(help)) return help;
  return help.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/**
 * A sample value as the format spells it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal form.
 *
 * @example
 * ```ts
 * import { formatValue } from "./exposition.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatValue(Infinity), "+Inf");
 * assert.equal(formatValue(0.25), "0.25");
 * ```
 */
export function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

/**
 * The `{name="value",…}` part of a sample line (empty without labels).
 *
 * @example
 * ```ts
 * import { formatLabels } from "./exposition.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatLabels(["code", "method"], ["200", "GET"]), '{code="200",method="GET"}');
 * ```
 */
export function formatLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  let text = "{";
  for (let i = 0; i < names.length; i++) {
    if (i > 0) text += ",";
    text += `${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return text + "}";
}
