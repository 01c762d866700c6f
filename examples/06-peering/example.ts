/**
 * Several operators on one Kopf peering object (Kopf's example 06, with Python Kopf too): each
 * keeps a record with its priority in the `KopfPeering`'s status; the one with the highest
 * priority handles objects, the others pause; the same priority pauses all, with a warning.
 *
 * ```sh
 * kubectl apply -f examples/06-peering/peering.yaml
 * # shell A:
 * deno run -A cli.ts run --verbose -n default examples/06-peering/example.ts
 * # shell B — both warn about a same-priority peer and pause:
 * deno run -A cli.ts run --verbose -n default examples/06-peering/example.ts
 * # stop B, start it with --dev (priority 666): A pauses in favour of B; stop B: A resumes
 * deno run -A cli.ts run --verbose -n default --dev examples/06-peering/example.ts
 * # the same by hand, for a minute:
 * deno run -A cli.ts freeze --lifetime 60 -n default
 * deno run -A cli.ts resume -n default
 * ```
 *
 * For several replicas of one operator, prefer `--leader-election` (docs/peering.md).
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.create("kopfexamples", function create_fn({ name, logger }) {
  logger.info(`Handled ${name}.`);
});
