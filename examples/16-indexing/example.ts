/**
 * Indexes: in-memory maps kept up to date from the watch stream, read by other handlers by the
 * index's id. Kopf's tuple keys are arrays here (returned in a `Map`); an index looks them up by
 * value: `is_running.get(["default", "web-0"])`.
 *
 * The probes report from the indexes at the liveness endpoint; a timer on the KopfExample objects
 * puts the running Pods of a few namespaces (its own included) into its status.
 *
 * ```sh
 * deno run -A cli.ts run --verbose -A --liveness http://127.0.0.1:8080/healthz \
 *   examples/16-indexing/example.ts
 * kubectl apply -n default -f examples/16-indexing/pods.yaml -f examples/obj.yaml
 * curl http://127.0.0.1:8080/healthz   # {"pod_count":…,"pod_names":[…]}
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

type PodKey = [namespace: string | undefined, name: string];

kopf.index("pods", function is_running({ namespace, name, status }) {
  return new Map<PodKey, boolean>([[[namespace, name], status.phase === "Running"]]);
  // {["kube-system", "traefik-..."]: [true], ["kube-system", "helm-install-traefik-..."]: [false], …}
});

kopf.index("pods", function by_label({ labels, name }) {
  return new Map(Object.entries(labels).map(([label, value]) => [[label, value], name]));
  // {["app", "traefik"]: ["traefik-..."], ["job-name", "helm-install-traefik"]: […], …}
});

kopf.on.probe(function pod_count({ indices }) {
  return (indices.is_running as kopf.Index<PodKey, boolean>).size;
});

kopf.on.probe(function pod_names({ indices }) {
  return [...(indices.is_running as kopf.Index<PodKey, boolean>).keys()].map(([, name]) => name);
});

kopf.timer("kex", { interval: 5 }, function intervalled({ indices, patch, namespace, logger }) {
  const isRunning = indices.is_running as kopf.Index<PodKey, boolean>;
  const byLabel = indices.by_label as kopf.Index<[string, string], string>;
  logger.info(`Pods by label: ${JSON.stringify(byLabel)}`);
  patch.status["running-pods"] = [...isRunning]
    .filter(([[ns]]) => ns !== undefined && ["kube-system", "default", namespace].includes(ns))
    .filter(([, running]) => running.includes(true))
    .map(([[ns, name]]) => `${ns}::${name}`)
    .sort();
});
