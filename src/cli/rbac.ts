/**
 * `kopf rbac`: the least RBAC an operator needs, from what its handlers registered. The handler
 * files are imported in the same sandbox as `kopf run`; their selectors are resolved with the
 * cluster's discovery; the output is a ServiceAccount with a (Cluster)Role and binding.
 *
 * What is granted (Kopf's `deployment-rbac.yaml`, narrowed to what the handlers use):
 * - every served resource: `list` and `watch`, plus `patch` (and `patch` on `/status` where the
 *   resource has it) when any handler keeps state on the objects (changing handlers, daemons,
 *   timers);
 * - `events`: `create` and `patch` (events are aggregated) in the served namespaces;
 * - `customresourcedefinitions`: `list` and `watch`, so that discovery follows CRD changes;
 * - `namespaces`: `list` and `watch` when a namespace pattern is a glob or a negation.
 *
 * With the operator's metrics URL (`--metrics`), a Service for the metrics port is added next to
 * the ServiceAccount, with the `prometheus.io/*` annotations that annotation-based scrape configs
 * follow; it selects pods labelled `app.kubernetes.io/name: <name>` (label the operator's pods so).
 * A Prometheus Operator's ServiceMonitor example is in docs/operating.md.
 *
 * @module
 */
import { dump } from "js-yaml";

/** A served resource as RBAC needs it. */
export interface RbacResource {
  /** API group (`""` for the core group). */
  group: string;
  /** Plural name. */
  plural: string;
  /** Namespaced or cluster-scoped. */
  namespaced: boolean;
  /** Whether the operator writes to the objects (progress, finalizers, results). */
  patch: boolean;
  /** Whether the resource has a `/status` subresource (written separately). */
  status: boolean;
}

/** Names and scope of the manifests. */
export interface RbacOptions {
  /** Name of the ServiceAccount, roles and bindings (default `kopf-operator`). */
  name?: string;
  /** Namespace of the ServiceAccount (default: the first served namespace, else `default`). */
  serviceAccountNamespace?: string;
  /** Served namespace patterns (`-n`); none means cluster-wide. */
  namespaces?: string[];
  /**
   * Admission handlers exist: the operator may manage the webhook configurations
   * (`settings.admission.managed`), which it creates, patches and deletes at exit.
   */
  webhooks?: boolean;
  /** The operator's metrics URL (`--metrics`): add a Service for its port. */
  metrics?: string;
  /**
   * Leader election or sharding is used: a Role for their Leases, in this namespace
   * (default: the ServiceAccount's, which is where the operator in a pod keeps it).
   */
  leases?: { namespace?: string };
  /**
   * Kopf's peering is used (`--peering`): what it does with its objects — `ClusterKopfPeering`
   * for a cluster-wide operator, `KopfPeering` in each served namespace — in both groups.
   */
  peering?: boolean;
}

/** Kopf's peering objects of a scope: read, watched, and patched (the keep-alives). */
function peeringRule(plural: string): PolicyRule {
  return {
    apiGroups: ["kopf.dev", "zalando.org"],
    resources: [plural],
    verbs: ["get", "list", "watch", "patch"],
  };
}

/** What leader election (get, create, update) and sharding (also list, delete) do with Leases. */
const LEASES_RULE: PolicyRule = {
  apiGroups: ["coordination.k8s.io"],
  resources: ["leases"],
  verbs: ["get", "list", "create", "update", "delete"],
};

/** One RBAC policy rule. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

// deno-lint-ignore no-explicit-any
type Manifest = Record<string, any>;

/** Whether a namespace pattern names exactly one namespace (no glob, no negation). */
export function isPlainNamespace(pattern: string): boolean {
  return /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(pattern);
}

function resourceRules(resources: RbacResource[]): PolicyRule[] {
  const rules: PolicyRule[] = [];
  const seen = new Set<string>();
  for (const r of resources) {
    const key = `${r.group}/${r.plural}`;
    if (seen.has(key)) continue;
    seen.add(key);
    // `get`: the engine re-reads an object when a guarded JSON patch meets a newer version
    // (409/422) and before releasing a finalizer.
    const verbs = r.patch ? ["get", "list", "watch", "patch"] : ["list", "watch"];
    rules.push({ apiGroups: [r.group], resources: [r.plural], verbs });
    if (r.patch && r.status) {
      rules.push({ apiGroups: [r.group], resources: [`${r.plural}/status`], verbs: ["patch"] });
    }
  }
  return rules;
}

const EVENTS_RULE: PolicyRule = {
  apiGroups: [""],
  resources: ["events"],
  verbs: ["create", "patch"],
};
const CRDS_RULE: PolicyRule = {
  apiGroups: ["apiextensions.k8s.io"],
  resources: ["customresourcedefinitions"],
  verbs: ["list", "watch"],
};
const WEBHOOKS_RULE: PolicyRule = {
  apiGroups: ["admissionregistration.k8s.io"],
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
  verbs: ["create", "patch", "delete"],
};
const NAMESPACES_RULE: PolicyRule = {
  apiGroups: [""],
  resources: ["namespaces"],
  verbs: ["list", "watch"],
};

