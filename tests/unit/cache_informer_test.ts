// Sharing, ref-counting and fan-out of informers, driven by a scripted transport (the real
// server's side is in tests/integration/informer_*_test.ts).
import assert from "node:assert/strict";
import { type InformerEvent, Informers, isChange } from "../../src/cache/informer.ts";
import { obj, ScriptedTransport, THINGS } from "../support/scripted_transport.ts";

function describe(events: InformerEvent[]): string {
  return events.map((e) =>
    !isChange(e)
      ? e.type
      : `${e.type} ${e.key.slice(e.key.indexOf("/") + 1)}@${e.object.metadata?.resourceVersion}${
        e.initial ? " initial" : ""
      }`
  ).join(", ");
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

Deno.test("Informers.get() shares one informer per resource, namespace and label selector", async () => {
  const informers = new Informers(new ScriptedTransport());
  const a = informers.get(THINGS, { namespace: "ns" });
  assert.equal(informers.get(THINGS, { namespace: "ns" }), a);
  assert.notEqual(informers.get(THINGS, { namespace: "other" }), a);
  assert.notEqual(informers.get(THINGS, { namespace: "ns", labelSelector: "x=y" }), a);
  assert.notEqual(informers.get(THINGS), a);
  assert.equal(informers.size, 4);
  await informers.stop();
  assert.equal(informers.size, 0);
});

Deno.test("Informer runs one list/watch for all subscribers and stops with the last", async () => {
  const transport = new ScriptedTransport();
  const informers = new Informers(transport, { backoff: { initialMs: 1 } });
  const informer = informers.get(THINGS, { namespace: "ns", labelSelector: "app=web" });
  const first: InformerEvent[] = [];
  const second: InformerEvent[] = [];
  const s1 = informer.subscribe((e) => first.push(e));
  const list = await transport.nextList();
  assert.equal(list.query.labelSelector, "app=web", "the selector goes to the server");
  list.respond({
    metadata: { resourceVersion: "r2" },
    items: [
      obj("a", "1", {
        metadata: { namespace: "ns", name: "a", resourceVersion: "1", managedFields: [{}] },
      }),
    ],
  });
  await informer.waitForSync();
  const watch = await transport.nextWatch();
  assert.equal(informer.synced, true);
  assert.equal(informer.store.getByName("a", "ns")?.metadata?.managedFields, undefined, "stripped");

  const s2 = informer.subscribe((e) => second.push(e));
  assert.equal(describe(second), "ADDED ns/a@1 initial, SYNCED", "a late subscriber gets a replay");
  watch.send({ type: "MODIFIED", object: obj("a", "3") });
  await settle();
  assert.equal(describe(first), "ADDED ns/a@1 initial, SYNCED, MODIFIED ns/a@3");
  assert.equal(describe(second), "ADDED ns/a@1 initial, SYNCED, MODIFIED ns/a@3");
  assert.equal(transport.calls.length, 2, "one LIST and one WATCH for both subscribers");

  s1.unsubscribe();
  s1.unsubscribe();
  assert.equal(watch.dropped, false, "still one subscriber");
  s2.unsubscribe();
  await watch.whenDropped;
  await informer.closed();
  assert.equal(informer.stopped, true);
  assert.equal(informers.size, 0);
  assert.notEqual(informers.get(THINGS, { namespace: "ns", labelSelector: "app=web" }), informer);
  assert.throws(() => informer.subscribe(() => {}), /stopped/);
  await informers.stop();
});

Deno.test("Informer keeps delivering to others when one subscriber throws", async () => {
  const transport = new ScriptedTransport();
  const informers = new Informers(transport);
  const informer = informers.get(THINGS, { namespace: "ns" });
  const seen: string[] = [];
  informer.subscribe(() => {
    throw new Error("consumer bug");
  });
  informer.subscribe((e) => seen.push(e.type));
  (await transport.nextList()).respond({
    metadata: { resourceVersion: "r1" },
    items: [obj("a", "1")],
  });
  await informer.waitForSync();
  await transport.nextWatch();
  assert.deepEqual(seen, ["ADDED", "SYNCED"]);
  await informers.stop();
});

Deno.test("Informer announces its last copy of an object that vanished during a re-list", async () => {
  const transport = new ScriptedTransport();
  const informers = new Informers(transport, { backoff: { initialMs: 1 } });
  const informer = informers.get(THINGS, { namespace: "ns" });
  const events: InformerEvent[] = [];
  informer.subscribe((e) => events.push(e));
  (await transport.nextList()).respond({
    metadata: { resourceVersion: "r1" },
    items: [obj("a", "1", { spec: { keep: "me" } })],
  });
  (await transport.nextWatch()).send({ type: "ERROR", object: { code: 410 } });
  (await transport.nextList()).respond({ metadata: { resourceVersion: "r5" }, items: [] });
  await transport.nextWatch();
  await settle();
  assert.equal(describe(events), "ADDED ns/a@1 initial, SYNCED, DELETED ns/a@1, SYNCED");
  const deleted = events[2] as { object: { spec?: unknown } };
  assert.deepEqual(deleted.object.spec, { keep: "me" });
  assert.deepEqual(events[3], { type: "SYNCED", relist: true });
  assert.equal(informer.store.size, 0);
  assert.equal(informer.stats?.relists, 1);
  await informers.stop();
});

Deno.test("Informer.waitForSync() rejects when the informer stops first", async () => {
  const transport = new ScriptedTransport();
  const informers = new Informers(transport);
  const informer = informers.get(THINGS, { namespace: "ns" });
  const subscription = informer.subscribe(() => {});
  const waiting = informer.waitForSync();
  await transport.nextList();
  subscription.unsubscribe();
  await assert.rejects(waiting, /stopped before it synced/);
  await informers.stop();
});
