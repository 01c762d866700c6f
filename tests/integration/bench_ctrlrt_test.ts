// The controller-runtime operator of the benchmark (bench/controller-runtime/, built with `go build`
// on first use) through the benchmark's scenario on the real control plane, N=20, both worker
// configurations: every object handled in every phase, and the writes counted by the API server
// (per FlowSchema, for the operator's own identity) exactly those of its semantics — finalizer and
// status on create, status on update, finalizer removal on delete, no reads past its informer.
import assert from "node:assert/strict";
import { type BenchResult, runBenchmark } from "../../bench/kopf/benchmark.ts";
import { cluster } from "../support/cluster.ts";

const N = 20;

Deno.test({
  name: "the controller-runtime benchmark operator makes exactly its writes, 1 and 10 workers",
  // Minutes of real processes (and possibly a Go build): not for the sanitizers.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const c = await cluster();
    const outDir = await Deno.makeTempDir({ prefix: "kopf-bench-ctrlrt-" });
    let result: BenchResult;
    try {
      result = await runBenchmark(c, {
        n: N,
        idleSeconds: 0,
        concurrency: 8,
        settleSeconds: 1,
        phaseTimeoutSeconds: 180,
        sampleMs: 500,
        targets: ["ctrlrt", "ctrlrt-10"],
        variants: ["single", "three"],
        outDir,
        pauseSeconds: 0,
      });
      // The three-handler variant is refused for both, with the reason; nothing else is skipped.
      assert.deepEqual(
        result.skipped.map((s) => `${s.id}/${s.variant}`),
        ["ctrlrt/three", "ctrlrt-10/three"],
      );
      for (const s of result.skipped) assert.match(s.reason, /single variant only/);
      assert.deepEqual(result.results.map((r) => r.id), ["ctrlrt", "ctrlrt-10"]);

      for (const r of result.results) {
        const where = `${r.label}: ${r.error ?? ""}\nlog: ${r.logFile}`;
        assert.equal(r.error, null, where);
        const phase = (name: string) => r.phases.find((p) => p.phase === name)!;
        for (const name of ["create", "update", "delete"]) {
          const p = phase(name);
          assert.ok(p.complete, `${name} incomplete: ${where}`);
          assert.equal(p.handled, N, where);
          assert.equal(p.traffic.gets, 0, `${name}: ${JSON.stringify(p.requests)}: ${where}`);
          assert.equal(p.traffic.lists, 0, `${name}: ${JSON.stringify(p.requests)}: ${where}`);
        }
        const requests = (name: string) => {
          const seen = Object.entries(phase(name).requests).filter(([, n]) => n > 0);
          return Object.fromEntries(seen);
        };
        assert.deepEqual(requests("create"), { "cr-patch": N, "cr-status-write": N }, where);
        assert.deepEqual(requests("update"), { "cr-status-write": N }, where);
        assert.deepEqual(requests("delete"), { "cr-patch": N }, where);
        assert.equal(r.exitCode, 0, `exit after SIGTERM: ${where}`);
      }
      const report = await Deno.readTextFile(`${outDir}/report.md`);
      assert.match(report, /\| ours\/ctrlrt \| ours\/ctrlrt-10 \|/);
    } finally {
      await Deno.remove(outDir, { recursive: true }).catch(() => {});
    }
  },
});
