// Per-object memories: memos, re-created objects, read-your-writes bookkeeping.

import assert from "node:assert/strict";
import { Memories } from "../../src/handling/memories.ts";

Deno.test("memories: a shallow copy of the operator memo per object, reset for a new uid", () => {
  const shared = { nested: { a: 1 } };
  const memories = new Memories({ shared });
  const one = memories.recall("k", "uid-1");
  one.memo.own = true;
  assert.equal(one.memo.shared, shared, "shallow");
  assert.equal(memories.recall("k", "uid-1"), one);
  const other = memories.recall("k", "uid-2");
  assert.notEqual(other, one, "another object under the same name");
  assert.equal(other.memo.own, undefined);
  memories.forget("k");
  assert.equal(memories.get("k"), undefined);
});

Deno.test("memories: waiting for our own write until it is seen or times out", () => {
  const memory = new Memories().recall("k", "u");
  memory.await("5", 5000, 1000);
  assert.equal(memory.consistencyWait(2000), 4000);
  memory.see("4");
  assert.equal(memory.consistencyWait(2000), 4000, "an older version does not release it");
  memory.see("5");
  assert.equal(memory.consistencyWait(2000), 0);
  memory.await("6", 5000, 1000);
  assert.equal(memory.consistencyWait(7000), 0, "timed out: given up");
  assert.equal(memory.consistencyWait(2000), 0);
});

Deno.test("memories: a version seen before the write's response needs no wait", () => {
  const memory = new Memories().recall("k", "u");
  memory.see("7");
  memory.await("7", 5000, 0);
  assert.equal(memory.consistencyWait(1), 0);
  memory.await(undefined, 5000, 0);
  assert.equal(memory.consistencyWait(1), 0);
});

Deno.test("memories: a blank memo is made on first use, as the copy it would have been", () => {
  const operatorMemo: Record<string, unknown> = {};
  const memories = new Memories(operatorMemo);
  const memory = memories.recall("k", "u");
  operatorMemo.later = 1; // after the object was first seen: not in its copy (Kopf's copy.copy)
  assert.equal(memory.memo.later, undefined);
  assert.equal(memory.memo, memory.memo, "made once");
  assert.notEqual(memory.memo, operatorMemo);
  assert.equal(memories.recall("k2", "u2").memo.later, 1, "objects seen later copy it");

  class Typed {
    get kind(): string {
      return "typed";
    }
  }
  const typed = new Memories(new Typed() as never).recall("k", "u").memo;
  assert.ok(typed instanceof Typed, "the memo's class is kept");
  assert.equal(typed.kind, "typed");
});

Deno.test("memories: an idle object keeps no read-your-writes state", () => {
  const memory = new Memories().recall("k", "u");
  assert.equal(memory.idle, true);
  memory.expectWrite();
  assert.equal(memory.idle, false);
  memory.see("8");
  memory.see("9"); // someone else's change arrived before our response
  memory.await("8", 5000, 0);
  assert.equal(memory.consistencyWait(1), 0, "seen during the write: no wait");
  assert.equal(memory.idle, true);

  memory.expectWrite();
  memory.await("10", 5000, 0);
  assert.equal(memory.awaitedVersion, "10");
  memory.see("10");
  assert.equal(memory.awaitedVersion, undefined);
  assert.equal(memory.idle, true, "released by the watch");

  memory.expectWrite();
  for (let i = 11; i < 100; i++) memory.see(String(i));
  memory.await("12", 5000, 0);
  assert.equal(memory.consistencyWait(1), 4999, "only the last 16 versions are kept");
  assert.equal(memory.consistencyWait(6000), 0);
  assert.equal(memory.idle, true, "given up: nothing kept");
});

Deno.test("memories: the uid is the latest copy the watch delivered", () => {
  const memories = new Memories();
  const first = memories.recall("k", "uid-1");
  const again = memories.recall("k", "uid-1");
  assert.equal(again, first);
  assert.equal(again.uid, "uid-1");
  assert.equal(memories.recall("k", undefined), first, "no uid: the same object");
});

Deno.test("memories: chained tasks run in order, later, and leave no chain once settled", async () => {
  const memory = new Memories().recall("k", "u");
  const order: string[] = [];
  let release!: () => void;
  const first = memory.chain(() =>
    new Promise<void>((r) => release = () => (order.push("1"), r()))
  );
  const second = memory.chain(() => (order.push("2"), Promise.resolve()));
  assert.deepEqual(order, [], "nothing runs inside chain()");
  assert.equal(memory.idle, false);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(order, [], "the second waits for the first");
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ["1", "2"]);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(memory.idle, true, "a settled chain is dropped");
});
