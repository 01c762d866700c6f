/**
 * Operator-level hooks: startup handlers (one retried until it succeeds), a cleanup handler,
 * a login handler giving the operator its credentials (refreshed when they expire or when the
 * API server rejects them), probes served by the liveness endpoint, and background tasks per Pod
 * started from a raw-event handler and stopped at cleanup.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -n default --liveness http://127.0.0.1:8080/healthz \
 *   examples/13-hooks/example.ts
 * kubectl apply -n default -f examples/13-hooks/pod.yaml
 * curl http://127.0.0.1:8080/healthz   # {"tasks_count":…,"monitored_objects":{…}}
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";
import * as k8s from "@kubernetes/client-node";

/** Serialises the starts of pod tasks (there are no threads here; it shows startup's use). */
let lock: Promise<void> | undefined;
/** Per namespace and name: the stop switch of the Pod's background task. */
const stoppers = new Map<string, Map<string, AbortController>>();

kopf.on.startup(function startup_fn_simple({ logger }) {
  logger.info("Initialising the task-lock...");
  lock = Promise.resolve();
});

kopf.on.startup(function startup_fn_retried({ retry, logger }) {
  if (retry < 3) {
    throw new kopf.TemporaryError(`Going to succeed in ${3 - retry}s`, { delay: 1 });
  }
  logger.info("Starting retried...");
  // throw new kopf.PermanentError("Unable to start!");
});

kopf.on.cleanup(function cleanup_fn({ logger }) {
  logger.info("Cleaning up...");
  for (const byName of stoppers.values()) {
    for (const stopper of byName.values()) stopper.abort();
  }
  logger.info("All pod-tasks are requested to stop...");
});

kopf.on.login({ errors: "permanent" }, async function login_fn({ logger }) {
  logger.info("Logging in in 2s...");
  await new Promise((resolve) => setTimeout(resolve, 2000));

  // What the framework does by itself from the kubeconfig, shrunk for the demo.
  const config = new k8s.KubeConfig();
  // Under `kopf run`, the operator's own context, handed over in memory (docs/cli.md).
  const kubeconfig = kopf.sandboxKubeconfig();
  if (kubeconfig) config.loadFromString(kubeconfig);
  else config.loadFromDefault();
  const cluster = config.getCurrentCluster();
  const user = config.getCurrentUser();
  if (!cluster) throw new kopf.PermanentError("No cluster in the kubeconfig.");
  return new kopf.ConnectionInfo({
    server: cluster.server,
    caPath: cluster.caFile,
    caData: cluster.caData,
    insecure: cluster.skipTLSVerify,
    username: user?.username,
    password: user?.password,
    token: user?.token,
    certificatePath: user?.certFile,
    certificateData: user?.certData,
    privateKeyPath: user?.keyFile,
    privateKeyData: user?.keyData,
    defaultNamespace: config.getContextObject(config.getCurrentContext())?.namespace,
    expiration: new Date(Date.now() + 30_000),
  });
});

kopf.on.probe(function tasks_count() {
  let count = 0;
  for (const byName of stoppers.values()) count += byName.size;
  return count;
});

kopf.on.probe(function monitored_objects() {
  const result: Record<string, string[]> = {};
  for (const [namespace, byName] of stoppers) result[namespace] = [...byName.keys()].sort();
  return result;
});

kopf.on.event("pods", async function pod_task({ namespace, name, logger }) {
  const previous = lock ?? Promise.resolve();
  let release!: () => void;
  lock = new Promise((resolve) => release = resolve);
  await previous;
  try {
    const ns = namespace ?? "";
    let byName = stoppers.get(ns);
    if (!byName) stoppers.set(ns, byName = new Map());
    if (!byName.has(name)) {
      const stopper = new AbortController();
      byName.set(name, stopper);
      void taskFn(logger, stopper.signal);
    }
  } finally {
    release();
  }
});

async function taskFn(logger: kopf.Logger, shouldStop: AbortSignal): Promise<void> {
  while (!shouldStop.aborted) {
    const seconds = 1 + Math.floor(Math.random() * 10);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      shouldStop.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    if (!shouldStop.aborted) logger.info("Served by the background task.");
  }
  logger.info("Serving is finished by request.");
}
