/**
 * The metrics as a background engine: attached to the running operator at start (the client's
 * request observer, the handler attempts' listener), told of every handling cycle and of the
 * queue's timings through the engine contract, and serving `/metrics` unless the health
 * endpoint's server answers it (same host and port).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { BackgroundEngine, CycleRecord, OperatorHandle } from "../handling/contracts.ts";
import type { QueueObserver } from "../queue/object_queue.ts";
import { type CollectorOptions, OperatorMetrics } from "./collectors.ts";
import { metricsRoute, type MetricsServer, parseMetricsUrl, serveMetrics } from "./server.ts";

const logger = getLogger(["kopf", "engines"]);

/** What {@linkcode MetricsEngine} serves. */
export interface MetricsOptions extends CollectorOptions {
  /** The metrics URL (`--metrics`). */
  readonly endpoint: string;
  /** Another server (the health endpoint's) answers the path: do not listen. */
  readonly shared?: boolean;
}

/** The operator's metrics, collected while it runs and served at the metrics URL. */
export class MetricsEngine implements BackgroundEngine {
  readonly name = "metrics";
  /** The metrics. */
  readonly metrics: OperatorMetrics;
  readonly queueObserver: QueueObserver;
  readonly #options: MetricsOptions;
  #server: MetricsServer | undefined;

  /** An engine serving `options.endpoint`. */
  constructor(options: MetricsOptions) {
    parseMetricsUrl(options.endpoint); // a bad URL fails before anything starts
    this.#options = options;
    this.metrics = new OperatorMetrics(options);
    this.queueObserver = this.metrics.queueObserver;
  }

  /** The metrics path, for a server that answers it (the health endpoint's). */
  get path(): string {
    return parseMetricsUrl(this.#options.endpoint).path;
  }

  /** The answer to a request of the metrics path. */
  readonly route: (request: Request) => Response = metricsRoute(() => this.metrics.expose());

  async start(handle: OperatorHandle): Promise<void> {
    this.metrics.attach(handle);
    if (this.#options.shared) return;
    this.#server = await serveMetrics(this.#options.endpoint, () => this.metrics.expose());
    logger.info("Serving metrics at {url}.", { url: this.#server.url });
  }

  onCycle(record: CycleRecord): void {
    this.metrics.cycled(record);
  }

  async stop(): Promise<void> {
    await this.#server?.close();
    this.metrics.detach();
  }
}
