// The registration functions: the public API as users write it (the brief's examples) — `deno
// test` type-checks this file, so contextual typing of handler contexts and option callbacks is
// enforced here — which registry they register into, and what they return.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";

Deno.test("Kopf-style registrations type-check and register", () => {
  const registry = new kopf.Registry();
  const previous = kopf.setDefaultRegistry(registry);
  try {
    kopf.on.create("kopfexamples", async ({ spec, name, namespace, logger, patch }) => {
      logger.info(
        `And here we are! Created ${name} in ${namespace} with spec: ${JSON.stringify(spec)}`,
      );
      patch.status.seen = true;
      return await Promise.resolve({ message: "hello" });
    });
    kopf.on.update(
      "kopf.dev/v1",
      "kopfexamples",
      { field: "spec.size", labels: { app: kopf.PRESENT } },
      ({ old, new: value, diff }) =>
        void [old, value, diff.map(([op, field]) => `${op}:${field.join(".")}`)],
    );
    kopf.on.delete("kopfexamples", { optional: false }, ({ name }) => void name);

    interface MySpec {
      size: number;
    }
    interface MyStatus {
      phase?: string;
    }
    kopf.on.create<MySpec, MyStatus>(
      "kex",
      ({ spec, status, body }) => spec.size + (status.phase ?? "").length + body.spec.size,
    );
    kopf.on.update<MySpec, MyStatus, number>(
      "kex",
      { field: "spec.size", old: 1, new: (value) => value === 2 },
      ({ old, new: value }) => (old ?? 0) + (value ?? 0),
    );
    kopf.on.create("kex", {
      when: ({ spec, reason }) => spec.a === 1 && reason === "create",
      labels: { owner: (value, { name }) => value === name },
      annotations: { skip: kopf.ABSENT },
    }, () => {});
    kopf.on.resume(
      { group: "kopf.dev", kind: "KopfExample" },
      function resume_fn({ reason, retry, runtime }) {
        return `${reason} ${retry} ${runtime}`;
      },
    );
    kopf.on.field(
      "kex",
      { field: "spec.items", value: kopf.PRESENT },
      ({ subhandler, register }) => {
        subhandler({ id: "first" }, ({ retry }) => retry);
        register(() => 1, { id: "second" });
      },
    );
    kopf.on.event("pods", ({ type, event }) => void [type, event.object.metadata.name]);
    kopf.daemon("kex", { cancellationBackoff: 5 }, async ({ stopped, signal }) => {
      while (!stopped.isSet && !signal.aborted) await stopped.wait(10);
    });
    kopf.timer(
      "kex",
      { interval: 60, initialDelay: ({ spec }) => (spec.delay ? 1 : 0) },
      ({ spec }) => ({ seen: spec }),
    );
    kopf.index("pods", ({ name, labels }) => ({ [labels.app ?? ""]: name }));
    kopf.on.startup(({ settings }) => {
      settings.execution.lifecycle = kopf.lifecycles.asap;
      settings.persistence.progressStorage = new kopf.SmartProgressStorage({
        prefix: "my-op.example.com",
      });
    });
    kopf.on.probe({ id: "ready" }, () => true);
    const isBig = ({ spec }: { spec: Record<string, unknown> }) => Number(spec.size) > 10;
    kopf.on.update("kex", { when: kopf.not(isBig) }, () => {});
    kopf.on.update("kex", { when: kopf.any([isBig, kopf.none([isBig])]) }, () => {});
    kopf.on.create((resource) => resource.group === "kopf.dev", () => {});
    kopf.on.create("", "v1", "pods", { id: "pods" }, () => {});
    kopf.on.create(kopf.EVERYTHING, { id: "everything" }, () => {});
    registry.on.create("kex", { id: "direct" }, ({ name }) => name);
    const misspelled = () =>
      // @ts-expect-error: unknown options are type errors too (and runtime errors for JS callers)
      kopf.on.create("kex", { feild: "spec" }, () => {});
    assert.throws(misspelled, /unknown option "feild"/);
    const badMode = () =>
      // @ts-expect-error: errors must be one of the modes
      kopf.on.create("kex", { errors: "sometimes" }, () => {});
    assert.throws(badMode, /errors must be one of/);
    assert.equal(registry.handlers.length, 20);
  } finally {
    kopf.setDefaultRegistry(previous);
  }
});

function fresh(): kopf.Registry {
  return new kopf.Registry();
}

Deno.test("the registry option and registry.on register into that registry, kopf.on into the global", () => {
  const previous = kopf.setDefaultRegistry(fresh());
  try {
    const mine = fresh();
    kopf.on.create("kex", { registry: mine }, function a() {});
    mine.on.create("kex", function b() {});
    kopf.on.create("kex", function c() {});
    assert.deepEqual(mine.handlers.map((h) => h.id), ["a", "b"]);
    assert.deepEqual(kopf.defaultRegistry().handlers.map((h) => h.id), ["c"]);
  } finally {
    kopf.setDefaultRegistry(previous);
  }
});

Deno.test("the global registry is shared through globalThis", () => {
  assert.equal(
    (globalThis as Record<symbol, unknown>)[Symbol.for("kopf.registry")],
    kopf.defaultRegistry(),
  );
});

Deno.test("registrations return the handler function", () => {
  const fn = function fn() {};
  assert.equal(fresh().on.create("kex", fn), fn);
  assert.equal(fresh().daemon("kex", {}, fn), fn);
});
