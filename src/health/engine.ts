/**
 * The health endpoint as a background engine: probes (Kopf's `on.probe` activity) at the
 * liveness URL, readiness next to it, served while the operator runs.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { runActivity } from "../engines/activities.ts";
import type { BackgroundEngine, OperatorHandle } from "../handling/contracts.ts";
import type { Memo } from "../registry/context.ts";
import type { Registry } from "../registry/registry.ts";
import { type HealthServer, ProbeCache, readinessOf, serveHealth } from "./server.ts";

const logger = getLogger(["kopf", "engines"]);

/** What {@linkcode HealthEngine} serves. */
export interface HealthOptions {
  /** The handlers (their probes). */
  readonly registry: Registry;
  /** The operator-wide memo. */
  readonly memo: Memo;
  /** The liveness URL (`--liveness`). */
  readonly liveness: string;
  /** More paths to answer on the same port (the metrics path). */
  readonly routes?: Readonly<Record<string, (request: Request) => Response>>;
}

/** The health endpoint: probes at the liveness URL, readiness next to it. */
export class HealthEngine implements BackgroundEngine {
  readonly name = "health";
  readonly #options: HealthOptions;
  readonly #indexes: () => { ready: boolean; indices: Readonly<Record<string, unknown>> };
  #server: HealthServer | undefined;
  #started = false;

  /** An engine serving `options.liveness`. */
  constructor(
    options: HealthOptions,
    indexes: () => { ready: boolean; indices: Readonly<Record<string, unknown>> },
  ) {
    this.#options = options;
    this.#indexes = indexes;
  }

  async start(handle: OperatorHandle): Promise<void> {
    const { registry, memo } = this.#options;
    const cache = new ProbeCache(() =>
      runActivity({
        registry,
        activity: "probe",
        settings: handle.settings,
        memo,
        indices: this.#indexes().indices,
        signal: handle.signal,
      })
    );
    this.#server = await serveHealth({
      endpoint: this.#options.liveness,
      routes: this.#options.routes,
      probes: () => cache.get(),
      readiness: () => {
        const watches = handle.informers.all().filter((i) => i.subscribers > 0);
        // Started: the operator serves something (or serves nothing yet has begun).
        this.#started ||= watches.length > 0;
        return readinessOf({
          watches,
          indexesReady: this.#indexes().ready,
          started: this.#started,
        });
      },
    });
    logger.info("Serving health status at {url} (readiness at {readyUrl}).", {
      url: this.#server.url,
      readyUrl: this.#server.readyUrl,
    });
  }

  async stop(): Promise<void> {
    await this.#server?.close();
  }
}
