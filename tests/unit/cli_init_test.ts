/**
 * `kopf init`'s choices without a cluster: the import map for JSR (the default, unreachable here)
 * and for a checkout, the project's name, and its bad input. The generated project itself is
 * checked, run and deployed in tests/e2e/init_project_test.ts.
 */
import assert from "node:assert/strict";
import { frameworkOf, init, nameOf, projectFiles } from "../../src/cli/init.ts";
import { UsageError } from "../../src/cli/errors.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("the framework from JSR by default: one import map entry, the cli by its subpath", async () => {
  const jsr = await frameworkOf(undefined, "1.2.3", "/tmp");
  assert.deepEqual(jsr, {
    frameworkImports: { "@kopf/kopf": "jsr:@kopf/kopf@^1.2.3" },
    cli: "jsr:@kopf/kopf@^1.2.3/cli",
    fromJsr: true,
  });
  const files = projectFiles({ name: "op", group: "example.com", ...jsr, denoVersion: "2.9.6" });
  const json = JSON.parse(files["deno.json"]);
  assert.deepEqual(json.imports, { "@kopf/kopf": "jsr:@kopf/kopf@^1.2.3" });
  assert.equal(
    json.tasks.run,
    "deno run -A jsr:@kopf/kopf@^1.2.3/cli run --deno-flag=--config=deno.json handlers.ts",
  );
  assert.match(
    files["Dockerfile"],
    /^RUN deno cache --frozen handlers\.ts jsr:@kopf\/kopf@\^1\.2\.3\/cli /m,
  );
  assert.doesNotMatch(files["Dockerfile"], /build context must\s+# contain it/);
  assert.match(files["deploy/deployment.yaml"], /serviceAccountName: op\n/);
});

Deno.test("a checkout as the framework: its entry points and its own dependencies", async () => {
  const local = await frameworkOf(ROOT.slice(0, -1), "0", "/");
  assert.equal(local.fromJsr, false);
  assert.equal(local.cli, `${ROOT}cli.ts`);
  assert.equal(local.frameworkImports["@kopf/kopf"], `${ROOT}mod.ts`);
  assert.equal(local.frameworkImports["@kopf/kopf/testing"], `${ROOT}testing.ts`);
  const { default: own } = await import("../../deno.json", { with: { type: "json" } });
  for (const [name, target] of Object.entries(own.imports)) {
    assert.equal(local.frameworkImports[name], target, name);
  }
});

Deno.test("bad input: a framework that is not one, a name that is no DNS label", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      frameworkOf(dir, "0", "/"),
      (e) => e instanceof UsageError && /cannot read its deno\.json/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/deno.json`, '{"name": "@other/pkg"}');
    await assert.rejects(
      frameworkOf(dir, "0", "/"),
      (e) => e instanceof UsageError && /names "@other\/pkg", not @kopf\/kopf/.test(e.message),
    );
    await assert.rejects(
      init({ dir: `${dir}/p`, name: "Not_A_Label", framework: ROOT, version: "0", log: () => {} }),
      (e) => e instanceof UsageError && /--name Not_A_Label: must be a DNS label/.test(e.message),
    );
    await assert.rejects(
      init({ dir: `${dir}/p`, group: "nodot", framework: ROOT, version: "0", log: () => {} }),
      (e) => e instanceof UsageError && /--group nodot/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(nameOf("/home/me/My_Operator/"), "my-operator");
  assert.equal(nameOf("/"), "operator");
});

Deno.test("the default (JSR) project is formatted and lint-clean as written", async () => {
  // deno check needs the published package, which is unreachable here; fmt and lint do not.
  const dir = await Deno.makeTempDir({ prefix: "kopf-init-jsr-" });
  try {
    assert.equal(await init({ dir, version: "1.2.3", log: () => {} }), 0);
    for (const args of [["fmt", "--check"], ["lint"]]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.ok(out.success, `deno ${args.join(" ")}: ${text}`);
    }
    const json = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
    assert.equal(
      json.tasks.lock,
      "deno install --entrypoint handlers.ts jsr:@kopf/kopf@^1.2.3/cli",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