/**
 * The manifests: a ServiceAccount; for a cluster-wide operator (or namespace globs) one
 * ClusterRole with everything and its binding; for named namespaces a Role and RoleBinding in
 * each, plus a ClusterRole for what is cluster-scoped; with leader election or shards, a Role
 * for their Leases; with Kopf's peering, its objects.
 *
 * @example
 * ```ts
 * import { rbacManifests } from "./rbac.ts";
 * const docs = rbacManifests(
 *   [{ group: "kopf.dev", plural: "kopfexamples", namespaced: true, patch: true, status: true }],
 *   { namespaces: ["default"] },
 * );
 * // ServiceAccount, Role + RoleBinding in "default", ClusterRole + binding for CRDs
 * ```
 */
export function rbacManifests(resources: RbacResource[], options: RbacOptions = {}): Manifest[] {
  const name = options.name ?? "kopf-operator";
  const patterns = options.namespaces ?? [];
  const plain = patterns.length > 0 && patterns.every(isPlainNamespace);
  const saNamespace = options.serviceAccountNamespace ?? (plain ? patterns[0] : "default");
  const subject = { kind: "ServiceAccount", name, namespace: saNamespace };
  const docs: Manifest[] = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: saNamespace } },
  ];
  const clusterRules: PolicyRule[] = [CRDS_RULE];
  if (patterns.length > 0 && !plain) clusterRules.push(NAMESPACES_RULE);
  if (options.webhooks) clusterRules.push(WEBHOOKS_RULE);
  const namespaced = resources.filter((r) => r.namespaced);
  const clusterScoped = resources.filter((r) => !r.namespaced);
  clusterRules.push(...resourceRules(clusterScoped));
  if (!plain) {
    // Cluster-wide, or namespaces that come and go by pattern: the grants cannot be per namespace.
    clusterRules.push(...resourceRules(namespaced), EVENTS_RULE);
  }
  if (options.peering) {
    clusterRules.push(peeringRule(patterns.length ? "kopfpeerings" : "clusterkopfpeerings"));
  }
  docs.push(
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name },
      rules: clusterRules,
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [subject],
    },
  );
  if (options.metrics) docs.push(metricsService(name, saNamespace, options.metrics));
  if (plain) {
    for (const namespace of patterns) {
      docs.push(
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "Role",
          metadata: { name, namespace },
          rules: [
            ...resourceRules(namespaced),
            EVENTS_RULE,
            ...(options.peering ? [peeringRule("kopfpeerings")] : []),
          ],
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name, namespace },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
          subjects: [subject],
        },
      );
    }
  }
  if (options.leases) {
    const namespace = options.leases.namespace ?? saNamespace;
    const leases = `${name}-leases`;
    docs.push(
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: leases, namespace },
        rules: [LEASES_RULE],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: leases, namespace },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: leases },
        subjects: [subject],
      },
    );
  }
  return docs;
}

/** The Service in front of the operator's metrics port, with Prometheus's scrape annotations. */
function metricsService(name: string, namespace: string, metrics: string): Manifest {
  const url = new URL(metrics);
  const port = Number(url.port || "80");
  const path = url.pathname && url.pathname !== "/" ? url.pathname : "/metrics";
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: `${name}-metrics`,
      namespace,
      labels: { "app.kubernetes.io/name": name },
      annotations: {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": String(port),
        "prometheus.io/path": path,
      },
    },
    spec: {
      selector: { "app.kubernetes.io/name": name },
      ports: [{ name: "metrics", port, targetPort: port, protocol: "TCP" }],
    },
  };
}

/** What `kopf rbac` says above the manifests: what they cover, and what they cannot know. */
export const RBAC_HEADER: string = [
  "RBAC for a Kopf operator, printed by `kopf rbac` from the handlers it registers: what the",
  "framework does for them (list/watch, patch where state is kept, events, discovery).",
  "The handlers' own API calls (e.g. creating children) are not known here: add rules for them.",
].join("\n");

/**
 * The manifests as one YAML stream, with `header` as a comment at the top of the first document.
 *
 * @example
 * ```ts
 * import { rbacManifests, toYamlStream } from "./rbac.ts";
 * const yaml = toYamlStream(rbacManifests([], { namespaces: ["default"] }));
 * // "---\n# RBAC for a Kopf operator, …\napiVersion: v1\nkind: ServiceAccount\n…"
 * ```
 */
export function toYamlStream(docs: Manifest[], header: string = RBAC_HEADER): string {
  const comment = header
    ? header.split("\n").map((line) => `# ${line}`.trimEnd()).join("\n") + "\n"
    : "";
  return docs.map((doc, i) =>
    "---\n" + (i === 0 ? comment : "") + dump(doc, { lineWidth: -1, noRefs: true })
  ).join("");
}
