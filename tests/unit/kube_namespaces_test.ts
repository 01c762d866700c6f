// Kopf's namespace patterns (the cases of Kopf's own docstring and tests).

import assert from "node:assert/strict";
import { matchNamespace, matchNamespaces, specificNamespaces } from "../../src/kube/namespaces.ts";

Deno.test("namespace patterns: globs, negations, re-inclusion by the first glob only", () => {
  const first = "myapp-*, !*-pr-*, *pr-123";
  assert.equal(matchNamespace("myapp-test", first), true);
  assert.equal(matchNamespace("myapp-pr-123", first), true);
  assert.equal(matchNamespace("myapp-pr-456", first), false);
  assert.equal(matchNamespace("otherapp-pr-123", first), false);
  const negated = "!*-pr-*, *pr-123";
  assert.equal(matchNamespace("otherapp-pr-123", negated), true);
  assert.equal(matchNamespace("anyapp-anything", negated), true);
  assert.equal(matchNamespace("myapp-pr-456", negated), false);
  assert.equal(matchNamespace("default", "default"), true);
  assert.equal(matchNamespace("default2", "default"), false);
  assert.equal(matchNamespace("ns1", "ns?"), true);
  assert.equal(matchNamespace("a.b", "a?b"), true);
  assert.equal(matchNamespace("axb", "a.b"), false, "dots are literal");
  assert.equal(matchNamespace("team-a", /team-.*/), true);
  assert.equal(matchNamespace("xteam-a", /team-.*/), false, "full match");
  assert.equal(matchNamespaces("b", ["a", "b"]), true);
  assert.equal(matchNamespaces("c", ["a", "b"]), false);
});

Deno.test("plain names are watched directly; any glob needs namespace watching", () => {
  assert.deepEqual(specificNamespaces(["a", "b", "a"]), ["a", "b"]);
  assert.equal(specificNamespaces(["a", "b-*"]), null);
  assert.equal(specificNamespaces(["!a"]), null);
  assert.equal(specificNamespaces(["a,b"]), null);
  assert.equal(specificNamespaces([/a/]), null);
});
