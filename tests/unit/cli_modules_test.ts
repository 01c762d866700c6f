// `-m MODULE` resolved as Kopf's `-m` (docs/loading.rst: "Importable modules", `kopf run -m
// package1.module1`): through the operator's import map, else as module files under the working
// directory — with Deno's own resolution for the import map (a real `deno eval`).
import assert from "node:assert/strict";
import { UsageError } from "../../src/cli/errors.ts";
import { moduleFiles, resolveModules } from "../../src/cli/modules.ts";

function project(): { dir: string; entry: string } {
  const dir = Deno.makeTempDirSync({ prefix: "kopf-cli-modules-" });
  for (const sub of ["ops", "pkg", "tools", "kopf/src/cli", "vendor"]) {
    Deno.mkdirSync(`${dir}/${sub}`, { recursive: true });
  }
  for (const file of ["handlers.ts", "ops/handlers.ts", "pkg/mod.ts", "tools/index.js"]) {
    Deno.writeTextFileSync(`${dir}/${file}`, "export {};\n");
  }
  Deno.writeTextFileSync(`${dir}/vendor/mapped.ts`, "export {};\n");
  // The operator's entry and, above it, the deno.json whose import map the operator gets.
  Deno.writeTextFileSync(`${dir}/kopf/src/cli/child.ts`, "export {};\n");
  Deno.writeTextFileSync(
    `${dir}/kopf/deno.jsonc`,
    `{
  // comments are fine: Deno reads it
  "imports": {
    "mapped": "../vendor/mapped.ts",
    "remote-ops": "https://example.test/ops.ts",
    "yaml": "npm:js-yaml@^5.5.0",
    "gone": "../vendor/gone.ts",
  },
}
`,
  );
  return { dir, entry: `file://${dir}/kopf/src/cli/child.ts` };
}

Deno.test("-m: module names under the working directory, Kopf's dotted names included", () => {
  const { dir, entry } = project();
  const resolved = resolveModules(
    [
      "handlers",
      "handlers.ts",
      "ops.handlers",
      "ops/handlers",
      "./ops/handlers.ts",
      "pkg",
      "tools",
    ],
    { cwd: dir, entry },
  );
  assert.deepEqual(resolved.map((m) => m.localFile), [
    `${dir}/handlers.ts`,
    `${dir}/handlers.ts`,
    `${dir}/ops/handlers.ts`,
    `${dir}/ops/handlers.ts`,
    `${dir}/ops/handlers.ts`,
    `${dir}/pkg/mod.ts`,
    `${dir}/tools/index.js`,
  ]);
  // Files are imported by URL: the operator needs no import map for them.
  assert.equal(resolved[2].specifier, `file://${dir}/ops/handlers.ts`);
});

Deno.test("-m: the operator's import map comes first, and its specifier is passed on as typed", () => {
  const { dir, entry } = project();
  Deno.writeTextFileSync(`${dir}/mapped.ts`, "export {};\n"); // shadowed by the import map
  const [mapped, remote, yaml, registry] = resolveModules(
    ["mapped", "remote-ops", "yaml", "jsr:@scope/pkg"],
    { cwd: dir, entry },
  );
  assert.deepEqual(mapped, { specifier: "mapped", localFile: `${dir}/vendor/mapped.ts` });
  assert.deepEqual(remote, { specifier: "remote-ops", remote: "https://example.test/ops.ts" });
  assert.deepEqual(yaml, { specifier: "yaml" });
  assert.deepEqual(registry, { specifier: "jsr:@scope/pkg" });
});

Deno.test("-m: --deno-flag=--config=… chooses the import map", () => {
  const { dir, entry } = project();
  Deno.writeTextFileSync(`${dir}/other.json`, `{"imports": {"mine": "./ops/handlers.ts"}}`);
  const [mine] = resolveModules(["mine"], { cwd: dir, entry, denoFlags: ["--config=other.json"] });
  assert.deepEqual(mine, { specifier: "mine", localFile: `${dir}/ops/handlers.ts` });
});

Deno.test("-m: what resolves to nothing is one UsageError line naming the places looked at", () => {
  const { dir, entry } = project();
  const noConfig = `file://${dir}/ops/handlers.ts`; // no deno.json above it
  assert.throws(
    () => resolveModules(["nothing"], { cwd: dir, entry }),
    (error: Error) =>
      error instanceof UsageError && !error.message.includes("\n") &&
      error.message.startsWith(`-m nothing: not in the import map of ${dir}/kopf/deno.jsonc, `) &&
      error.message.includes(`no module file matches it in ${dir} (tried nothing, nothing.ts,`),
  );
  assert.throws(
    () => resolveModules(["nothing"], { cwd: dir, entry: noConfig }),
    (error: Error) =>
      error instanceof UsageError &&
      error.message.includes("not in an import map (the operator runs with no deno.json)") &&
      error.message.endsWith("pass --deno-flag=--config=deno.json"),
  );
  assert.throws(
    () => resolveModules(["gone"], { cwd: dir, entry }),
    new UsageError(`-m gone: the import map maps it to a missing file: ${dir}/vendor/gone.ts`),
  );
  assert.throws(
    () => resolveModules(["./ops/missing.ts"], { cwd: dir, entry }),
    /^UsageError: -m \.\/ops\/missing\.ts: no module file matches it in /,
  );
});

Deno.test("-m: the candidate files of a name, in order", () => {
  assert.deepEqual(moduleFiles("a.b", "/w").slice(0, 2), ["/w/a.b", "/w/a.b.ts"]);
  assert.ok(moduleFiles("a.b", "/w").includes("/w/a/b.ts"));
  assert.deepEqual(moduleFiles("x.ts", "/w"), [
    "/w/x.ts",
    "/w/x.ts/mod.ts",
    "/w/x.ts/index.ts",
    "/w/x.ts/mod.js",
    "/w/x.ts/index.js",
  ]);
});
