// The handlers' context objects: Kopf's kwargs by their names, a copy or a live body.

import assert from "node:assert/strict";
import { changingContext, eventContext, resourceContext } from "../../src/actions/contexts.ts";
import { objectLogger } from "../../src/actions/loggers.ts";
import { Patch } from "../../src/storage/patch.ts";
import type { Resource } from "../../src/kube/resource.ts";

const BODY = {
  apiVersion: "kopf.dev/v1",
  kind: "KopfExample",
  metadata: { name: "ex", namespace: "ns", uid: "u-1", labels: { a: "b" } },
  spec: { size: 1 },
};

const RESOURCE = { group: "kopf.dev", version: "v1", plural: "kopfexamples" } as Resource;

Deno.test("changing context: Kopf's kwargs by their names", () => {
  const patch = new Patch();
  const signal = new AbortController().signal;
  const started = new Date(0);
  const context = changingContext({
    resource: RESOURCE,
    body: BODY,
    patch,
    logger: objectLogger(BODY),
    memo: { m: 1 },
    signal,
    param: "p",
    reason: "create",
    diff: [],
    old: undefined,
    new: { spec: { size: 1 } },
    retry: 2,
    started,
    runtime: 3,
    subhandlers: { subhandler: (() => {}) as never, register: (() => {}) as never },
  });
  assert.equal(context.name, "ex");
  assert.equal(context.namespace, "ns");
  assert.equal(context.uid, "u-1");
  assert.deepEqual(context.spec, { size: 1 });
  assert.deepEqual(context.status, {});
  assert.deepEqual(context.labels, { a: "b" });
  assert.deepEqual(context.annotations, {});
  assert.equal(context.meta, BODY.metadata);
  assert.equal(context.patch, patch);
  assert.equal(context.reason, "create");
  assert.equal(context.retry, 2);
  assert.equal(context.started, started);
  assert.equal(context.runtime, 3);
  assert.equal(context.param, "p");
  assert.deepEqual(context.memo, { m: 1 });
  assert.equal(context.signal, signal);
  assert.deepEqual(context.indices, {});
});

Deno.test("event context: the raw type (null for listings) and event", () => {
  const context = eventContext({
    resource: RESOURCE,
    body: BODY,
    patch: new Patch(),
    logger: objectLogger(BODY),
    memo: {},
    signal: new AbortController().signal,
    type: null,
    object: BODY,
  });
  assert.equal(context.type, null);
  assert.deepEqual(context.event, { type: null, object: BODY });
});

Deno.test("resource context: a live body reads the latest state on every property read", () => {
  let body = BODY;
  const context = resourceContext({
    resource: RESOURCE,
    body: () => body,
    patch: new Patch(),
    logger: objectLogger(BODY),
    memo: {},
    signal: new AbortController().signal,
  }, { retry: 2 });
  assert.equal(context.spec.size, 1);
  body = { ...BODY, spec: { size: 2 } };
  assert.equal(context.spec.size, 2);
  assert.equal(context.retry, 2);
  assert.deepEqual(Object.keys(context).sort().slice(0, 4), [
    "annotations",
    "api",
    "body",
    "indices",
  ]);
});
