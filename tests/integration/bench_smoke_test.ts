// The Kopf benchmark's smoke run (N=20, idle 10 s) on the real control plane, so the benchmark code
// cannot rot: Python Kopf, ours (once `run` is in mod.ts) and the floor each go through the whole
// scenario. It asserts only that a complete result came out — never how fast anything was.
import assert from "node:assert/strict";
import { type BenchResult, runBenchmark, type TargetId } from "../../bench/kopf/benchmark.ts";
import { oursFactory, oursUnavailable } from "../../bench/kopf/ours.ts";
import { cluster } from "../support/cluster.ts";

const N = 20;
const IDLE = 10;

Deno.test({
  name: "the Kopf benchmark runs its whole scenario against Kopf, ours and the floor",
  // Minutes of real processes: not something to run with the unit tests' sanitizers in mind.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const c = await cluster();
    const outDir = await Deno.makeTempDir({ prefix: "kopf-bench-smoke-" });
    const targets: TargetId[] = ["kopf", "ours", "floor"];
    let result: BenchResult;
    try {
      result = await runBenchmark(c, {
        n: N,
        idleSeconds: IDLE,
        concurrency: 8,
        settleSeconds: 1,
        phaseTimeoutSeconds: 180,
        sampleMs: 500,
        targets,
        variants: ["single", "three"],
        outDir,
        pauseSeconds: 0,
      }, oursFactory);

      // Ours may only be missing while the engine has not landed; once it has, it must run.
      const oursMissing = await oursUnavailable("single");
      for (const skipped of result.skipped) {
        assert.equal(skipped.id, "ours", `unexpected skip: ${JSON.stringify(skipped)}`);
        assert.ok(oursMissing, `ours was skipped although it is available: ${skipped.reason}`);
      }
      const expected = targets.filter((t) => t !== "ours" || !oursMissing).length * 2;
      assert.equal(result.results.length, expected);

      for (const r of result.results) {
        const where = `${r.label} (${r.variant}): ${r.error ?? ""}\nlog: ${r.logFile}`;
        assert.equal(r.error, null, where);
        const phases = r.phases.map((p) => p.phase);
        assert.deepEqual(
          phases,
          r.variant === "single"
            ? ["startup", "create", "update", "delete", "idle", "shutdown"]
            : ["startup", "create", "update", "delete", "shutdown"],
          where,
        );
        assert.ok(r.startToFirstHandledSeconds! > 0, where);
        assert.ok(r.startupCpuSeconds! > 0 && r.startedRssBytes! > 0, where);
        assert.ok(r.peakRssBytes! > 0 && r.cpuSeconds! > 0, where);
        for (const p of r.phases.filter((p) => ["create", "update", "delete"].includes(p.phase))) {
          assert.ok(p.complete, `${p.phase} incomplete: ${where}`);
          assert.equal(p.handled, N, where);
          assert.equal(p.latencyMs?.count, N, where);
          assert.equal(p.timeline.length, N, where);
          // Every operator must write for every object in every phase; the counts are exact.
          assert.ok(p.traffic.writes >= N, `${p.phase}: ${JSON.stringify(p.requests)}: ${where}`);
        }
        // Lists and watches happen at startup: the operator's identity is counted.
        const startup = r.phases[0];
        assert.ok(startup.traffic.lists >= 1 && startup.traffic.watches >= 1, where);
      }
      const report = await Deno.readTextFile(`${outDir}/report.md`);
      assert.match(report, /\| metric \| Kopf 1\.4\d\.\d+ \|/);
      assert.match(report, /\| create: handled objects\/s \|/);
      const json: BenchResult = JSON.parse(await Deno.readTextFile(`${outDir}/results.json`));
      assert.equal(json.results.length, result.results.length);
      for (const variant of ["single", "three"]) {
        assert.match(await Deno.readTextFile(`${outDir}/handled-${variant}.svg`), /<polyline/);
      }
    } finally {
      await Deno.remove(outDir, { recursive: true }).catch(() => {});
    }
  },
});
