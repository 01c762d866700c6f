// Memos: per-object shallow copies of the operator memo, keeping its class; MEMO_COPY decides.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { Memories } from "../../src/handling/memories.ts";

Deno.test("per-object memos are shallow copies of the operator memo, keeping its class", () => {
  class Shared {
    counter = 1;
    readonly pool = new Map<string, number>();
    bump(): number {
      return ++this.counter;
    }
  }
  const operator = new Shared();
  const memories = new Memories(operator as unknown as kopf.Memo);
  const memo = memories.recall("a", "uid-a").memo as unknown as Shared;
  assert.ok(memo instanceof Shared);
  assert.equal(memo.bump(), 2);
  assert.equal(operator.counter, 1, "the copy's own fields are its own");
  assert.equal(memo.pool, operator.pool, "shallow: nested objects are shared");
  assert.notEqual(memories.recall("b", "uid-b").memo, memo);
});

Deno.test("a memo's MEMO_COPY method decides how it is copied; returning itself makes it global", () => {
  const global = {
    hits: 0,
    [kopf.MEMO_COPY]() {
      return this;
    },
  };
  const memories = new Memories(global);
  const a = memories.recall("a", "uid-a").memo;
  const b = memories.recall("b", "uid-b").memo;
  assert.equal(a, global);
  assert.equal(b, global);
  assert.equal(kopf.copyMemo({ x: 1 }).x, 1);
});
