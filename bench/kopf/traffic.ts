/**
 * Counting the operator's API requests exactly, by who sent them.
 *
 * The apiserver's `apiserver_request_total` has no client label, and on any plane other clients
 * are busy (kube-controller-manager's informers reconnect every 5–10 minutes, the namespace
 * controller lists every resource type when a namespace goes, tests run). So the operator under
 * test gets an identity of its own (a client certificate for {@linkcode OPERATOR_USER}), and API
 * Priority and Fairness sorts that user's requests into FlowSchemas of ours — one per kind of
 * request — at the `exempt` priority level, which never queues or rejects. The apiserver then
 * counts them in `apiserver_flowcontrol_dispatched_requests_total{flow_schema}`, at dispatch (so
 * a WATCH counts when it opens).
 *
 * @module
 */

/** The user name in the operator's client certificate. */
export const OPERATOR_USER = "kopf-bench-operator";

/** The prefix of the benchmark's FlowSchema names. */
export const FLOW_PREFIX = "kopf-bench-";

/** One request class: a FlowSchema matching these verbs on these resources. */
interface RequestClass {
  name: string;
  verbs: string[];
  /** `[apiGroups, resources]`; omitted for the non-resource class. */
  resources?: [string[], string[]];
}

const WRITES = ["create", "update", "patch", "delete", "deletecollection"];

/** The request classes for a resource, most specific first (their order is their precedence). */
export function requestClasses(group: string, plural: string): RequestClass[] {
  const cr: [string[], string[]] = [[group], [plural]];
  return [
    { name: "cr-get", verbs: ["get"], resources: cr },
    { name: "cr-list", verbs: ["list"], resources: cr },
    { name: "cr-watch", verbs: ["watch"], resources: cr },
    { name: "cr-create", verbs: ["create"], resources: cr },
    { name: "cr-update", verbs: ["update"], resources: cr },
    { name: "cr-patch", verbs: ["patch"], resources: cr },
    { name: "cr-delete", verbs: ["delete", "deletecollection"], resources: cr },
    {
      name: "cr-status-write",
      verbs: ["update", "patch"],
      resources: [[group], [`${plural}/status`]],
    },
    {
      name: "events-write",
      verbs: ["create", "update", "patch"],
      resources: [["", "events.k8s.io"], ["events"]],
    },
    {
      name: "crd-list",
      verbs: ["list"],
      resources: [["apiextensions.k8s.io"], ["customresourcedefinitions"]],
    },
    {
      name: "crd-watch",
      verbs: ["watch"],
      resources: [["apiextensions.k8s.io"], ["customresourcedefinitions"]],
    },
    { name: "ns-list", verbs: ["list"], resources: [[""], ["namespaces"]] },
    { name: "ns-watch", verbs: ["watch"], resources: [[""], ["namespaces"]] },
    { name: "any-list", verbs: ["list"], resources: [["*"], ["*"]] },
    { name: "any-watch", verbs: ["watch"], resources: [["*"], ["*"]] },
    { name: "any-write", verbs: WRITES, resources: [["*"], ["*"]] },
    { name: "any-other", verbs: ["*"], resources: [["*"], ["*"]] },
    { name: "non-resource", verbs: ["*"] },
  ];
}

/** The FlowSchemas that sort the operator's requests into the classes (to apply). */
export function flowSchemas(group: string, plural: string): Record<string, unknown>[] {
  return requestClasses(group, plural).map((c, index) => ({
    apiVersion: "flowcontrol.apiserver.k8s.io/v1",
    kind: "FlowSchema",
    metadata: { name: `${FLOW_PREFIX}${c.name}` },
    spec: {
      // After `exempt` (1) and `probes` (2); the subject makes them match the operator only.
      matchingPrecedence: 20 + index,
      priorityLevelConfiguration: { name: "exempt" },
      rules: [{
        subjects: [{ kind: "User", user: { name: OPERATOR_USER } }],
        ...(c.resources
          ? {
            resourceRules: [{
              verbs: c.verbs,
              apiGroups: c.resources[0],
              resources: c.resources[1],
              clusterScope: true,
              namespaces: ["*"],
            }],
          }
          : { nonResourceRules: [{ verbs: c.verbs, nonResourceURLs: ["*"] }] }),
      }],
    },
  }));
}

/** Request counts by class name (without the prefix). */
export type ClassCounts = Record<string, number>;

/** The benchmark's classes out of `/metrics` text. */
export function parseClassCounts(metricsText: string): ClassCounts {
  const counts: ClassCounts = {};
  const prefix = "apiserver_flowcontrol_dispatched_requests_total{";
  for (const line of metricsText.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const schema = line.match(/flow_schema="([^"]*)"/)?.[1] ?? "";
    if (!schema.startsWith(FLOW_PREFIX)) continue;
    const name = schema.slice(FLOW_PREFIX.length);
    counts[name] = (counts[name] ?? 0) + Number(line.slice(line.lastIndexOf("}") + 1).trim());
  }
  return counts;
}

/** Requests made between two readings, by class (zero classes left out). */
export function countsSince(before: ClassCounts, after: ClassCounts): ClassCounts {
  const out: ClassCounts = {};
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before[name] ?? 0);
    if (d !== 0) out[name] = d;
  }
  return out;
}

/** Requests of one window, in the groups the report shows. */
export interface TrafficSummary {
  /** Writes to the watched resource: create, update, patch, delete, on the body and `/status`. */
  writes: number;
  /** Of which to its `/status`. */
  statusWrites: number;
  /** GETs of single watched objects. */
  gets: number;
  /** LISTs of any resource. */
  lists: number;
  /** WATCHes opened on any resource. */
  watches: number;
  /** Events created or updated. */
  events: number;
  /** Every other resource request (peering, leases, writes elsewhere…). */
  other: number;
  /** Non-resource requests (discovery, version, OpenAPI). */
  discovery: number;
  /** All of the above. */
  total: number;
}

/** Groups class counts for the report. */
export function summarize(counts: ClassCounts): TrafficSummary {
  const n = (...names: string[]) => names.reduce((sum, name) => sum + (counts[name] ?? 0), 0);
  const summary = {
    writes: n("cr-create", "cr-update", "cr-patch", "cr-delete", "cr-status-write"),
    statusWrites: n("cr-status-write"),
    gets: n("cr-get"),
    lists: n("cr-list", "crd-list", "ns-list", "any-list"),
    watches: n("cr-watch", "crd-watch", "ns-watch", "any-watch"),
    events: n("events-write"),
    other: n("any-write", "any-other"),
    discovery: n("non-resource"),
  };
  return { ...summary, total: Object.values(counts).reduce((a, b) => a + b, 0) };
}
