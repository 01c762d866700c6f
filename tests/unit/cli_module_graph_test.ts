/**
 * The module graph the launcher grants, from real `deno info` runs over files on disk.
 */
import assert from "node:assert/strict";
import { moduleGraph, resolutionFlags } from "../../src/cli/module_graph.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const ENTRY = new URL("../../src/cli/child.ts", import.meta.url).href;

function layout(): string {
  const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-graph-" });
  for (const sub of ["app", "shared", "outside"]) Deno.mkdirSync(`${dir}/${sub}`);
  Deno.writeTextFileSync(
    `${dir}/app/handlers.ts`,
    `import * as kopf from ${JSON.stringify(`${ROOT}/mod.ts`)};
import { greet } from "./lib.ts";
import { util } from "./util.ts";
import type { Shape } from "./types.ts";
const data = await import("./data.json", { with: { type: "json" } });
const computed = "./secret" + ".json";
export const x: Shape = { greeting: greet(util + data.default.n + computed) };
kopf.on.create("kopfexamples", function create_fn() {});
`,
  );
  Deno.writeTextFileSync(`${dir}/app/util.ts`, `export const util = "u";\n`);
  Deno.writeTextFileSync(`${dir}/app/types.ts`, `export interface Shape { greeting: string }\n`);
  Deno.writeTextFileSync(`${dir}/app/data.json`, `{"n": 1}\n`);
  Deno.writeTextFileSync(`${dir}/app/secret.json`, `{"secret": true}\n`);
  Deno.writeTextFileSync(`${dir}/shared/lib.ts`, `export const greet = (s: string) => s;\n`);
  Deno.symlinkSync(`../shared/lib.ts`, `${dir}/app/lib.ts`);
  Deno.writeTextFileSync(`${dir}/outside/secret.json`, `{"secret": true}\n`);
  Deno.symlinkSync(`../outside/secret.json`, `${dir}/app/leak.json`);
  return dir;
}

Deno.test("the grants: every local module of the graph, file by file; nothing else", async () => {
  const dir = layout();
  const graph = await moduleGraph([`${dir}/app/handlers.ts`], { entry: ENTRY });
  assert.deepEqual(graph.problems, []);
  assert.deepEqual(graph.files, [
    `${dir}/app/data.json`, // a literal import(): part of the graph
    `${dir}/app/handlers.ts`,
    `${dir}/app/lib.ts`, // the symlink, as Deno checks it…
    `${dir}/app/types.ts`,
    `${dir}/app/util.ts`,
    `${dir}/shared/lib.ts`, // …and its real path
  ]);
  // The framework's own modules are in the operator process's entry graph: never checked,
  // never granted. Neither is anything the handlers do not import (secret.json, leak.json).
  assert.ok(graph.millis >= 0);
  assert.deepEqual(graph.remote, []);
});

Deno.test("a graph that cannot be listed in full still grants its root; the problem is kept", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-graph-" });
  Deno.writeTextFileSync(`${dir}/broken.ts`, `import "./missing.ts";\nexport const x = 1;\n`);
  Deno.writeTextFileSync(`${dir}/syntax.ts`, `export const x = ;\n`);
  const graph = await moduleGraph([`${dir}/broken.ts`, `${dir}/syntax.ts`], { entry: ENTRY });
  assert.deepEqual(graph.files, [`${dir}/broken.ts`, `${dir}/syntax.ts`]);
  assert.equal(graph.problems.length, 2, graph.problems.join("\n"));
  assert.match(graph.problems[0], /missing\.ts.*Module not found/);
  assert.match(graph.problems[1], /syntax\.ts.*SyntaxError/);
});

Deno.test("deno info resolves like the operator process: the config found from its entry", () => {
  assert.deepEqual(resolutionFlags(ENTRY), [`--config=${ROOT}/deno.json`]);
  assert.deepEqual(resolutionFlags("https://jsr.io/@kopf/kopf/0.1.0/src/cli/child.ts"), [
    "--no-config",
  ]);
  // The user's own config wins; other resolution flags pass through, the rest does not.
  assert.deepEqual(
    resolutionFlags(ENTRY, ["--config=/app/deno.json", "--v8-flags=--x", "--cached-only"]),
    ["--config=/app/deno.json", "--cached-only"],
  );
  const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-graph-" });
  assert.deepEqual(resolutionFlags(`file://${dir}/child.ts`), ["--no-config"]);
});
