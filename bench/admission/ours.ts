// The benchmark's operator (ours): one trivial validating handler. Started by
// bench/admission_bench.ts with `kopf run --webhook-server … --webhook-managed …`.
import * as kopf from "@kopf/kopf";

kopf.on.validate("benchours", function check_fn({ spec }) {
  if (spec.reject === true) throw new kopf.AdmissionError("rejected", { code: 400 });
});
