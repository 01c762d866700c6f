/**
 * `kopf rbac` output: the header says what the manifests cover and what they cannot know, as YAML
 * comments that leave the manifests as they are.
 */
import assert from "node:assert/strict";
import { loadAll } from "js-yaml";
import { RBAC_HEADER, rbacManifests, toYamlStream } from "../../src/cli/rbac.ts";

const docs = rbacManifests(
  [{ group: "kopf.dev", plural: "kopfexamples", namespaced: true, patch: true, status: true }],
  { namespaces: ["default"] },
);

Deno.test("the YAML starts with the header as comments in the first document", () => {
  const text = toYamlStream(docs);
  const lines = text.split("\n");
  assert.equal(lines[0], "---");
  const header = RBAC_HEADER.split("\n").map((line) => `# ${line}`);
  assert.deepEqual(lines.slice(1, 1 + header.length), header);
  assert.equal(lines[1 + header.length], "apiVersion: v1");
  assert.match(text, /handlers' own API calls/);
  assert.equal(text.match(/^# /gm)?.length, header.length, "only the first document has it");
});

Deno.test("the comments change nothing in the manifests; an empty header adds none", () => {
  assert.deepEqual(loadAll(toYamlStream(docs)), docs);
  const bare = toYamlStream(docs, "");
  assert.doesNotMatch(bare, /^#/m);
  assert.deepEqual(loadAll(bare), docs);
  assert.deepEqual(toYamlStream(docs, "one\ntwo").split("\n").slice(0, 3), [
    "---",
    "# one",
    "# two",
  ]);
});
