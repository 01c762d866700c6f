// Shared fakes for the engines' unit tests: a manual clock, a recording patch client, resources.

import type { SleepingClock } from "../../src/kube/time.ts";
import type { KubeObject, Resource } from "../../mod.ts";
import { applyMergePatch } from "../../src/storage/patch.ts";
import { ApiError } from "../../src/kube/errors.ts";
import { deepCopy, type JsonObject } from "../../src/storage/fields.ts";
import type { PatchingClient } from "../../src/actions/application.ts";
import { copyMemo } from "../../src/handling/memos.ts";
import type { Memo } from "../../src/registry/context.ts";

export const kex: Resource = {
  group: "kopf.dev",
  version: "v1",
  plural: "kopfexamples",
  kind: "KopfExample",
  singular: "kopfexample",
  shortcuts: ["kex"],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["list", "watch", "patch"],
  subresources: ["status"],
};

export const pods: Resource = {
  ...kex,
  group: "",
  plural: "pods",
  kind: "Pod",
  singular: "pod",
  shortcuts: ["po"],
  subresources: ["status"],
};

/** ConfigMaps (`v1`): a built-in namespaced resource every plane serves. */
export const configMaps: Resource = {
  group: "",
  version: "v1",
  plural: "configmaps",
  kind: "ConfigMap",
  singular: "configmap",
  shortcuts: ["cm"],
  categories: [],
  namespaced: true,
  preferred: true,
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  subresources: [],
};

/** Lets pending promise callbacks and zero-delay timers run. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

interface Sleeper {
  at: number;
  seq: number;
  resolve: () => void;
}

/** A clock that moves only when told; sleeps resolve in time order as it moves. */
export class ManualClock implements SleepingClock {
  t = 1_000_000;
  #sleepers: Sleeper[] = [];
  #seq = 0;

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const sleeper: Sleeper = {
        at: this.t + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.push(sleeper);
    });
  }

  setTimeout(callback: () => void, delayMs: number): unknown {
    const sleeper: Sleeper = {
      at: this.t + Math.max(0, delayMs),
      seq: this.#seq++,
      resolve: callback,
    };
    this.#sleepers.push(sleeper);
    return sleeper;
  }

  clearTimeout(handle: unknown): void {
    this.#sleepers = this.#sleepers.filter((s) => s !== handle);
  }

  /** Pending sleeps. */
  get sleeping(): number {
    return this.#sleepers.length;
  }

  /** Move forward by `ms`, waking sleepers in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    while (true) {
      await flush();
      this.#sleepers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#sleepers[0];
      if (!next || next.at > target) break;
      this.#sleepers.shift();
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
    this.t = target;
    await flush();
  }
}

/** A patch request as the fake client saw it. */
export interface SeenPatch {
  name: string;
  namespace?: string;
  subresource?: string;
  type: string;
  patch: unknown;
}

/** A client that applies merge-patches to an in-memory object and records every request. */
export class FakePatchClient implements PatchingClient {
  readonly seen: SeenPatch[] = [];
  objects = new Map<string, KubeObject>();
  rv = 100;
  fail: number | undefined;

  put(object: KubeObject): KubeObject {
    const key = `${object.metadata?.namespace}/${object.metadata?.name}`;
    const copy = deepCopy(object);
    this.objects.set(key, copy);
    return copy;
  }

  patch<T = KubeObject>(
    _resource: Resource,
    name: string,
    patch: unknown,
    options: { namespace?: string; subresource?: string; type?: "merge" | "json" } = {},
  ): Promise<T> {
    this.seen.push({
      name,
      namespace: options.namespace,
      subresource: options.subresource,
      type: options.type ?? "merge",
      patch: deepCopy(patch),
    });
    const key = `${options.namespace}/${name}`;
    const current = this.objects.get(key) ??
      { metadata: { name, namespace: options.namespace } } as KubeObject;
    if ((options.type ?? "merge") === "merge") {
      applyMergePatch(current as JsonObject, patch as JsonObject);
    }
    current.metadata = { ...current.metadata, resourceVersion: String(++this.rv) };
    this.objects.set(key, current);
    return Promise.resolve(deepCopy(current) as T);
  }

  get<T = KubeObject>(_resource: Resource, name: string, options: { namespace?: string } = {}) {
    const current = this.objects.get(`${options.namespace}/${name}`);
    return current
      ? Promise.resolve(deepCopy(current) as T)
      : Promise.reject(new ApiError({ verb: "GET", path: "/x", status: 404, message: "gone" }));
  }
}

/** An object of `kex` with a uid and a resourceVersion. */
export function kexObject(name: string, extra: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    ...extra,
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      resourceVersion: "1",
      ...(extra.metadata ?? {}),
    },
  };
}

/** Per-object memos as the operator keeps them: a copy of the operator memo per object. */
export class Memos {
  readonly map = new Map<string, Memo>();
  constructor(readonly operator: Memo = {}) {}
  readonly memo = (_resource: Resource, body: KubeObject): Memo => {
    const key = `${body.metadata?.namespace}/${body.metadata?.name}`;
    let memo = this.map.get(key);
    if (!memo) this.map.set(key, memo = copyMemo(this.operator));
    return memo;
  };
}
