/**
 * Helpers for the engine's integration tests: a CRD of the test's own (so that the apiserver's
 * request counters are not shared with other tests running on the same control plane), an
 * in-process operator started with `kopf.run`, and the log records it produced.
 *
 * @module
 */
import { configure, type LogRecord } from "@logtape/logtape";
import * as kopf from "../../mod.ts";
import type { Obj, TestCluster } from "./cluster.ts";
import { waitFor } from "./wait.ts";

/** One captured log line: the rendered message and the record's properties. */
export interface LogLine {
  level: string;
  category: string;
  message: string;
  properties: Record<string, unknown>;
}

/** Every log record of this test process, rendered. */
export const logs: LogLine[] = [];

function renderMessage(record: LogRecord): string {
  return record.message.map((part, i) => i % 2 === 0 ? String(part) : render(part)).join("");
}

function render(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

let configured = false;

/** Capture every log record in {@linkcode logs} (and print them when `KOPF_TEST_LOGS` is set). */
export async function captureLogs(): Promise<void> {
  if (configured) return;
  configured = true;
  const print = Deno.env.get("KOPF_TEST_LOGS");
  await configure({
    reset: true,
    sinks: {
      memory: (record) => {
        const line: LogLine = {
          level: record.level,
          category: record.category.join("."),
          message: renderMessage(record),
          properties: record.properties,
        };
        logs.push(line);
        if (print) {
          const object = refOf(line);
          const ref = object?.name ? `[${object.namespace ?? ""}/${object.name}] ` : "";
          console.error(`${line.level.padEnd(7)} ${line.category} ${ref}${line.message}`);
        }
      },
    },
    loggers: [
      { category: ["kopf"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], lowestLevel: "error" },
    ],
  });
}

/** The object a log line is about (its `object` reference property). */
export function refOf(line: LogLine): { namespace?: string; name?: string } | undefined {
  const object = line.properties.object;
  return typeof object === "object" && object !== null ? object : undefined;
}

/** The messages logged about one object (by name, optionally namespace). */
export function objectMessages(name: string, namespace?: string): string[] {
  return logs
    .filter((l) =>
      refOf(l)?.name === name && (namespace === undefined || refOf(l)?.namespace === namespace)
    )
    .map((l) => l.message);
}

/** A test resource of its own: `<plural>.engine-tests.kopf.dev`, namespaced, with status. */
export interface TestResource {
  group: string;
  version: string;
  plural: string;
  kind: string;
  /** `group/version`. */
  apiVersion: string;
  /** The collection path in a namespace. */
  path(namespace: string, name?: string): string;
}

/** Create (or reuse) a CRD of this test's own and wait until it is served. */
export async function testResource(c: TestCluster, plural: string): Promise<TestResource> {
  const group = "engine-tests.kopf.dev";
  const singular = plural.replace(/s$/, "");
  const kind = singular.charAt(0).toUpperCase() + singular.slice(1);
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      scope: "Namespaced",
      group,
      names: { kind, plural, singular },
      versions: [{
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
              status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            },
          },
        },
      }],
    },
  };
  const text = JSON.stringify(crd);
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(file, text);
  await c.applyCrd(file);
  await Deno.remove(file);
  const base = `/apis/${group}/v1`;
  await waitFor(
    async () => (await c.api("GET", base)).resources?.some((r: Obj) => r.name === plural),
    { timeout: 60, message: `${plural} to be served` },
  );
  return {
    group,
    version: "v1",
    plural,
    kind,
    apiVersion: `${group}/v1`,
    path: (namespace, name) =>
      `${base}/namespaces/${namespace}/${plural}${name === undefined ? "" : `/${name}`}`,
  };
}

/** Create an object of a test resource. */
export async function createObject(
  c: TestCluster,
  resource: TestResource,
  namespace: string,
  name: string,
  spec: Obj = {},
  metadata: Obj = {},
): Promise<Obj> {
  return await c.api("POST", resource.path(namespace), {
    apiVersion: resource.apiVersion,
    kind: resource.kind,
    metadata: { name, ...metadata },
    spec,
  });
}

/** Read an object, or `null` if it is gone. */
export async function getObject(
  c: TestCluster,
  resource: TestResource,
  namespace: string,
  name: string,
): Promise<Obj | null> {
  try {
    return await c.api("GET", resource.path(namespace, name));
  } catch (error) {
    if ((error as { status?: number }).status === 404) return null;
    throw error;
  }
}

/** Remove every finalizer from all objects of a resource in a namespace (test cleanup). */
export async function stripFinalizers(
  c: TestCluster,
  resource: TestResource,
  namespace: string,
): Promise<void> {
  const list = await c.api("GET", resource.path(namespace));
  for (const item of list.items ?? []) {
    if (!item.metadata?.finalizers?.length) continue;
    await c.api("PATCH", resource.path(namespace, item.metadata.name), {
      metadata: { finalizers: null },
    }, { contentType: "application/merge-patch+json" }).catch(() => {});
  }
}

/** An operator running in this process. */
export interface RunningOperator {
  /** Resolves when the operator has stopped. */
  readonly done: Promise<void>;
  /** Stop it and wait until it has stopped. */
  stop(): Promise<void>;
}

/** Start `kopf.run` in this process and wait until it is ready. */
export async function startOperator(
  c: TestCluster,
  options: Omit<kopf.RunOptions, "signal" | "ready" | "kubeconfig">,
): Promise<RunningOperator> {
  await captureLogs();
  const controller = new AbortController();
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => resolveReady = resolve);
  const done = kopf.run({
    ...options,
    kubeconfig: c.kubeconfig,
    signal: controller.signal,
    ready: () => resolveReady(),
  });
  await Promise.race([
    ready,
    done.then(() => {
      throw new Error("the operator stopped before it was ready");
    }),
  ]);
  return {
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

/** The number of writes (PATCH, PUT) to a resource between two metric snapshots. */
export function writesTo(
  counts: { count(filter: Record<string, string>): number },
  resource: TestResource,
): number {
  return counts.count({ verb: "PATCH", resource: resource.plural }) +
    counts.count({ verb: "PUT", resource: resource.plural });
}
