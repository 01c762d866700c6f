/**
 * Filters: handlers that run only for objects with certain labels or annotations (exact values,
 * `kopf.PRESENT`, `kopf.ABSENT`, or callbacks), a `when` predicate, a field's value, or a field's
 * change from an old value to a new one. A daemon is filtered the same way.
 *
 * With examples/obj.yaml (label `somelabel: somevalue`, annotation `someannotation: somevalue`,
 * `spec.field: value`) only the handlers whose messages say "matching", "present", "absent",
 * "satisfied" run; the "mismatch" and "not satisfied" ones never do.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/11-filtering-handlers/example.ts
 * kubectl apply -n default -f examples/obj.yaml
 * kubectl patch -n default kex kopf-example-1 --type merge -p '{"spec": {"field": "changed"}}'
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

function say_yes(value: string | undefined, { spec }: { spec: Record<string, unknown> }): boolean {
  return value === "somevalue" && spec.field !== undefined;
}

function say_no(value: string | undefined, { spec }: { spec: Record<string, unknown> }): boolean {
  return value === "somevalue" && spec.field === "not-this-value-for-sure";
}

kopf.on.create(
  "kopfexamples",
  { labels: { somelabel: "somevalue" } },
  function create_with_labels_matching({ logger }) {
    logger.info("Label is matching.");
  },
);

kopf.on.create(
  "kopfexamples",
  { labels: { somelabel: kopf.PRESENT } },
  function create_with_labels_present({ logger }) {
    logger.info("Label is present.");
  },
);

kopf.on.create(
  "kopfexamples",
  { labels: { nonexistent: kopf.ABSENT } },
  function create_with_labels_absent({ logger }) {
    logger.info("Label is absent.");
  },
);

kopf.on.create(
  "kopfexamples",
  { labels: { somelabel: say_yes } },
  function create_with_labels_callback_matching({ logger }) {
    logger.info("Label callback matching.");
  },
);

kopf.on.create(
  "kopfexamples",
  { annotations: { someannotation: "somevalue" } },
  function create_with_annotations_matching({ logger }) {
    logger.info("Annotation is matching.");
  },
);

kopf.on.create(
  "kopfexamples",
  { annotations: { someannotation: kopf.PRESENT } },
  function create_with_annotations_present({ logger }) {
    logger.info("Annotation is present.");
  },
);

kopf.on.create(
  "kopfexamples",
  { annotations: { nonexistent: kopf.ABSENT } },
  function create_with_annotations_absent({ logger }) {
    logger.info("Annotation is absent.");
  },
);

kopf.on.create(
  "kopfexamples",
  { annotations: { someannotation: say_no } },
  function create_with_annotations_callback_matching({ logger }) {
    logger.info("Annotation callback mismatch.");
  },
);

kopf.on.create(
  "kopfexamples",
  { when: () => true },
  function create_with_filter_satisfied({ logger }) {
    logger.info("Filter satisfied.");
  },
);

kopf.on.create(
  "kopfexamples",
  { when: () => false },
  function create_with_filter_not_satisfied({ logger }) {
    logger.info("Filter not satisfied.");
  },
);

kopf.on.create(
  "kopfexamples",
  { field: "spec.field", value: "value" },
  function create_with_field_value_satisfied({ logger }) {
    logger.info("Field value is satisfied.");
  },
);

kopf.on.create(
  "kopfexamples",
  { field: "spec.field", value: "something-else" },
  function create_with_field_value_not_satisfied({ logger }) {
    logger.info("Field value is not satisfied.");
  },
);

kopf.on.create(
  "kopfexamples",
  { field: "spec.field", value: kopf.PRESENT },
  function create_with_field_presence_satisfied({ logger }) {
    logger.info("Field presence is satisfied.");
  },
);

kopf.on.create(
  "kopfexamples",
  { field: "spec.inexistent", value: kopf.PRESENT },
  function create_with_field_presence_not_satisfied({ logger }) {
    logger.info("Field presence is not satisfied.");
  },
);

kopf.on.update(
  "kopfexamples",
  { field: "spec.field", old: "value", new: "changed" },
  function update_with_field_change_satisfied({ logger }) {
    logger.info("Field change is satisfied.");
  },
);

kopf.daemon(
  "kopfexamples",
  { field: "spec.field", value: "value" },
  async function daemon_with_field({ stopped, logger }) {
    while (!stopped.isSet) {
      logger.info("Field daemon is satisfied.");
      await stopped.wait(1);
    }
  },
);
