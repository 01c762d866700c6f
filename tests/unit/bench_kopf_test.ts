// The pure parts of the Kopf benchmark (bench/kopf/): /proc parsing, statistics, request classes,
// the floor's decisions, "handled" criteria, the table and the chart.
import assert from "node:assert/strict";
import { cumulative, handledChart, ticks } from "../../bench/kopf/chart.ts";
import { ctrlrtTarget } from "../../bench/kopf/ctrlrt.ts";
import { FINALIZER, type FloorMemory, floorWrites } from "../../bench/kopf/floor.ts";
import { createHandled, updateHandled } from "../../bench/kopf/observer.ts";
import { parseStat, parseStatusKb } from "../../bench/kopf/proc_stats.ts";
import { markdownTable } from "../../bench/kopf/report.ts";
import type { PhaseResult, TargetResult } from "../../bench/kopf/scenario.ts";
import { latencies, percentile, summarizeLatencies } from "../../bench/kopf/stats.ts";
import { criteriaOf } from "../../bench/kopf/targets.ts";
import {
  countsSince,
  flowSchemas,
  OPERATOR_USER,
  parseClassCounts,
  requestClasses,
  summarize,
} from "../../bench/kopf/traffic.ts";

Deno.test("parseStat counts fields after the command name, which may hold spaces and parentheses", () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  // Field 3 is the state; fields 4 (ppid), 14–17 (utime, stime, cutime, cstime).
  fields[0] = "S";
  fields[4 - 3] = "77";
  fields[14 - 3] = "120";
  fields[15 - 3] = "30";
  fields[16 - 3] = "5";
  fields[17 - 3] = "1";
  const stat = parseStat(`1234 (deno (main) x) ${fields.join(" ")}`);
  assert.deepEqual(stat, { ppid: 77, utime: 120, stime: 30, cutime: 5, cstime: 1 });
});

Deno.test("parseStatusKb reads kB lines in bytes and 0 when absent", () => {
  const status = "Name:\tpython3\nVmHWM:\t  51234 kB\nVmRSS:\t   40960 kB\n";
  assert.equal(parseStatusKb(status, "VmRSS"), 40960 * 1024);
  assert.equal(parseStatusKb(status, "VmHWM"), 51234 * 1024);
  assert.equal(parseStatusKb(status, "VmSwap"), 0);
});

Deno.test("percentile is nearest-rank", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.equal(summarizeLatencies([]), null);
  const s = summarizeLatencies([10, 20, 30, 40])!;
  assert.equal(s.p50, 20);
  assert.equal(s.max, 40);
  assert.equal(s.mean, 25);
});

Deno.test("latencies pair start and end by key and skip objects never handled", () => {
  const start = new Map([["a", 100], ["b", 200], ["c", 300]]);
  const end = new Map([["a", 150], ["c", 310], ["warmup", 5]]);
  assert.deepEqual(latencies(start, end), [50, 10]);
});

Deno.test("flow schemas match only the operator's user, at the exempt level, in class order", () => {
  const schemas = flowSchemas("bench.kopf.dev", "benchobjects") as {
    metadata: { name: string };
    // deno-lint-ignore no-explicit-any
    spec: any;
  }[];
  assert.equal(schemas.length, requestClasses("bench.kopf.dev", "benchobjects").length);
  const precedences = schemas.map((s) => s.spec.matchingPrecedence);
  assert.deepEqual(precedences, [...precedences].sort((a, b) => a - b));
  assert.ok(precedences[0] > 2, "after exempt (1) and probes (2)");
  for (const s of schemas) {
    assert.equal(s.spec.priorityLevelConfiguration.name, "exempt");
    assert.deepEqual(s.spec.rules[0].subjects, [{ kind: "User", user: { name: OPERATOR_USER } }]);
  }
  const status = schemas.find((s) => s.metadata.name === "kopf-bench-cr-status-write")!;
  assert.deepEqual(status.spec.rules[0].resourceRules[0].resources, ["benchobjects/status"]);
  const last = schemas.at(-1)!;
  assert.deepEqual(last.spec.rules[0].nonResourceRules, [{ verbs: ["*"], nonResourceURLs: ["*"] }]);
});

Deno.test("class counts come from our flow schemas only, and summarize into the report's groups", () => {
  const text = (patch: number, watch: number) =>
    [
      `apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt",priority_level="exempt"} 999`,
      `apiserver_flowcontrol_dispatched_requests_total{flow_schema="kopf-bench-cr-patch",priority_level="exempt"} ${patch}`,
      `apiserver_flowcontrol_dispatched_requests_total{flow_schema="kopf-bench-cr-watch",priority_level="exempt"} ${watch}`,
      `apiserver_flowcontrol_dispatched_requests_total{flow_schema="kopf-bench-cr-status-write",priority_level="exempt"} 4`,
      `apiserver_flowcontrol_current_executing_requests{flow_schema="kopf-bench-cr-patch",priority_level="exempt"} 3`,
    ].join("\n");
  const before = parseClassCounts(text(10, 1));
  assert.deepEqual(before, { "cr-patch": 10, "cr-watch": 1, "cr-status-write": 4 });
  const delta = countsSince(before, parseClassCounts(text(25, 2)));
  assert.deepEqual(delta, { "cr-patch": 15, "cr-watch": 1 });
  const summary = summarize({
    ...delta,
    "cr-status-write": 5,
    "events-write": 2,
    "ns-list": 1,
    "any-other": 3,
  });
  assert.equal(summary.writes, 20);
  assert.equal(summary.statusWrites, 5);
  assert.equal(summary.watches, 1);
  assert.equal(summary.lists, 1);
  assert.equal(summary.events, 2);
  assert.equal(summary.other, 3);
  assert.equal(summary.total, 27);
});

