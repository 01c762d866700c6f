// Writing a cycle's outcome: /status first, the object second; guarded JSON-patches recomputed
// on a fresh body after a conflict; a 404 means gone.

import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import { writeOutcome } from "../../src/actions/application.ts";
import type { PatchOptions } from "../../src/kube/client.ts";
import { ApiError } from "../../src/kube/errors.ts";
import type { KubeObject, Resource } from "../../src/kube/resource.ts";

const RESOURCE = {
  group: "kopf.dev",
  version: "v1",
  plural: "kopfexamples",
  namespaced: true,
  subresources: ["status"],
} as unknown as Resource;
const SILENT = { debug: () => {}, warn: () => {} } as unknown as Logger;
const BODY: KubeObject = {
  metadata: { name: "ex", namespace: "ns", resourceVersion: "1", finalizers: ["a"] },
};

function client(answers: (KubeObject | number)[]) {
  const calls: { body: unknown; options: PatchOptions }[] = [];
  let gets = 0;
  return {
    calls,
    get gets() {
      return gets;
    },
    patch<T>(_r: Resource, _n: string, body: unknown, options: PatchOptions = {}): Promise<T> {
      calls.push({ body, options });
      const answer = answers.shift();
      if (typeof answer === "number") {
        return Promise.reject(new ApiError({ verb: "PATCH", path: "/p", status: answer }));
      }
      return Promise.resolve(answer as T);
    },
    get<T>(): Promise<T> {
      gets++;
      return Promise.resolve({
        metadata: { ...BODY.metadata, resourceVersion: "9", finalizers: ["a", "b"] },
      } as T);
    },
  };
}

Deno.test("status first, then the object; nothing for empty parts", async () => {
  const fake = client([{ metadata: { resourceVersion: "2" } }, {
    metadata: { resourceVersion: "3" },
  }]);
  const written = await writeOutcome({
    client: fake,
    resource: RESOURCE,
    body: BODY,
    patch: { status: { x: 1 }, metadata: { labels: { a: "b" } } },
    logger: SILENT,
  });
  assert.deepEqual(fake.calls.map((c) => [c.options.subresource, c.options.type, c.body]), [
    ["status", "merge", { status: { x: 1 } }],
    [undefined, "merge", { metadata: { labels: { a: "b" } } }],
  ]);
  assert.equal(written.writes, 2);
  assert.equal(written.object?.metadata?.resourceVersion, "3");
  const none = client([]);
  assert.equal(
    (await writeOutcome({
      client: none,
      resource: RESOURCE,
      body: BODY,
      patch: {},
      logger: SILENT,
    })).writes,
    0,
  );
});

Deno.test("a guarded JSON-patch is recomputed on the fresh object after a conflict", async () => {
  const fake = client([422, { metadata: { resourceVersion: "10" } }]);
  const written = await writeOutcome({
    client: fake,
    resource: RESOURCE,
    body: BODY,
    patch: {},
    fns: [(b) => b.metadata!.finalizers!.push("ours")],
    logger: SILENT,
  });
  assert.equal(fake.gets, 1);
  assert.deepEqual(fake.calls.map((c) => c.body), [
    [
      { op: "test", path: "/metadata/resourceVersion", value: "1" },
      { op: "add", path: "/metadata/finalizers/-", value: "ours" },
    ],
    [
      { op: "test", path: "/metadata/resourceVersion", value: "9" },
      { op: "add", path: "/metadata/finalizers/-", value: "ours" },
    ],
  ]);
  assert.equal(written.writes, 1);
});

Deno.test("a JSON-patch computed after the /status write is guarded by its new version", async () => {
  const fake = client([{ metadata: { ...BODY.metadata, resourceVersion: "2" } }, {
    metadata: { resourceVersion: "3" },
  }]);
  await writeOutcome({
    client: fake,
    resource: RESOURCE,
    body: BODY,
    patch: { status: { x: 1 } },
    fns: [(b) => b.metadata!.finalizers = []],
    logger: SILENT,
  });
  assert.deepEqual(fake.calls[1].body, [
    { op: "test", path: "/metadata/resourceVersion", value: "2" },
    { op: "remove", path: "/metadata/finalizers/0" },
  ]);
});

Deno.test("404: the object is gone, nothing more is written", async () => {
  const fake = client([404]);
  const written = await writeOutcome({
    client: fake,
    resource: RESOURCE,
    body: BODY,
    patch: { status: { x: 1 }, metadata: { labels: { a: "b" } } },
    logger: SILENT,
  });
  assert.deepEqual([written.gone, written.writes, fake.calls.length], [true, 0, 1]);
});

Deno.test("other errors are thrown (the queue retries the object)", async () => {
  const fake = client([500]);
  await assert.rejects(
    writeOutcome({
      client: fake,
      resource: RESOURCE,
      body: BODY,
      patch: { spec: {}, metadata: { labels: { a: "b" } } },
      logger: SILENT,
    }),
    ApiError,
  );
});
