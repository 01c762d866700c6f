/**
 * Daemons: a long-running function per object, stopped when the object is deleted or the
 * operator exits.
 *
 * `background_sync` checks its `stopped` helper and waits with `stopped.wait()`; it fails three
 * times first (a `TemporaryError` restarts it), and finishes by itself after 30 seconds.
 * `background_async` relies on its `signal` being aborted instead: with `cancellationBackoff`
 * and `cancellationTimeout` it asks for cleanup time, so the object keeps a finalizer until the
 * daemon has stopped. It only runs for objects with the annotation `someannotation: somevalue`.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/14-daemons/example.ts
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

// Checks `stopped` and sleeps with `stopped.wait()`: exits promptly when asked to.
// This daemon exits after 3 failed attempts and then 30 seconds of running (unless stopped).
kopf.daemon(
  "kopf.dev",
  "v1",
  "kopfexamples",
  { backoff: 3 },
  async function background_sync({ spec, stopped, logger, retry, patch }) {
    if (retry < 3) {
      patch.status.message = `Failed ${retry + 1} times.`;
      throw new kopf.TemporaryError("Simulated failure.", { delay: 1 });
    }

    const started = Date.now();
    while (!stopped.isSet && Date.now() - started <= 30_000) {
      logger.info(
        `=> Ping from a sync daemon: field=${JSON.stringify(spec.field)}, retry=${retry}`,
      );
      await stopped.wait(5);
    }

    patch.status.message = "Accompanying is finished.";
  },
);

// Relies on its signal: the sleep rejects when the daemon is cancelled (after the backoff).
// This daemon runs forever (until stopped). Yet fails to start for 3 first times.
kopf.daemon("kopf.dev", "v1", "kopfexamples", {
  backoff: 3,
  cancellationBackoff: 1.0,
  cancellationTimeout: 0.5,
  annotations: { someannotation: "somevalue" },
}, async function background_async({ spec, logger, retry, signal }) {
  if (retry < 3) throw new kopf.TemporaryError("Simulated failure.", { delay: 1 });

  while (true) {
    logger.info(`=> Ping from an async daemon: field=${JSON.stringify(spec.field)}`);
    await sleep(5000, signal);
  }
});

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
