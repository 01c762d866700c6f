/**
 * Fixtures for the watch and informer integration tests: a private CRD per test (so that request
 * counts from the API server's /metrics belong to that test alone), a churn of writes that
 * remembers every resourceVersion it produced, and checks that what a consumer saw is consistent
 * with that history and with the server's final state.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { InformerEvent } from "../../src/cache/informer.ts";
import { KubeClient } from "../../src/kube/client.ts";
import type { KubeObject, Resource } from "../../src/kube/resource.ts";
import { HarnessApiError, type RequestCounts, type TestCluster } from "./cluster.ts";
import { waitFor } from "./wait.ts";

/** The version of the probe resource the tests use: served, but not the preferred one. */
const VERSION = "v1alpha1";

/** A private namespaced custom resource; delete it with `drop()`. */
export interface ProbeResource extends Resource {
  /** The collection path in a namespace. */
  path(namespace: string): string;
  /** Deletes the CRD (and its objects). */
  drop(): Promise<void>;
}

/**
 * Creates a CRD with a random plural in group `watchtests.kopf.dev` and waits until it is
 * served. The tests use its non-preferred version `v1alpha1`: the controller manager's garbage
 * collector and namespace deleter list every resource, but only in its preferred version (`v1`),
 * so requests counted for `v1alpha1` are the test's own (see {@linkcode countRequests}).
 */
export async function probeResource(c: TestCluster): Promise<ProbeResource> {
  const id = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  const plural = `probe${id}s`;
  const kind = `Probe${id}`;
  const group = "watchtests.kopf.dev";
  const name = `${plural}.${group}`;
  await c.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural, singular: `probe${id}`, kind },
      versions: ["v1", "v1alpha1"].map((version) => ({
        name: version,
        served: true,
        storage: version === "v1",
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
              // Kept, not pruned: handlers' results go there.
              status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            },
          },
        },
      })),
    },
  });
  await waitFor(async () => {
    const crd = await c.api(
      "GET",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
    );
    return crd.status?.conditions?.some((x: { type: string; status: string }) =>
      x.type === "Established" && x.status === "True"
    );
  }, { timeout: 60, message: `CRD ${name} to be established` });
  // Established can precede serving by a moment: wait until the collection answers.
  await waitFor(() => c.api("GET", `/apis/${group}/${VERSION}/${plural}?limit=1`), {
    timeout: 60,
    message: `${name} to be served`,
  });
  return {
    group,
    version: VERSION,
    plural,
    kind,
    singular: `probe${id}`,
    shortcuts: [],
    categories: [],
    namespaced: true,
    preferred: true,
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
    subresources: [],
    path: (namespace) => `/apis/${group}/${VERSION}/namespaces/${namespace}/${plural}`,
    drop: async () => {
      await c.api("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`)
        .catch(() => {});
    },
  };
}

/**
 * The framework's own client for a kubeconfig (the cluster's, or the fault proxy's), with short
 * retry delays so that tests recover from injected faults in seconds.
 */
export function connect(kubeconfig: string): Promise<KubeClient> {
  return KubeClient.connect({ kubeconfig, backoff: { initialMs: 100, factor: 2, maxMs: 1000 } });
}

/**
 * Requests for the probe resource counted by the API server (in a `since()` difference), by verb
 * and scope, for the version the tests use only.
 */
export function countRequests(
  counts: RequestCounts,
  resource: ProbeResource,
  filter: { verb: string; scope?: "namespace" | "cluster" | "resource" },
): number {
  return counts.series
    .filter(({ labels }) =>
      labels.verb === filter.verb && labels.resource === resource.plural &&
      labels.group === resource.group && labels.version === resource.version &&
      (filter.scope === undefined || labels.scope === filter.scope)
    )
    .reduce((sum, { value }) => sum + value, 0);
}

/**
 * Writes objects and remembers, per object, every resourceVersion the server gave back, in
 * order: the oracle that observed events are checked against.
 */
export class Churn {
  /** name → resourceVersions produced by our writes, in write order. */
  readonly history = new Map<string, string[]>();
  #c: TestCluster;
  #path: string;
  #kind: string;
  #next = 0;

  constructor(c: TestCluster, resource: ProbeResource, namespace: string) {
    this.#c = c;
    this.#path = resource.path(namespace);
    this.#kind = resource.kind;
  }

