/**
 * All the features at once, for debugging and testing: startup and cleanup activities, several
 * creation handlers (one posting Events, one failing once and retried, one creating a labelled
 * child Pod), update, field and delete handlers, and an event handler on the children.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/99-all-at-once/example.ts
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";
import type { V1Pod } from "@kubernetes/client-node";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

kopf.on.startup(async function startup_fn({ logger }) {
  logger.info("Starting in 1s...");
  await sleep(1000);
});

kopf.on.cleanup(async function cleanup_fn({ logger }) {
  logger.info("Cleaning up in 1s...");
  await sleep(1000);
});

kopf.on.create("kopf.dev", "v1", "kopfexamples", function create_1({ body }) {
  const children = createChildren();
  kopf.info(body, { reason: "AnyReason" });
  kopf.event(body, { type: "Warning", reason: "SomeReason", message: "Cannot do something" });
  kopf.event(children, {
    type: "Normal",
    reason: "SomeReason",
    message: "Created as part of the job1step",
  });
  return { "job1-status": 100 };
});

// Fails on the first attempt and succeeds on the retry, which comes 1 second later (the state is
// on the object: a restarted operator retries it too).
kopf.on.create(
  "kopf.dev",
  "v1",
  "kopfexamples",
  { backoff: 1 },
  async function create_2({ retry }) {
    await waitForSomething(); // e.g. an external API poller
    if (!retry) throw new Error("Whoops!");
    return { "job2-status": 100 };
  },
);

kopf.on.update("kopf.dev", "v1", "kopfexamples", function update({ diff, logger }) {
  logger.info(`Handling the diff: ${JSON.stringify(diff)}`);
});

kopf.on.field(
  "kopf.dev",
  "v1",
  "kopfexamples",
  { field: "spec.lst" },
  function update_lst({ old, new: value, logger }) {
    logger.info(`Handling the FIELD = ${JSON.stringify(old)} -> ${JSON.stringify(value)}`);
  },
);

kopf.on.delete("kopf.dev", "v1", "kopfexamples", function delete_fn({ logger }) {
  logger.info("Deleting.");
});

function createChildren(): V1Pod[] {
  return [];
}

function waitForSomething(): Promise<unknown> {
  return sleep(1000);
}

kopf.on.create("kopf.dev", "v1", "kopfexamples", async function create_pod({ logger, api }) {
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    spec: {
      containers: [{
        name: "the-only-one",
        image: "busybox",
        command: ["sh", "-x", "-c", "sleep 1"],
      }],
    },
  };

  // Our child, with the parent's labels and one of its own.
  kopf.adopt(pod);
  kopf.label(pod, { application: "kopf-example-10" });

  const created = await api.create(pod);
  logger.info(`Pod child is created: ${created.metadata?.name}`);
});

kopf.on.event(
  "",
  "v1",
  "pods",
  { labels: { application: "kopf-example-10" } },
  function example_pod_change({ logger }) {
    logger.info("This pod is special for us.");
  },
);
