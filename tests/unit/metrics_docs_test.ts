// The dashboard (docs/grafana/kopf-dashboard.json) and the alerts (docs/operating.md) use only
// metrics the operator exports: every name in their expressions is a declared family (histogram
// series by their family's name), so a renamed metric cannot leave a panel or an alert empty.

import assert from "node:assert/strict";
import { OperatorMetrics } from "../../src/metrics/collectors.ts";

const ROOT = new URL("../../", import.meta.url);

/** Families and their types, from the exposition's `# TYPE` lines (declared even when empty). */
function families(): Map<string, string> {
  const text = new OperatorMetrics().expose();
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1], m[2]);
  return types;
}

/** Metric names in a PromQL expression (identifiers followed by `{`, `[` or a space/paren). */
function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, "{}").replace(/"[^"]*"/g, '""');
  const names = [...withoutLabels.matchAll(/\b([a-z_:][a-z0-9_:]*)\s*(?=\{|\[|\)|$)/g)]
    .map((m) => m[1]);
  const keywords = new Set(["by", "without", "on", "ignoring", "le", "sum", "max", "min", "rate"]);
  return names.filter((n) => !keywords.has(n) && n.includes("_"));
}

function check(where: string, expr: string, known: Map<string, string>): string[] {
  const missing: string[] = [];
  for (const name of metricNames(expr)) {
    const family = name.replace(/_(bucket|sum|count)$/, "");
    const ok = known.has(name) || known.get(family) === "histogram";
    if (!ok) missing.push(`${where}: ${name} in ${expr}`);
  }
  return missing;
}

Deno.test("the Grafana dashboard uses only exported metrics", async () => {
  const known = families();
  const dashboard = JSON.parse(
    await Deno.readTextFile(new URL("docs/grafana/kopf-dashboard.json", ROOT)),
  );
  const exprs: string[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) exprs.push(target.expr);
  }
  assert.ok(exprs.length >= 30, `${exprs.length} expressions`);
  const missing = exprs.flatMap((e) => check("dashboard", e, known));
  assert.deepEqual(missing, []);
  // And every family is graphed somewhere.
  const used = new Set(
    exprs.flatMap(metricNames).map((n) => n.replace(/_(bucket|sum|count)$/, "")),
  );
  assert.deepEqual([...known.keys()].filter((f) => !used.has(f)), []);
});

Deno.test("the alerts in docs/operating.md use only exported metrics", async () => {
  const known = families();
  const page = await Deno.readTextFile(new URL("docs/operating.md", ROOT));
  const exprs = [...page.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]);
  assert.ok(exprs.length >= 10, `${exprs.length} alerts`);
  const missing = exprs.flatMap((e) => check("alerts", e, known))
    .filter((m) => !m.startsWith("alerts: up ")); // Prometheus's own
  assert.deepEqual(missing, []);
});