  #note(name: string, object: KubeObject): void {
    const rvs = this.history.get(name) ?? [];
    rvs.push(object.metadata!.resourceVersion!);
    this.history.set(name, rvs);
  }

  /** Creates `count` objects (with optional labels); returns their names. */
  async create(count: number, labels: Record<string, string> = {}): Promise<string[]> {
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const name = `obj-${this.#next++}`;
      const created = await this.#c.api("POST", this.#path, {
        apiVersion: `watchtests.kopf.dev/${VERSION}`,
        kind: this.#kind,
        metadata: { name, labels },
        spec: { step: 0 },
      });
      this.#note(name, created);
      names.push(name);
    }
    return names;
  }

  /** Merge-patches each object's spec once. */
  async update(names: string[]): Promise<void> {
    for (const name of names) {
      const patched = await this.#c.api(
        "PATCH",
        `${this.#path}/${name}`,
        { spec: { step: this.history.get(name)?.length ?? 0 } },
        { contentType: "application/merge-patch+json" },
      );
      this.#note(name, patched);
    }
  }

  /** Deletes the objects. */
  async delete(names: string[]): Promise<void> {
    for (const name of names) {
      try {
        await this.#c.api("DELETE", `${this.#path}/${name}`);
      } catch (error) {
        if (!(error instanceof HarnessApiError && error.status === 404)) throw error;
      }
    }
  }

  /** A mixed round: create `n`, update all but the oldest living, delete the oldest living. */
  async round(n: number, living: string[]): Promise<string[]> {
    const created = await this.create(n);
    const alive = [...living, ...created];
    await this.update(alive.slice(1));
    await this.delete(alive.slice(0, 1));
    return alive.slice(1);
  }

  /** The server's current objects: name → resourceVersion. */
  async serverState(): Promise<Map<string, string>> {
    // Listed cluster-wide with a field selector, so that the test's own LISTs are not counted
    // with the informer's namespace-scoped ones.
    const [, group, version, , namespace, plural] = this.#path.split("/").slice(1);
    const list = await this.#c.api(
      "GET",
      `/apis/${group}/${version}/${plural}?fieldSelector=metadata.namespace%3D${namespace}`,
    );
    return new Map(
      (list.items as KubeObject[]).map((o) => [o.metadata!.name!, o.metadata!.resourceVersion!]),
    );
  }
}

/** Records what a subscriber saw, per object name. */
export class Seen {
  /** name → sequence of "rv" for ADDED/MODIFIED and "DELETED" for deletions. */
  readonly perObject = new Map<string, string[]>();
  readonly all: InformerEvent[] = [];
  syncs = 0;
  relists = 0;

  readonly listener = (event: InformerEvent): void => {
    this.all.push(event);
    if (event.type === "SYNCED") {
      this.syncs++;
      if (event.relist) this.relists++;
      return;
    }
    if (event.type === "MISSING") return;
    const name = event.object.metadata?.name ?? "";
    const seq = this.perObject.get(name) ?? [];
    seq.push(event.type === "DELETED" ? "DELETED" : event.object.metadata!.resourceVersion!);
    this.perObject.set(name, seq);
  };
}

/**
 * Asserts that every object's observed states are a subsequence of the states our writes
 * produced, in the same order, with nothing repeated: nothing seen out of order or twice. Only
 * equality and positions in the write history are used, never a numeric resourceVersion order.
 */
export function assertOrdered(seen: Seen, churn: Churn): void {
  for (const [name, sequence] of seen.perObject) {
    const history = churn.history.get(name);
    assert.ok(history, `events for an object we never wrote: ${name}`);
    let position = -1;
    for (const state of sequence) {
      if (state === "DELETED") continue;
      const index = history.indexOf(state);
      assert.ok(index !== -1, `${name}: resourceVersion ${state} is not one our writes produced`);
      assert.ok(
        index > position,
        `${name}: saw ${state} after a newer state (sequence ${sequence.join(" ")}, ` +
          `history ${history.join(" ")})`,
      );
      position = index;
    }
  }
}

/** Asserts that the cache holds exactly the server's objects at the server's resourceVersions. */
export function assertSameState(
  cached: Iterable<KubeObject>,
  server: Map<string, string>,
  what = "the cache",
): void {
  const mine = new Map([...cached].map((o) => [o.metadata!.name!, o.metadata!.resourceVersion!]));
  assert.deepEqual(
    [...mine].sort(),
    [...server].sort(),
    `${what} differs from the server`,
  );
}

/** Waits until the cache holds exactly the server's state (generous timeout). */
export async function waitForSameState(
  cached: () => Iterable<KubeObject>,
  churn: Churn,
  timeout = 60,
): Promise<void> {
  const server = await churn.serverState();
  await waitFor(() => {
    const mine = new Map(
      [...cached()].map((o) => [o.metadata!.name!, o.metadata!.resourceVersion!]),
    );
    return mine.size === server.size && [...server].every(([k, v]) => mine.get(k) === v);
  }, { timeout, message: "the cache to reach the server's state" }).catch((error) => {
    assertSameState(cached(), server);
    throw error;
  });
}

/** With `KOPF_TEST_LOG=debug|info|warning` set, prints the framework's logs (for debugging). */
export async function logIfAsked(): Promise<void> {
  const level = Deno.env.get("KOPF_TEST_LOG");
  if (!level) return;
  const { configure, getConsoleSink } = await import("@logtape/logtape");
  await configure({
    reset: true,
    sinks: { console: getConsoleSink() },
    loggers: [
      { category: ["kopf"], lowestLevel: level as "debug", sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}
