/**
 * Children: every KopfExample gets a Pod of its own. `kopf.adopt()` makes the Pod a child of the
 * object being handled (owner reference, namespace, a name derived from the parent's, the
 * parent's labels), so Kubernetes deletes the Pod when its parent is deleted. The Pod's uid is
 * returned and lands in `status.create_fn.children`.
 *
 * The Pod is created through `api`, the operator's own connection (docs/api.md). Its type comes
 * from `@kubernetes/client-node` through a type-only import: nothing of that library is loaded.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/02-children/example.ts
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";
import type { V1Pod } from "@kubernetes/client-node";

kopf.on.create("kopf.dev", "v1", "kopfexamples", async function create_fn({ spec, logger, api }) {
  const duration = String(spec.duration ?? 0);
  const field = String(spec.field ?? "default-value");

  // The Pod, with some of the parent's spec fields used in it.
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    spec: {
      containers: [{
        name: "the-only-one",
        image: "busybox",
        command: ["sh", "-x", "-c"],
        args: [`echo "FIELD=$FIELD"\nsleep ${duration}`],
        env: [{ name: "FIELD", value: field }],
      }],
    },
  };

  // Make it our child: the owner reference, the namespace, the name, the labels.
  kopf.adopt(pod);

  const created = await api.create(pod);
  logger.info(`Pod child is created: ${created.metadata?.name}`);

  // Stored in the parent's status.
  return { children: [created.metadata?.uid] };
});
