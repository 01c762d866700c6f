/**
 * The benchmark operator for ours with three create handlers (plus update and delete), handler
 * for handler the same as kopf_three.py.
 *
 * Run with the defaults: `deno run -A cli.ts run --standalone -n <namespace> ours_three.ts`.
 *
 * @module
 */
import * as kopf from "../../../mod.ts";

kopf.on.create(
  "bench.kopf.dev",
  "v1",
  "benchobjects",
  function create_fn_1({ spec }) {
    return { field: spec.field };
  },
);

kopf.on.create(
  "bench.kopf.dev",
  "v1",
  "benchobjects",
  function create_fn_2({ spec }) {
    return { field: spec.field };
  },
);

kopf.on.create(
  "bench.kopf.dev",
  "v1",
  "benchobjects",
  function create_fn_3({ spec }) {
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