Deno.test("the floor adds the finalizer and writes status once, then only what changes", () => {
  const keys = criteriaOf("single").createKeys;
  const memory: FloorMemory = { finalizerAdded: false, finalizerRemoved: false };
  const obj = { metadata: { name: "a" }, spec: { field: "v1" } };
  const first = floorWrites(obj, memory, keys);
  assert.deepEqual(first.map((w) => w.kind), ["add-finalizer", "status"]);
  assert.deepEqual(first[0].patch, [{
    op: "add",
    path: "/metadata/finalizers",
    value: [FINALIZER],
  }]);
  assert.deepEqual(first[1].patch, { status: { create_fn: { field: "v1" } } });
  // Its own writes come back as events: nothing more to do.
  const echoed = {
    ...obj,
    metadata: { name: "a", finalizers: [FINALIZER] },
    status: { create_fn: { field: "v1" } },
  };
  assert.deepEqual(floorWrites(echoed, memory, keys), []);
  assert.deepEqual(floorWrites(obj, memory, keys), [], "a stale event does not repeat the writes");
  const updated = { ...echoed, spec: { field: "v2" } };
  assert.deepEqual(floorWrites(updated, memory, keys), [
    { kind: "status", patch: { status: { update_fn: { field: "v2" } } } },
  ]);
  assert.deepEqual(floorWrites(updated, memory, keys), []);
  const deleting = {
    ...updated,
    metadata: { name: "a", finalizers: ["other", FINALIZER], deletionTimestamp: "now" },
  };
  assert.deepEqual(floorWrites(deleting, memory, keys), [{
    kind: "remove-finalizer",
    patch: [
      { op: "test", path: "/metadata/finalizers/1", value: FINALIZER },
      { op: "remove", path: "/metadata/finalizers/1" },
    ],
  }]);
  assert.deepEqual(floorWrites(deleting, memory, keys), []);
});

Deno.test("the floor writes all three create results in one status write", () => {
  const memory: FloorMemory = { finalizerAdded: true, finalizerRemoved: false };
  const obj = { metadata: { name: "a", finalizers: [FINALIZER] }, spec: { field: "x" } };
  const writes = floorWrites(obj, memory, criteriaOf("three").createKeys);
  assert.deepEqual(writes, [{
    kind: "status",
    patch: {
      status: {
        create_fn_1: { field: "x" },
        create_fn_2: { field: "x" },
        create_fn_3: { field: "x" },
      },
    },
  }]);
});

Deno.test("handled means every create result, and an update result with the new value", () => {
  const three = criteriaOf("three");
  assert.equal(createHandled({ status: { create_fn_1: {}, create_fn_2: {} } }, three), false);
  assert.equal(
    createHandled({ status: { create_fn_1: {}, create_fn_2: {}, create_fn_3: {} } }, three),
    true,
  );
  const single = criteriaOf("single");
  assert.equal(createHandled({}, single), false);
  // Kopf names a field-bound update handler `update_fn/spec.field`.
  assert.equal(
    updateHandled({ status: { "update_fn/spec.field": { field: "v2" } } }, single, "v2"),
    true,
  );
  assert.equal(
    updateHandled({ status: { "update_fn/spec.field": { field: "v1" } } }, single, "v2"),
    false,
  );
  assert.equal(updateHandled({ status: { create_fn: { field: "v2" } } }, single, "v2"), false);
});

function fakeTarget(id: string, label: string, createWall: number | null): TargetResult {
  const phase = (name: PhaseResult["phase"], wall: number | null): PhaseResult => ({
    phase: name,
    expected: 10,
    handled: wall === null ? 4 : 10,
    complete: wall !== null,
    startedAt: 0,
    lastHandledAt: null,
    endedAt: 0,
    wallSeconds: wall,
    perSecond: wall === null ? null : 10 / wall,
    latencyMs: null,
    requests: {},
    traffic: summarize({ "cr-patch": 20, "cr-status-write": 10 }),
    cpuSeconds: 1,
    rssEndBytes: null,
    rssMaxBytes: null,
    apiserverCpuSeconds: null,
    etcdCpuSeconds: null,
    timeline: wall === null
      ? [100, 200, 300, 400]
      : Array.from({ length: 10 }, (_, i) => (i + 1) * wall * 100),
  });
  return {
    id,
    label,
    variant: "single",
    command: [id],
    n: 10,
    namespace: "ns",
    startToFirstHandledSeconds: 1,
    startupCpuSeconds: id === "ours" ? 0.3 : 0.03,
    startedRssBytes: (id === "ours" ? 60 : 30) * 1024 * 1024,
    peakRssBytes: 50 * 1024 * 1024,
    steadyRssBytes: null,
    cpuSeconds: 2,
    phases: [phase("create", createWall), phase("update", 1), phase("delete", 1)],
    exitCode: 0,
    error: null,
    logFile: "",
    observerErrors: [],
    observerReconnects: 0,
    loadAverage: { start: null, end: null },
    processes: [],
  };
}

