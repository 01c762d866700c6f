/**
 * The managed webhook configurations (Kopf's `configuration_manager` and `build_webhooks`): a
 * `ValidatingWebhookConfiguration` and a `MutatingWebhookConfiguration` named
 * `settings.admission.managed`, one webhook per handler, created if absent and patched whenever
 * the server's client config changes; at exit only the `persistent` handlers' webhooks remain.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { KubeClient } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import type { Resource } from "../kube/resource.ts";
import { ABSENT, PRESENT } from "../registry/filters.ts";
import type { WebhookHandler, WebhookReason } from "../registry/records.ts";
import type { WebhookClientConfig } from "../storage/reviews.ts";

/** The configuration resources, by the reason of their handlers. */
export const CONFIGURATION_RESOURCES: Readonly<Record<WebhookReason, Resource>> = {
  validating: configurationResource("ValidatingWebhookConfiguration"),
  mutating: configurationResource("MutatingWebhookConfiguration"),
};

function configurationResource(kind: string): Resource {
  const singular = kind.toLowerCase();
  return {
    group: "admissionregistration.k8s.io",
    version: "v1",
    plural: `${singular}s`,
    kind,
    singular,
    shortcuts: [],
    categories: ["api-extensions"],
    namespaced: false,
    preferred: true,
    verbs: ["create", "get", "list", "patch", "delete"],
    subresources: [],
  };
}

/** A label selector requirement of `objectSelector`. */
interface Requirement {
  key: string;
  operator: "Exists" | "DoesNotExist" | "In";
  values?: string[];
}

/**
 * The `objectSelector` of a handler's label filters (Kopf's `_build_labels_selector`): values,
 * `PRESENT` and `ABSENT` become requirements; callbacks are checked when a request arrives.
 */
export function objectSelector(
  handler: WebhookHandler,
): { matchExpressions: Requirement[] } | null {
  const expressions: Requirement[] = [];
  for (const [key, value] of Object.entries(handler.labels ?? {})) {
    if (value === PRESENT) expressions.push({ key, operator: "Exists" });
    else if (value === ABSENT) expressions.push({ key, operator: "DoesNotExist" });
    else if (typeof value === "string") expressions.push({ key, operator: "In", values: [value] });
  }
  return expressions.length ? { matchExpressions: expressions } : null;
}

/**
 * A webhook's name, a DNS subdomain (Kopf's `_normalize_name`): `/` → `.`, `_` → `-`, other
 * characters as hex, then `.` and the configuration's name.
 */
export function webhookName(id: string, suffix: string): string {
  const name = id.replaceAll("/", ".").replaceAll("_", "-").replace(
    /[^A-Za-z0-9.-]/g,
    (c) => [...new TextEncoder().encode(c)].map((b) => b.toString(16).padStart(2, "0")).join(""),
  ).toLowerCase();
  return suffix ? `${name}.${suffix}` : name;
}

/** The client config with the handler's id appended to its URL's or Service's path. */
export function injectHandlerId(config: WebhookClientConfig, id: string): WebhookClientConfig {
  // As Python's quote(): slashes stay (ids of field handlers have them: `fn/spec.field`).
  const encoded = encodeURIComponent(id).replaceAll("%2F", "/");
  const result: WebhookClientConfig = { ...config };
  if (config.url !== undefined) result.url = `${config.url.replace(/\/+$/, "")}/${encoded}`;
  if (config.service !== undefined) {
    result.service = { ...config.service, path: `${config.service.path ?? ""}/${encoded}` };
  }
  return result;
}

/**
 * The webhooks of one configuration (Kopf's `build_webhooks`): per handler, rules for each of its
 * resources, its operations and subresource, `objectSelector` from its labels, `sideEffects`,
 * `failurePolicy` from `ignoreFailures`, `timeoutSeconds`, and the client config with its id.
 *
 * @example
 * ```ts
 * import { Registry } from "../registry/registry.ts";
 * import { buildWebhooks } from "./configurations.ts";
 *
 * const registry = new Registry();
 * registry.on.validate("kopfexamples", { ignoreFailures: true }, function check() {});
 * const webhooks = buildWebhooks(registry.webhookHandlers("validating"), {
 *   resources: [],
 *   suffix: "auto.kopf.dev",
 *   clientConfig: { url: "https://127.0.0.1:9443" },
 * });
 * // [{ name: "check.auto.kopf.dev", failurePolicy: "Ignore", clientConfig: { url: ".../check" }, … }]
 * ```
 */
export function buildWebhooks(
  handlers: readonly WebhookHandler[],
  options: {
    readonly resources: readonly Resource[];
    readonly suffix: string;
    readonly clientConfig: WebhookClientConfig;
    readonly persistentOnly?: boolean;
  },
): Record<string, unknown>[] {
  return handlers.filter((h) => !options.persistentOnly || h.persistent).map((handler) => {
    const selector = objectSelector(handler);
    return {
      name: webhookName(handler.id, options.suffix),
      sideEffects: handler.sideEffects ? "NoneOnDryRun" : "None",
      failurePolicy: handler.ignoreFailures ? "Ignore" : "Fail",
      matchPolicy: "Equivalent",
      rules: options.resources.filter((r) => handler.selector.check(r)).map((resource) => ({
        apiGroups: [resource.group],
        apiVersions: [resource.version],
        resources: [
          handler.subresource === null
            ? resource.plural
            : `${resource.plural}/${handler.subresource}`,
        ],
        operations: handler.operations === null ? ["*"] : [...handler.operations],
        scope: "*",
      })),
      ...(selector ? { objectSelector: selector } : {}),
      clientConfig: injectHandlerId(options.clientConfig, handler.id),
      timeoutSeconds: handler.timeout,
      admissionReviewVersions: ["v1", "v1beta1"],
    };
  });
}

/** What {@linkcode applyConfiguration} writes. */
export interface ApplyOptions {
  /** The API client. */
  readonly client: KubeClient;
  /** Validating or mutating. */
  readonly reason: WebhookReason;
  /** The configuration's name (`settings.admission.managed`). */
  readonly name: string;
  /** Its webhooks. */
  readonly webhooks: readonly Record<string, unknown>[];
  /** For the messages. */
  readonly logger: Logger;
  /** Aborts the requests. */
  readonly signal?: AbortSignal;
  /** Create it if absent (the first time); else only patch it. */
  readonly create?: boolean;
}

/**
 * Create the configuration if absent (try-or-fail: fewer RBAC verbs than check-and-do) when
 * `create` is set, else (or if it exists) replace its webhooks by a merge patch. Returns the API
 * writes made.
 */
export async function applyConfiguration(options: ApplyOptions): Promise<number> {
  const { client, reason, name, webhooks, logger, signal } = options;
  const resource = CONFIGURATION_RESOURCES[reason];
  let writes = 0;
  if (!options.create) {
    await client.patch(resource, name, { webhooks }, { signal });
    return 1;
  }
  try {
    writes++;
    await client.create(resource, {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: resource.kind,
      metadata: { name },
      webhooks,
    }, { signal });
    return writes;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409)) {
      if (error instanceof ApiError && error.status === 403) {
        logger.error("Not enough RBAC permissions to create the {kind} {name}.", {
          kind: resource.kind,
          name,
        });
      }
      throw error;
    }
  }
  writes++;
  await client.patch(resource, name, { webhooks }, { signal });
  return writes;
}
