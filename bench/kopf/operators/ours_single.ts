/**
 * The benchmark operator for ours, handler for handler the same as kopf_single.py: one create
 * (its result goes to status), one update on a spec field, one delete (non-optional: a finalizer).
 *
 * Run with the defaults: `deno run -A cli.ts run --standalone -n <namespace> ours_single.ts`.
 *
 * @module
 */
import * as kopf from "../../../mod.ts";

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
