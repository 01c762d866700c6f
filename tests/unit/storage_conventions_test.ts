// Key mangling compared with Python Kopf's own functions: the expected values in the fixture
// were computed by kopf 1.45 (tests/support/fixtures/storage_kopf_keys.py).

import assert from "node:assert/strict";
import { blake2b } from "../../src/storage/_blake2b.ts";
import {
  detectMarkedPrefixes,
  KeyFormer,
  makeSafeName,
  makeSuffix,
  markKey,
  storeMarker,
} from "../../src/storage/conventions.ts";
import type { JsonObject } from "../../src/storage/fields.ts";

interface KeyVector {
  prefix: string;
  v1: boolean;
  id: string;
  keys: string[];
  suffix: string;
  drs?: boolean;
}

const vectors: KeyVector[] = JSON.parse(
  await Deno.readTextFile(new URL("../support/fixtures/storage_kopf_keys.json", import.meta.url)),
);

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("blake2b matches Python's hashlib for digest sizes 4 and 64", () => {
  // python3 -c "import hashlib; print(hashlib.blake2b(b'x', digest_size=4).hexdigest())"
  const enc = new TextEncoder();
  assert.equal(hex(blake2b(enc.encode(""), 4)), "1271cf25");
  assert.equal(hex(blake2b(enc.encode("x"), 4)), "b1ba07e5");
  assert.equal(hex(blake2b(enc.encode("abc"), 4)), "63906248");
  assert.equal(hex(blake2b(enc.encode("a".repeat(128)), 4)), "12cabd16"); // exactly one block
  assert.equal(hex(blake2b(enc.encode("a".repeat(129)), 4)), "55ada03e"); // two blocks
  assert.equal(hex(blake2b(enc.encode("a".repeat(300)), 4)), "a5de59a0");
  assert.equal(
    hex(blake2b(enc.encode("abc"))),
    "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1" +
      "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
  );
  assert.throws(() => blake2b(new Uint8Array(), 0), RangeError);
});

Deno.test("keys match Kopf's make_keys for every prefix, id and V1 mode", () => {
  assert.ok(vectors.length > 100);
  for (const v of vectors) {
    const former = new KeyFormer({ prefix: v.prefix, v1: v.v1 });
    const body = v.drs
      ? {
        kind: "ReplicaSet",
        metadata: {
          ownerReferences: [{ kind: "Deployment", apiVersion: "apps/v1", name: "d", uid: "u" }],
        },
      }
      : undefined;
    assert.deepEqual(former.makeKeys(v.id, body), v.keys, `${v.prefix} v1=${v.v1} ${v.id}`);
    assert.equal(makeSuffix(v.id), v.suffix, v.id);
  }
});

Deno.test("keys never exceed 63 chars in the name part", () => {
  const former = new KeyFormer({ prefix: "kopf.zalando.org", v1: true });
  for (const id of ["x".repeat(200), "parent/".repeat(20) + "child"]) {
    for (const key of former.makeKeys(id)) {
      assert.ok(key.split("/")[1].length <= 63, key);
    }
  }
});

Deno.test("safe names keep Kopf's replacements and fix characters Kubernetes rejects", () => {
  assert.equal(makeSafeName("a/b<c>d"), "a.b_c_d");
  assert.equal(makeSafeName("lambda:operator.ts:12"), "lambda_operator.ts_12");
});

Deno.test("the -ofDRS mark applies only to ReplicaSets owned by Deployments", () => {
  const owner = { kind: "Deployment", apiVersion: "apps/v1", name: "d", uid: "u" };
  assert.equal(
    markKey("k", { kind: "ReplicaSet", metadata: { ownerReferences: [owner] } }),
    "k-ofDRS",
  );
  assert.equal(markKey("k", { kind: "ReplicaSet", metadata: {} }), "k");
  assert.equal(markKey("k", { kind: "Pod", metadata: { ownerReferences: [owner] } }), "k");
});

Deno.test("an empty prefix is rejected", () => {
  assert.throws(() => new KeyFormer({ prefix: "", v1: true }), /must be prefixed/);
});

Deno.test("Kopf-marked prefixes are detected by marker, by known prefix and by subdomain", () => {
  const found = detectMarkedPrefixes([
    "other.example.com/kopf-managed",
    "kopf.zalando.org/x",
    "sub.kopf.zalando.org/y",
    "example.com/z",
    "no-prefix",
  ]);
  assert.deepEqual([...found].sort(), [
    "kopf.zalando.org",
    "other.example.com",
    "sub.kopf.zalando.org",
  ]);
});

Deno.test("the kopf-managed marker is added once and only for non-kopf prefixes", () => {
  const patch: JsonObject = {};
  storeMarker("my-op.example.com", patch, { metadata: {} });
  assert.deepEqual(patch, {
    metadata: { annotations: { "my-op.example.com/kopf-managed": "yes" } },
  });

  const already: JsonObject = {};
  storeMarker("my-op.example.com", already, {
    metadata: { annotations: { "my-op.example.com/kopf-managed": "yes" } },
  });
  assert.deepEqual(already, {});

  const kopf: JsonObject = {};
  storeMarker("kopf.example.com", kopf, { metadata: {} });
  assert.deepEqual(kopf, {});
});
