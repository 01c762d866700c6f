/**
 * Which background engines an operator runs, for its registry and options: indexes (if any
 * `kopf.index`), daemons and timers (if any), the metrics (if `metrics` is given), the health
 * endpoint (if `liveness` is given), and the admission webhooks (always:
 * `settings.admission.server` is only known after startup).
 *
 * @module
 */

import { type BackgroundOptions, DaemonsEngine, IndexesEngine } from "../engines/background.ts";
import type { BackgroundEngine } from "../handling/contracts.ts";
import { HealthEngine } from "../health/engine.ts";
import { AdmissionEngine } from "../webhooks/engine.ts";
import { MetricsEngine } from "../metrics/engine.ts";
import { sameListener } from "../metrics/server.ts";
import type { Settings } from "../settings/settings.ts";

/**
 * The background engines a registry needs: indexes (if any `kopf.index`), daemons and timers
 * (if any), and the metrics (if `metrics` is given) and the health endpoint (if `liveness` is given). Indexes come first so that every
 * other engine and handler sees them filled.
 *
 * @example
 * ```ts
 * import { Registry } from "../registry/registry.ts";
 * import { Settings } from "../settings/settings.ts";
 * import { backgroundEngines } from "./engines.ts";
 *
 * const registry = new Registry();
 * registry.timer("kopfexamples", { interval: 60 }, function tick() {});
 * const liveness = "http://127.0.0.1:8080/healthz";
 * const engines = backgroundEngines({ registry, memo: {}, liveness }, new Settings());
 * // engines: the daemons/timers engine, the health endpoint and the admission engine (idle
// unless settings.admission.server is set), for the operator to start
 * ```
 */
export function backgroundEngines(
  options: BackgroundOptions & { liveness?: string; metrics?: string },
  settings: Settings,
): BackgroundEngine[] {
  const engines: BackgroundEngine[] = [];
  const { registry } = options;
  const hasIndexes = registry.handlers.some((h) => h.kind === "indexing");
  const hasSpawning = registry.handlers.some((h) => h.kind === "daemon" || h.kind === "timer");
  const indexes = new IndexesEngine(options, settings);
  if (hasIndexes) engines.push(indexes);
  let daemons: DaemonsEngine | undefined;
  if (hasSpawning) {
    const ready = hasIndexes ? () => indexes.whenReady() : undefined;
    engines.push(daemons = new DaemonsEngine(options, () => indexes.indices(), ready));
  }
  // The metrics come before the health endpoint, which may answer their path on its port.
  const shared = !!options.liveness && !!options.metrics &&
    sameListener(options.liveness, options.metrics);
  const metrics = options.metrics
    ? new MetricsEngine({
      endpoint: options.metrics,
      shared,
      indices: hasIndexes ? () => indexes.indices() : undefined,
      background: daemons ? () => daemons.stats : undefined,
    })
    : undefined;
  if (metrics) engines.push(metrics);
  if (options.liveness) {
    const routes = metrics && shared ? { [metrics.path]: metrics.route } : undefined;
    engines.push(
      new HealthEngine({ ...options, liveness: options.liveness, routes }, () => ({
        ready: !hasIndexes || indexes.ready,
        indices: indexes.indices(),
      })),
    );
  }
  // Last: its start waits for its configurations, which need no other engine.
  engines.push(
    new AdmissionEngine({ registry, memo: options.memo, indices: () => indexes.indices() }),
  );
  return engines;
}
