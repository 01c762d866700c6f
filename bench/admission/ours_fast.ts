// The benchmark's operator (ours, run without --optimize-for-size): one trivial validating handler. Started by
// bench/admission_bench.ts with `kopf run --webhook-server … --webhook-managed …`.
import * as kopf from "@kopf/kopf";

kopf.on.validate("benchoursfast", function check_fn({ spec }) {
  if (spec.reject === true) throw new kopf.AdmissionError("rejected", { code: 400 });
});
