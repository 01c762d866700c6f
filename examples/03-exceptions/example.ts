/**
 * Errors and retries: the handler fails temporarily first (retried after 1 second), then with
 * an arbitrary error (retried after its backoff), then permanently — after which it is never
 * called again for this object, and its creation counts as processed with one failure.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/03-exceptions/example.ts
 * kubectl apply -n default -f examples/obj.yaml
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

class MyException extends Error {}

// A short backoff for the arbitrary error, so that the example does not wait the default 60 s.
kopf.on.create("kopf.dev", "v1", "kopfexamples", { backoff: 1 }, function create_fn({ retry }) {
  if (!retry) {
    throw new kopf.TemporaryError("First failure.", { delay: 1 });
  } else if (retry === 1) {
    throw new MyException("Second failure.");
  } else {
    throw new kopf.PermanentError("Third failure, the final one.");
  }
});