Deno.test("the table has a column per target and ratios of ours to Kopf and to the floor", () => {
  const table = markdownTable(
    [
      fakeTarget("kopf", "Kopf", 4),
      fakeTarget("ours", "ours", 0.5),
      fakeTarget("floor", "floor", 0.4),
    ],
    300,
  );
  const lines = table.split("\n");
  assert.equal(lines[0], "| metric | Kopf | ours | floor | ours/Kopf | ours/floor |");
  const wall = lines.find((l) => l.startsWith("| create: wall time"))!;
  assert.equal(
    wall,
    "| create: wall time until all handled (s) | 4.00 | 0.50 | 0.40 | 0.13× | 1.25× |",
  );
  const writes = lines.find((l) => l.startsWith("| writes per object, create→delete"))!;
  assert.equal(writes, "| writes per object, create→delete | 6.00 | 6.00 | 6.00 | 1.00× | 1.00× |");
  const startup = lines.find((l) => l.startsWith("| startup: operator CPU"))!;
  assert.equal(
    startup,
    "| startup: operator CPU to the first object handled (s) | 0.03 | 0.30 | 0.03 | 10.00× | 10.00× |",
  );
  const started = lines.find((l) => l.startsWith("| RSS started and idle"))!;
  assert.equal(
    started,
    "| RSS started and idle, before the bursts (MiB) | 30.0 | 60.0 | 30.0 | 2.00× | 2.00× |",
  );
  assert.match(
    table,
    /\| idle: LIST requests per hour \| not run \| not run \| not run \| — \| — \|/,
  );
});

Deno.test("with controller-runtime in the run, ratios of ours to each configuration follow", () => {
  const table = markdownTable(
    [
      fakeTarget("ours", "ours", 0.5),
      fakeTarget("kopf", "Kopf", 4),
      fakeTarget("ctrlrt", "cr", 2),
      fakeTarget("ctrlrt-10", "cr10", 0.25),
    ],
    300,
  );
  const lines = table.split("\n");
  assert.equal(
    lines[0],
    "| metric | ours | Kopf | cr | cr10 | ours/Kopf | ours/floor | ours/ctrlrt | ours/ctrlrt-10 |",
  );
  const wall = lines.find((l) => l.startsWith("| create: wall time"))!;
  assert.equal(
    wall,
    "| create: wall time until all handled (s) | 0.50 | 4.00 | 2.00 | 0.25 | 0.13× | — | 0.25× | 2.00× |",
  );
});

Deno.test("the controller-runtime targets run the single variant only", () => {
  const one = ctrlrtTarget("/bin/true", "single", 1);
  const ten = ctrlrtTarget("/bin/true", "single", 10);
  assert.ok(typeof one !== "string" && typeof ten !== "string");
  assert.equal(one.id, "ctrlrt");
  assert.equal(ten.id, "ctrlrt-10");
  assert.deepEqual(ten.command.slice(-2), ["--workers", "10"]);
  assert.match(String(ctrlrtTarget("/bin/true", "three", 1)), /single variant only/);
});

Deno.test("an incomplete phase shows how far it got, not a number", () => {
  const table = markdownTable(
    [fakeTarget("kopf", "Kopf", null), fakeTarget("floor", "floor", 1)],
    0,
  );
  const wall = table.split("\n").find((l) => l.startsWith("| create: wall time"))!;
  assert.equal(
    wall,
    "| create: wall time until all handled (s) | incomplete: 4/10 | 1.00 | — | — |",
  );
});

Deno.test("chart ticks are round and the curve is thinned but keeps the last point", () => {
  assert.deepEqual(ticks(10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(ticks(0.27), [0, 0.1, 0.2]);
  assert.deepEqual(ticks(0), [0]);
  const points = cumulative(Array.from({ length: 1000 }, (_, i) => i), 100);
  assert.ok(points.length <= 101);
  assert.deepEqual(points[0], [0, 0]);
  assert.deepEqual(points.at(-1), [0.999, 1000]);
  const svg = handledChart(
    [fakeTarget("kopf", "Kopf <py>", 4), fakeTarget("ours", "ours", 1)],
    "t",
  );
  assert.match(svg, /^<svg /);
  assert.match(svg, /Kopf &lt;py&gt;/);
  assert.equal(svg.match(/<polyline/g)?.length, 6);
});
