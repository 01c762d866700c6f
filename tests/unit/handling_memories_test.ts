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
