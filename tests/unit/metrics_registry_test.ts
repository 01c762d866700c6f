// The metrics registry and its text exposition: exact lines, escaping of label values (quotes,
// backslashes, newlines, Unicode) and help texts, histograms' cumulative buckets, and a family
// that fails to read left out of the scrape, not the whole answer. The exposition is checked
// with prometheus_client's real parser too (tests/support/prometheus.ts).

import assert from "node:assert/strict";
import { escapeLabelValue, formatValue } from "../../src/metrics/exposition.ts";
import { Registry } from "../../src/metrics/registry.ts";
import { parseText, prometheusParse } from "../support/prometheus.ts";

Deno.test("label values with quotes, backslashes, newlines and Unicode are escaped", async () => {
  const registry = new Registry();
  const names = ['say "hi"', "back\\slash", "two\nlines", "π-ключ-名前-🙂", "tab\tstays"];
  const counter = registry.counter({
    name: "objects_total",
    help: "Objects.",
    labelNames: ["name"],
  });
  names.forEach((name, i) => counter.labels(name).inc(i + 1));
  const text = registry.expose();
  assert.ok(text.includes('objects_total{name="say \\"hi\\""} 1\n'));
  assert.ok(text.includes('objects_total{name="back\\\\slash"} 2\n'));
  assert.ok(text.includes('objects_total{name="two\\nlines"} 3\n'));
  assert.ok(text.includes('objects_total{name="π-ключ-名前-🙂"} 4\n'));
  // One line per sample: no raw newline inside a sample.
  assert.equal(text.trim().split("\n").length, 2 + names.length);
  const parsed = await prometheusParse(text);
  assert.deepEqual(
    parsed.map((s) => [s.labels.name, s.value]),
    names.map((name, i) => [name, i + 1]),
  );
  assert.deepEqual(parseText(text).series.map((s) => s.labels.name), names);
});

Deno.test("help texts escape backslashes and newlines", async () => {
  const registry = new Registry();
  registry.gauge({ name: "g", help: "line one\nline \\ two" }).labels().set(1);
  const text = registry.expose();
  assert.equal(text, "# HELP g line one\\nline \\\\ two\n# TYPE g gauge\ng 1\n");
  const [sample] = await prometheusParse(text);
  assert.equal(sample.value, 1);
});

Deno.test("a histogram's buckets are cumulative, with +Inf, _sum and _count", async () => {
  const registry = new Registry();
  const h = registry.histogram({
    name: "work_seconds",
    help: "Work.",
    labelNames: ["name"],
    buckets: [0.1, 1],
  });
  const child = h.labels("q");
  for (const v of [0.05, 0.1, 0.5, 3]) child.observe(v);
  assert.equal(
    registry.expose(),
    "# HELP work_seconds Work.\n# TYPE work_seconds histogram\n" +
      'work_seconds_bucket{name="q",le="0.1"} 2\n' +
      'work_seconds_bucket{name="q",le="1"} 3\n' +
      'work_seconds_bucket{name="q",le="+Inf"} 4\n' +
      'work_seconds_sum{name="q"} 3.65\n' +
      'work_seconds_count{name="q"} 4\n',
  );
  const parsed = await prometheusParse(registry.expose());
  assert.equal(parsed.find((s) => s.name === "work_seconds_count")?.value, 4);
});

Deno.test("children are kept per label set; counters never go down", () => {
  const registry = new Registry();
  const c = registry.counter({ name: "c_total", help: "C.", labelNames: ["a", "b"] });
  assert.equal(c.labels("x", "y"), c.labels("x", "y"));
  assert.notEqual(c.labels("x", "y"), c.labels("x", "z"));
  // "x y" / "" must not collide with "x" / "y " (no key strings are built).
  assert.notEqual(c.labels("x y", ""), c.labels("x", "y "));
  c.labels("x", "y").inc(-5);
  assert.equal(c.labels("x", "y").value, 0);
  assert.throws(() => c.labels("only-one"), /takes 2 label value/);
  assert.throws(() => registry.counter({ name: "c_total", help: "again" }), /declared twice/);
  assert.throws(() => registry.counter({ name: "bad-name", help: "" }), /invalid metric name/);
  assert.throws(() => registry.counter({ name: "x", help: "", labelNames: ["__x"] }), /label/);
});

Deno.test("a family that cannot be read is left out of the scrape, the rest is served", () => {
  const registry = new Registry();
  registry.pulled("gauge", { name: "broken", help: "B." }, () => {
    throw new Error("half stopped");
  });
  registry.pulled("gauge", { name: "fine", help: "F." }, () => [[[], 7]]);
  assert.equal(registry.expose(), "# HELP fine F.\n# TYPE fine gauge\nfine 7\n");
});

Deno.test("values are spelled as the format spells them", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(1e21), "1e+21");
  assert.equal(escapeLabelValue("plain"), "plain");
});
