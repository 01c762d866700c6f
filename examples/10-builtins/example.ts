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
import * as k8s from "@kubernetes/client-node";

const config = new k8s.KubeConfig();
// Under `kopf run`, the kubeconfig files are out of the handlers' reach: the operator's own
// context is handed over in memory (docs/cli.md). Elsewhere (--no-sandbox), the usual files.
const kubeconfig = kopf.sandboxKubeconfig();
if (kubeconfig) config.loadFromString(kubeconfig);
else config.loadFromDefault();
const core = config.makeApiClient(k8s.CoreV1Api);

/** The running killers, by `namespace/name`. */
const killers = new Map<string, AbortController>();

function pod_in_sight({ namespace, name, annotations, logger }: kopf.ChangingContext): void {
  if (!namespace || namespace.startsWith("kube-")) return;
  const key = `${namespace}/${name}`;
  if (killers.has(key)) return;
  const stop = new AbortController();
  killers.set(key, stop);
  const seconds = Number(annotations["example.kopf.dev/kill-after"] ?? 30);
  podKiller(namespace, name, logger, seconds, stop.signal)
    .catch((error) => logger.error(`=== Pod killing failed: ${error}`))
    .finally(() => killers.delete(key));
}

kopf.on.resume("", "v1", "pods", pod_in_sight);
kopf.on.create("", "v1", "pods", pod_in_sight);

kopf.on.delete("", "v1", "pods", function pod_deleted({ namespace, name }) {
  killers.get(`${namespace}/${name}`)?.abort();
});

async function podKiller(
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
  await core.deleteNamespacedPod({ namespace, name });
}
