/**
 * Admission webhooks as a background engine (Kopf's `admission_webhook_server` and the two
 * `configuration_manager`s): at start, after the startup handlers have set
 * `settings.admission.server`, it resolves the admission handlers' resources, starts the server
 * with the operator's {@linkcode WebhookFn}, and — with `settings.admission.managed` — writes
 * the webhook configurations for every client config the server yields (a new certificate, a new
 * address); at stop it stops serving and leaves only the `persistent` handlers' webhooks.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { BackgroundEngine, OperatorHandle } from "../handling/contracts.ts";
import { copyMemo } from "../handling/memos.ts";
import { Discovery } from "../kube/discovery.ts";
import { ApiError } from "../kube/errors.ts";
import type { Resource } from "../kube/resource.ts";
import type { Memo } from "../registry/context.ts";
import type { WebhookHandler, WebhookReason } from "../registry/records.ts";
import type { Registry } from "../registry/registry.ts";
import type {
  ClusterInfo,
  WebhookClientConfig,
  WebhookServeContext,
  WebhookServerProtocol,
} from "../storage/reviews.ts";
import { admissionFn } from "./admission.ts";
import { applyConfiguration, buildWebhooks, CONFIGURATION_RESOURCES } from "./configurations.ts";

const logger = getLogger(["kopf", "webhooks"]);

const REASONS: readonly WebhookReason[] = ["validating", "mutating"];

/** What {@linkcode AdmissionEngine} serves. */
export interface AdmissionEngineOptions {
  /** The handlers. */
  readonly registry: Registry;
  /** The operator-wide memo. */
  readonly memo: Memo;
  /** The operator's indexes. */
  readonly indices?: () => Readonly<Record<string, unknown>>;
}

function iterate(
  server: WebhookServerProtocol,
  fn: Parameters<Extract<WebhookServerProtocol, (...args: never[]) => unknown>>[0],
  context: WebhookServeContext,
): AsyncIterable<WebhookClientConfig> {
  return typeof server === "function" ? server(fn, context) : server.serve(fn, context);
}

/** The webhook server and the managed configurations, started with the operator. */
export class AdmissionEngine implements BackgroundEngine {
  readonly name = "admission";
  readonly #options: AdmissionEngineOptions;
  readonly #stop = new AbortController();
  #serving: Promise<void> | undefined;
  #resources: readonly Resource[] = [];
  #last: WebhookClientConfig | undefined;
  #handle: OperatorHandle | undefined;
  readonly #created = new Set<WebhookReason>();

  /** An engine for these handlers. */
  constructor(options: AdmissionEngineOptions) {
    this.#options = options;
  }

  /** Starts serving; resolves once the first client config is applied (or serving failed). */
  async start(handle: OperatorHandle): Promise<void> {
    this.#handle = handle;
    const { registry } = this.#options;
    const { server, managed } = handle.settings.admission;
    const handlers = registry.webhookHandlers();
    if (server === null) {
      if (handlers.length) {
        throw new Error(
          `Admission handlers exist (${handlers.map((h) => h.id).join(", ")}), but no webhook ` +
            "server is configured in settings.admission.server (or kopf run --webhook-server).",
        );
      }
      return;
    }
    handle.signal.addEventListener("abort", () => this.#stop.abort(), { once: true });
    const discovery = new Discovery(handle.client);
    const resolve = async (refresh: boolean) => {
      const all = refresh
        ? await discovery.refresh({ signal: this.#stop.signal })
        : await discovery.resources({ signal: this.#stop.signal });
      const found = new Map<string, Resource>();
      for (const handler of handlers) {
        for (const r of handler.selector.match(all)) {
          found.set(`${r.plural}.${r.version}.${r.group}`, r);
        }
      }
      return this.#resources = [...found.values()];
    };
    await resolve(false);
    const fn = admissionFn({
      registry,
      resources: () => this.#resources,
      refresh: () => resolve(true),
      execution: handle.settings.execution,
      memories: handle.memories,
      api: handle.api,
      memo: copyMemo(this.#options.memo),
      indices: this.#options.indices,
      signal: this.#stop.signal,
    });
    const cluster: ClusterInfo = {
      server: handle.client.server,
      caPem: handle.client.config.tls?.caPem,
      version: () => handle.client.request("GET", "/version", { signal: this.#stop.signal }),
    };
    const first = Promise.withResolvers<void>();
    const iterator = iterate(server, fn, { signal: this.#stop.signal, cluster })[
      Symbol.asyncIterator
    ]();
    let started = false;
    this.#serving = (async () => {
      try {
        while (true) {
          const next = await iterator.next();
          if (next.done) break;
          this.#last = next.value;
          if (managed !== null) await this.#apply(managed, handlers, next.value, false);
          first.resolve();
          started = true;
          if (this.#stop.signal.aborted) break;
        }
        if (!started) throw new Error("The webhook server stopped before it served.");
        if (!this.#stop.signal.aborted) {
          throw new Error("its client configs ended: it stopped serving");
        }
      } catch (error) {
        first.reject(error);
        if (!this.#stop.signal.aborted && started) {
          // As Kopf: the operator stops (and its non-persistent webhooks go with it) rather than
          // leave webhooks pointing at a server that is gone.
          const message = error instanceof Error ? error.message : String(error);
          logger.error("The webhook server failed; the operator stops: {message}", { message });
          handle.fail(new Error(`The webhook server failed: ${message}`));
        }
      } finally {
        await iterator.return?.();
        if (typeof server === "object" && Symbol.asyncDispose in server) {
          await (server as unknown as AsyncDisposable)[Symbol.asyncDispose]();
        }
      }
    })();
    await first.promise;
  }

  async #apply(
    name: string,
    handlers: readonly WebhookHandler[],
    clientConfig: WebhookClientConfig,
    cleanup: boolean,
  ): Promise<void> {
    const client = this.#handle!.client;
    for (const reason of REASONS) {
      const own = handlers.filter((h) => h.reason === reason);
      const webhooks = buildWebhooks(own, {
        resources: this.#resources,
        suffix: name,
        clientConfig,
        persistentOnly: cleanup,
      });
      const kind = CONFIGURATION_RESOURCES[reason].kind;
      if (cleanup && !webhooks.length) {
        // Nothing persistent is left: the configuration itself goes.
        await client.delete(CONFIGURATION_RESOURCES[reason], name).catch((error) => {
          if (!(error instanceof ApiError && error.status === 404)) throw error;
        });
        logger.info("Removed the {kind} {name}.", { kind, name });
        continue;
      }
      await applyConfiguration({
        client,
        reason,
        name,
        webhooks,
        logger,
        create: !this.#created.has(reason),
      });
      this.#created.add(reason);
      logger.info(
        cleanup
          ? "Left the persistent webhooks in the {kind} {name}."
          : "Configured the {kind} {name}.",
        { kind, name },
      );
    }
  }

  /** Stops serving, then leaves only the persistent webhooks in the managed configurations. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#serving;
    const managed = this.#handle?.settings.admission.managed ?? null;
    if (managed === null || this.#last === undefined) return;
    try {
      await this.#apply(managed, this.#options.registry.webhookHandlers(), this.#last, true);
    } catch (error) {
      logger.error("Cleaning up the webhook configurations {name} failed: {message}", {
        name: managed,
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
