/**
 * Timers: periodic calls per object. Both run only when the object has not changed for a while
 * (`idle`), then every few seconds (`interval`). They return nothing and change nothing, so they
 * make no API requests at all.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/15-timers/example.ts
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.timer(
  "kopfexamples",
  { idle: 5, interval: 2 },
  function every_few_seconds_sync({ spec, logger }) {
    logger.info(`Ping from a sync timer: field=${JSON.stringify(spec.field)}`);
  },
);

kopf.timer(
  "kopfexamples",
  { idle: 10, interval: 4 },
  async function every_few_seconds_async({ spec, logger }) {
    await Promise.resolve();
    logger.info(`Ping from an async timer: field=${JSON.stringify(spec.field)}`);
  },
);
