// Interoperability with Python Kopf's stored state: a real Kopf 1.45 operator (from PyPI, run
// with `kopf run` against the real control plane) handles objects; then our storages read what
// it wrote. Our essence must equal the diff-base Kopf stored (else objects handled by Kopf would
// look "updated" after porting), and Kopf's progress records (hashed long keys, microsecond
// timestamps) must read back as the same state without being rewritten.

import assert from "node:assert/strict";
import { computeEssences, detectReason } from "../../src/handling/causes.ts";
import { State } from "../../src/handling/progression.ts";
import { AnnotationsDiffBaseStorage } from "../../src/storage/diffbase.ts";
import type { JsonObject, RawBody } from "../../src/storage/fields.ts";
import { SmartProgressStorage } from "../../src/storage/progress.ts";
import { cluster } from "../support/cluster.ts";
import { pythonKopf, runPythonKopf } from "../support/python_kopf.ts";
import { waitFor } from "../support/wait.ts";

const LONG_ID = `a-very-long-handler-id-${"x".repeat(50)}`;

const OPERATOR = `
import kopf

@kopf.on.create('kopfexamples', labels={'interop': 'ok'})
def create_fn(spec, **_):
    return {'message': 'hello'}

@kopf.on.update('kopfexamples', labels={'interop': 'ok'}, field='spec.size')
def update_fn(**_):
    pass

@kopf.on.create('kopfexamples', labels={'interop': 'retry'})
def create_retry(**_):
    raise kopf.TemporaryError("not yet", delay=600)

@kopf.on.create('kopfexamples', labels={'interop': 'retry'}, id='${LONG_ID}')
def long_id(**_):
    raise kopf.TemporaryError("later", delay=600)
`;

Deno.test("state written by Python Kopf reads back identically with our storages", async () => {
  const c = await cluster();
  await c.applyCrd(c.kopfExampleCrd);
  const kopf = await pythonKopf();
  const ns = await c.namespace("interop");
  const dir = await Deno.makeTempDir({ prefix: "kopf-interop-" });
  const file = `${dir}/operator.py`;
  await Deno.writeTextFile(file, OPERATOR);
  const op = runPythonKopf(kopf, file, { kubeconfig: c.kubeconfig, namespaces: [ns] });
  try {
    const base = `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`;
    const create = (name: string, label: string) =>
      c.api("POST", base, {
        apiVersion: "kopf.dev/v1",
        kind: "KopfExample",
        metadata: {
          name,
          labels: { interop: label, other: "x" },
          annotations: { someannotation: "ü unicode", "example.com/note": "n" },
        },
        spec: { size: 1, items: ["a", "b"], nested: { deep: { value: 1.5 } }, text: "ünï" },
      });
    await create("ok", "ok");
    await create("retry", "retry");

    const diffbaseKey = "kopf.zalando.org/last-handled-configuration";
    const handled = await waitFor(async () => {
      const body = await c.api("GET", `${base}/ok`) as RawBody;
      const done = body.metadata?.annotations?.[diffbaseKey] &&
        (body.status as JsonObject | undefined)?.create_fn;
      return done ? body : undefined;
    }, { timeout: 120, message: "Kopf to handle the object" });

    const diffbaseStorage = new AnnotationsDiffBaseStorage();
    const progressStorage = new SmartProgressStorage();
    const essences = computeEssences({
      body: handled,
      diffbaseStorage,
      progressStorage,
      extraFields: [["spec", "size"]],
    });
    assert.ok(essences.old, "Kopf's diff-base is readable");
    assert.deepEqual(essences.diff, [], "our essence equals the one Kopf stored");
    assert.equal(
      detectReason({
        eventType: null,
        body: handled,
        old: essences.old,
        diff: essences.diff,
        initial: false,
      }).reason,
      "noop",
    );
    assert.equal(progressStorage.fetch("create_fn", handled), null, "Kopf purged its progress");

    const retrying = await waitFor(async () => {
      const body = await c.api("GET", `${base}/retry`) as RawBody;
      const a = progressStorage.fetch("create_retry", body);
      const b = progressStorage.fetch(LONG_ID, body);
      return a?.retries === 1 && b?.retries === 1 ? body : undefined;
    }, { timeout: 120, message: "Kopf to retry both handlers once" });

    const longKeys = Object.keys(retrying.metadata!.annotations!).filter((k) =>
      k.startsWith("kopf.zalando.org/a-very-long")
    );
    assert.ok(
      longKeys.length >= 1 && longKeys.every((k) => k.length - "kopf.zalando.org/".length <= 63),
    );
    const record = progressStorage.fetch("create_retry", retrying)!;
    assert.equal(record.purpose, "create");
    assert.equal(record.message, "not yet");
    assert.match(record.started!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);

    const now = new Date();
    const state = State.fromStorage(retrying, progressStorage, ["create_retry", LONG_ID], now)
      .withPurpose("create")
      .withHandlers(["create_retry", LONG_ID], now);
    assert.equal(state.get("create_retry")!.isSleeping(now), true, "Kopf's delay is honoured");
    assert.equal(state.get(LONG_ID)!.message, "later");
    const patch: JsonObject = {};
    state.store(retrying, patch, progressStorage);
    assert.deepEqual(patch, {}, "unchanged Kopf records are not rewritten");
  } finally {
    await op.stop();
    await c.deleteNamespace(ns);
    await Deno.remove(dir, { recursive: true });
  }
});
