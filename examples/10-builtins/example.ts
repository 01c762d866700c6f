/**
 * Handlers of a built-in resource: Pods. Every Pod outside the `kube-*` namespaces gets a killer
 * that deletes it after 30 seconds (or after as many seconds as its annotation
 * `example.kopf.dev/kill-after` says); a Pod deleted earlier cancels its killer.
 *
 * The killers run in the background of the operator, not inside the handlers: a handler only
 * starts one, and the delete handler (which keeps a finalizer on every Pod) stops it.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default examples/10-builtins/example.ts
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

/** The running killers, by `namespace/name`. */
const killers = new Map<string, AbortController>();

function pod_in_sight(
  { namespace, name, annotations, logger, api }: kopf.ChangingContext,
): void {
  if (!namespace || namespace.startsWith("kube-")) return;
  const key = `${namespace}/${name}`;
  if (killers.has(key)) return;
  const stop = new AbortController();
  killers.set(key, stop);
  const seconds = Number(annotations["example.kopf.dev/kill-after"] ?? 30);
  podKiller(api, namespace, name, logger, seconds, stop.signal)
    .catch((error) => logger.error(`=== Pod killing failed: ${error}`))
    .finally(() => killers.delete(key));
}

kopf.on.resume("", "v1", "pods", pod_in_sight);
kopf.on.create("", "v1", "pods", pod_in_sight);

kopf.on.delete("", "v1", "pods", function pod_deleted({ namespace, name }) {
  killers.get(`${namespace}/${name}`)?.abort();
});

async function podKiller(
  api: kopf.Api,
  namespace: string,
  name: string,
  logger: kopf.Logger,
  seconds: number,
  signal: AbortSignal,
): Promise<void> {
  logger.info(`=== Pod killing happens in ${seconds}s.`);
  const slept = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(true), seconds * 1000);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(false);
    }, { once: true });
  });
  if (!slept) {
    logger.info("=== Pod killing is cancelled!");
    return;
  }
  logger.info("=== Pod killing happens NOW!");
  // The operator's own connection (docs/api.md); a Pod gone meanwhile is fine.
  await api.delete("pods", name, { namespace, missingOk: true });
}
