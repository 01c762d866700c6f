/**
 * The benchmark operator for ours with its client-side rate limit off (labelled so): the same
 * handlers as ours_single.ts, plus `settings.networking.qps = 0`. Its default (50 requests/s,
 * burst 100) is what caps ours in the default run; this column shows what the engine does
 * without it.
 *
 * Run: `deno run -A cli.ts run --standalone -n <namespace> ours_best.ts`.
 *
 * @module
 */
import * as kopf from "../../../mod.ts";

kopf.on.startup(function configure({ settings }) {
  settings.networking.qps = 0;
});

kopf.on.create(
  "bench.kopf.dev",
  "v1",
  "benchobjects",
  function create_fn({ spec }) {
    return { field: spec.field };
  },
);

kopf.on.update(
  "bench.kopf.dev",
  "v1",
  "benchobjects",
  { field: "spec.field" },
  function update_fn({ new: value }) {
    return { field: value };
  },
);

kopf.on.delete(
  "bench.kopf.dev",
  "v1",
  "benchobjects",
  function delete_fn() {},
);
