/**
 * The floor: a bare client, no framework, that performs only the writes the benchmark scenario
 * strictly needs — add the finalizer and write the create result to status when an object
 * appears, write the update result to status when `spec.field` changes, remove the finalizer when
 * the object is being deleted. It lists once and watches; it keeps what it did in memory (it does
 * not survive a restart, which the scenario never asks of it). It is the API server's own limit for
 * this work, to compare the frameworks against.
 *
 * Run as its own process (so its memory and CPU are measured like an operator's):
 *
 *     BENCH_SERVER=https://127.0.0.1:6443 BENCH_CA_FILE=ca.crt BENCH_CERT_FILE=op.crt \
 *       BENCH_KEY_FILE=op.key \
 *       deno run --allow-net --allow-env --allow-read bench/kopf/floor.ts \
 *       --path /apis/bench.kopf.dev/v1/namespaces/NS/benchobjects --create-keys create_fn
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Kopf's finalizer, so the floor holds objects exactly as Kopf would. */
export const FINALIZER = "kopf.zalando.org/KopfFinalizerMarker";

/** Writes in flight at most: enough to keep a local apiserver busy, bounded so a burst cannot open thousands of streams. */
export const MAX_IN_FLIGHT = 64;

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

/** One write the floor would make for an object in a given state (pure, for tests). */
export type FloorWrite =
  | { kind: "add-finalizer"; patch: Obj[] }
  | { kind: "remove-finalizer"; patch: Obj[] }
  | { kind: "status"; patch: Obj };

/** What the floor remembers of one object. */
export interface FloorMemory {
  finalizerAdded: boolean;
  finalizerRemoved: boolean;
  /** The `spec.field` value whose result was last written to status. */
  handledField?: unknown;
}

/** The writes an object needs now, given what was already done (updates `memory`). */
export function floorWrites(obj: Obj, memory: FloorMemory, createKeys: string[]): FloorWrite[] {
  const finalizers: string[] = obj.metadata.finalizers ?? [];
  const writes: FloorWrite[] = [];
  if (obj.metadata.deletionTimestamp) {
    const index = finalizers.indexOf(FINALIZER);
    if (index >= 0 && !memory.finalizerRemoved) {
      memory.finalizerRemoved = true;
      writes.push({
        kind: "remove-finalizer",
        // The test makes the removal safe against another controller's concurrent change.
        patch: [
          { op: "test", path: `/metadata/finalizers/${index}`, value: FINALIZER },
          { op: "remove", path: `/metadata/finalizers/${index}` },
        ],
      });
    }
    return writes;
  }
  if (!finalizers.includes(FINALIZER) && !memory.finalizerAdded) {
    memory.finalizerAdded = true;
    writes.push({
      kind: "add-finalizer",
      patch: obj.metadata.finalizers
        ? [{ op: "add", path: "/metadata/finalizers/-", value: FINALIZER }]
        : [{ op: "add", path: "/metadata/finalizers", value: [FINALIZER] }],
    });
  }
  const field = obj.spec?.field;
  const status: Obj = obj.status ?? {};
  const created = createKeys.every((key) => status[key] !== undefined);
  if (!created && memory.handledField === undefined) {
    memory.handledField = field;
    const result = Object.fromEntries(createKeys.map((key) => [key, { field }]));
    writes.push({ kind: "status", patch: { status: result } });
  } else if (memory.handledField !== undefined && field !== memory.handledField) {
    memory.handledField = field;
    writes.push({ kind: "status", patch: { status: { update_fn: { field } } } });
  }
  return writes;
}

class Gate {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { path: { type: "string" }, "create-keys": { type: "string", default: "create_fn" } },
  });
  const path = values.path;
  if (!path) throw new Error("--path is required");
  const createKeys = values["create-keys"]!.split(",");
  const server = Deno.env.get("BENCH_SERVER")!;
  const client = Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(Deno.env.get("BENCH_CA_FILE")!)],
    cert: await Deno.readTextFile(Deno.env.get("BENCH_CERT_FILE")!),
    key: await Deno.readTextFile(Deno.env.get("BENCH_KEY_FILE")!),
  });
  const gate = new Gate(MAX_IN_FLIGHT);
  const memory = new Map<string, FloorMemory>();

  const call = (method: string, url: string, body?: unknown, contentType?: string) =>
    fetch(`${server}${url}`, {
      method,
      client,
      headers: {
        Accept: "application/json",
        ...(contentType ? { "Content-Type": contentType } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  const write = (name: string, w: FloorWrite) =>
    gate.run(async () => {
      const url = `${path}/${name}${w.kind === "status" ? "/status" : ""}`;
      const type = w.kind === "status"
        ? "application/merge-patch+json"
        : "application/json-patch+json";
      const response = await call("PATCH", url, w.patch, type);
      const text = await response.text();
      if (!response.ok && response.status !== 404) {
        console.error(
          `floor: PATCH ${url} (${w.kind}): HTTP ${response.status}: ${text.slice(0, 200)}`,
        );
      }
    });

  const handle = (obj: Obj) => {
    const name: string = obj.metadata.name;
    let mem = memory.get(name);
    if (!mem) memory.set(name, mem = { finalizerAdded: false, finalizerRemoved: false });
    for (const w of floorWrites(obj, mem, createKeys)) write(name, w);
  };

  const list = await (await call("GET", path)).json();
  for (const item of list.items) handle(item);
  let resourceVersion: string = list.metadata.resourceVersion;
  console.error(`floor: watching ${path}`);
  while (true) {
    const query = `watch=true&allowWatchBookmarks=true&resourceVersion=${resourceVersion}`;
    const response = await call("GET", `${path}?${query}`);
    if (!response.ok) {
      throw new Error(`floor: watch: HTTP ${response.status}: ${await response.text()}`);
    }
    let partial = "";
    for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        const event = JSON.parse(line);
        if (event.type === "ERROR") throw new Error(`floor: watch error: ${line}`);
        resourceVersion = event.object.metadata.resourceVersion;
        if (event.type === "DELETED") memory.delete(event.object.metadata.name);
        else if (event.type !== "BOOKMARK") handle(event.object);
      }
    }
  }
}

if (import.meta.main) {
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  await main();
}
