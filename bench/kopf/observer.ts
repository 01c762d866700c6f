/**
 * The benchmark's own watch on the objects of its namespace: records when each object's create
 * and update results appear in its status and when it is gone, independent of the operator's
 * logs. One LIST and one WATCH (more only if the server ends the watch), counted by the driver.
 *
 * @module
 */
import type { DriverApi } from "./driver_api.ts";

/** A Kubernetes object as plain JSON. */
// deno-lint-ignore no-explicit-any
export type Obj = Record<string, any>;

/** What "handled" means for the operator under test. */
export interface HandledCriteria {
  /** Status keys that all must be present once the create handlers ran. */
  createKeys: string[];
  /** A status key starting with this prefix must carry `field` equal to the updated value. */
  updatePrefix: string;
}

/** True when the status holds every create handler's result. */
export function createHandled(obj: Obj, criteria: HandledCriteria): boolean {
  const status = obj.status ?? {};
  return criteria.createKeys.every((key) => status[key] !== undefined && status[key] !== null);
}

/** True when the status holds an update result for the given field value. */
export function updateHandled(obj: Obj, criteria: HandledCriteria, value: string): boolean {
  const status: Obj = obj.status ?? {};
  return Object.entries(status).some(([key, result]) =>
    key.startsWith(criteria.updatePrefix) && result?.field === value
  );
}

/** Observed times (epoch milliseconds) by object name. */
export class Observer {
  readonly createdAt = new Map<string, number>();
  readonly updatedAt = new Map<string, number>();
  readonly goneAt = new Map<string, number>();
  /** Which update value counts as handled (set by the scenario before it updates). */
  updateValue: string | undefined;
  /** When the last event of any kind (including bookmarks) arrived. */
  lastEventAt = Date.now();
  /** Watch events seen, by type. */
  readonly eventCounts: Record<string, number> = {};
  /** Watch failures that were retried (normally none). */
  readonly errors: string[] = [];
  /**
   * Watches opened after the first: the server ends a watch whose client falls behind
   * ("Forcing watcher close due to unresponsiveness"), and the observer resumes from the last
   * resourceVersion, losing nothing but time.
   */
  reconnects = 0;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #resourceVersion = "";
  #present = new Set<string>();
  #reader: ReadableStreamDefaultReader<string> | undefined;

  constructor(
    readonly api: DriverApi,
    /** The collection path, e.g. `/apis/g/v1/namespaces/ns/plural`. */
    readonly path: string,
    readonly criteria: HandledCriteria,
  ) {}

  /** Lists, then keeps watching in the background; resolves once the watch is open. */
  async start(): Promise<void> {
    await this.#list();
    let opened!: () => void;
    const open = new Promise<void>((resolve) => opened = resolve);
    this.#loop = this.#watchLoop(opened);
    await Promise.race([open, this.#loop]);
  }

  async #list(): Promise<void> {
    const list = await this.api.request("GET", this.path);
    const names = new Set<string>();
    for (const item of list.items ?? []) {
      names.add(item.metadata.name);
      this.#seen(item);
    }
    for (const name of this.#present) if (!names.has(name)) this.#gone(name);
    this.#resourceVersion = list.metadata.resourceVersion;
  }

  async #watchLoop(opened: () => void): Promise<void> {
    const signal = this.#abort.signal;
    let attempt = 0;
    while (!signal.aborted) {
      if (attempt++ > 0) this.reconnects++;
      try {
        const query =
          `watch=true&allowWatchBookmarks=true&resourceVersion=${this.#resourceVersion}`;
        const response = await this.api.fetch(
          "GET",
          `${this.path}?${query}`,
          undefined,
          undefined,
          signal,
        );
        opened();
        if (!response.ok) {
          await response.body?.cancel();
          if (response.status === 410) await this.#list();
          else await new Promise((resolve) => setTimeout(resolve, 500));
          continue;
        }
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        this.#reader = reader;
        let partial = "";
        while (true) {
          const { done, value } = await reader.read();
          if (done) break;
          const parts = (partial + value).split("\n");
          partial = parts.pop() ?? "";
          for (const line of parts) if (line.trim()) await this.#event(JSON.parse(line));
        }
      } catch (error) {
        if (signal.aborted) return;
        this.errors.push(String(error));
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  async #event(event: { type: string; object: Obj }): Promise<void> {
    this.lastEventAt = Date.now();
    this.eventCounts[event.type] = (this.eventCounts[event.type] ?? 0) + 1;
    if (event.type === "ERROR") {
      // 410 Gone as an event: the history is gone; list again and go on from there.
      if (event.object?.code === 410) await this.#list();
      return;
    }
    this.#resourceVersion = event.object.metadata.resourceVersion;
    if (event.type === "BOOKMARK") return;
    if (event.type === "DELETED") this.#gone(event.object.metadata.name);
    else this.#seen(event.object);
  }

  #seen(obj: Obj): void {
    const name: string = obj.metadata.name;
    const now = Date.now();
    this.#present.add(name);
    if (!this.createdAt.has(name) && createHandled(obj, this.criteria)) {
      this.createdAt.set(name, now);
    }
    if (
      this.updateValue !== undefined && !this.updatedAt.has(name) &&
      updateHandled(obj, this.criteria, this.updateValue)
    ) {
      this.updatedAt.set(name, now);
    }
  }

  #gone(name: string): void {
    this.#present.delete(name);
    if (!this.goneAt.has(name)) this.goneAt.set(name, Date.now());
  }

  /** Names of the objects that exist now, as far as the watch knows. */
  present(): string[] {
    return [...this.#present];
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#abort.abort();
    // Aborting the fetch has been seen not to wake a read pending on a long-idle watch body;
    // cancelling the reader does, and the wait is bounded either way.
    this.#reader?.cancel().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#loop?.catch(() => {}),
      new Promise((resolve) => timer = setTimeout(resolve, 5000)),
    ]);
    clearTimeout(timer);
  }
}
