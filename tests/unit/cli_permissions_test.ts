import assert from "node:assert/strict";
import type { ApiTarget } from "../../src/cli/api_target.ts";
import { UsageError } from "../../src/cli/errors.ts";
import {
  DEFAULT_IMPORT_HOSTS,
  listenAddressOf,
  operatorPermissions,
  Permissions,
  shellQuote,
} from "../../src/cli/permissions.ts";

const target: ApiTarget = {
  source: "kubeconfig",
  server: "https://127.0.0.1:6443",
  netAddress: "127.0.0.1:6443",
  context: "k",
  kubeconfigs: ["/home/me/.kube/config"],
  readPaths: ["/home/me/.kube/config", "/home/me/.kube/ca.crt"],
  envNames: ["KUBECONFIG"],
  execCommands: [],
  extraNet: [],
  warnings: [],
};

Deno.test("the operator gets the API server, its listeners, its files and nothing else", () => {
  const flags = operatorPermissions({
    target,
    moduleFiles: ["/app/handlers.ts", "/app/more.ts", "/lib/x.ts"],
    listen: ["0.0.0.0:8080"],
  }).toFlags();
  assert.deepEqual(flags, [
    "--no-prompt",
    "--allow-net=127.0.0.1:6443,0.0.0.0:8080",
    // Module files one by one: never their directories.
    "--allow-read=/home/me/.kube/config,/home/me/.kube/ca.crt,/app/handlers.ts,/app/more.ts," +
    "/lib/x.ts",
    "--allow-env=KUBECONFIG,POD_ID,POD_NAME,HOSTNAME",
    "--ignore-env",
  ]);
});

Deno.test("a handed-over kubeconfig replaces the kubeconfig files and the variables finding them", () => {
  const flags = operatorPermissions({
    target: { ...target, execCommands: ["/usr/local/bin/aws"] },
    handoff: { readPaths: ["/var/run/token"], execCommands: ["/usr/local/bin/aws"] },
    moduleFiles: ["/app/handlers.ts"],
  }).toFlags();
  assert.deepEqual(flags, [
    "--no-prompt",
    "--allow-net=127.0.0.1:6443",
    "--allow-read=/var/run/token,/app/handlers.ts",
    "--allow-env=KOPF_SANDBOX_KUBECONFIG,POD_ID,POD_NAME,HOSTNAME",
    "--allow-run=/usr/local/bin/aws",
    "--ignore-env",
  ]);
  const bare = operatorPermissions({
    target,
    handoff: { readPaths: [], execCommands: [] },
  }).toFlags();
  assert.deepEqual(bare, [
    "--no-prompt",
    "--allow-net=127.0.0.1:6443",
    "--allow-env=KOPF_SANDBOX_KUBECONFIG,POD_ID,POD_NAME,HOSTNAME",
    "--ignore-env",
  ]);
});

Deno.test("exec plugins get --allow-run of exactly that program; uid only when asked", () => {
  const flags = operatorPermissions({
    target: { ...target, execCommands: ["/usr/local/bin/aws"] },
    sysUid: true,
  }).toFlags();
  assert.ok(flags.includes("--allow-run=/usr/local/bin/aws"));
  assert.ok(flags.includes("--allow-sys=uid"));
  const plain = operatorPermissions({ target }).toFlags();
  assert.ok(!plain.some((f) => f.startsWith("--allow-run") || f.startsWith("--allow-sys")));
});

Deno.test("user flags merge into the grants; other deno flags pass through", () => {
  const flags = operatorPermissions({
    target,
    extraFlags: [
      "--allow-net=127.0.0.1:9999,example.test",
      "-N=other.test",
      "--allow-env=MY_VAR",
      "--allow-write=/tmp/out",
      "--config=/app/deno.json",
      "--check",
    ],
  }).toFlags();
  assert.deepEqual(flags, [
    "--no-prompt",
    "--allow-net=127.0.0.1:6443,127.0.0.1:9999,example.test,other.test",
    "--allow-read=/home/me/.kube/config,/home/me/.kube/ca.crt",
    "--allow-write=/tmp/out",
    "--allow-env=KUBECONFIG,POD_ID,POD_NAME,HOSTNAME,MY_VAR",
    "--ignore-env",
    "--config=/app/deno.json",
    "--check",
  ]);
});

Deno.test("unscoped and allow-all flags widen the grants as asked", () => {
  const env = operatorPermissions({ target, extraFlags: ["--allow-env"] }).toFlags();
  assert.ok(env.includes("--allow-env"));
  assert.ok(!env.includes("--ignore-env"), "all variables granted: nothing to ignore");
  assert.deepEqual(operatorPermissions({ target, extraFlags: ["-A"] }).toFlags(), [
    "--no-prompt",
    "--allow-all",
  ]);
  assert.throws(() => new Permissions().addFlag("--allow-everything"), UsageError);
});

Deno.test("remote handler files add their host to Deno's default import hosts", () => {
  const flags = operatorPermissions({
    target,
    remoteModules: ["https://handlers.example.test/h.ts", "http://127.0.0.1:8000/x.ts"],
  }).toFlags();
  const imports = flags.find((f) => f.startsWith("--allow-import="))!.split("=")[1].split(",");
  assert.deepEqual(imports, [
    ...DEFAULT_IMPORT_HOSTS,
    "handlers.example.test:443",
    "127.0.0.1:8000",
  ]);
});

Deno.test("liveness URLs give listen addresses; only http is accepted", () => {
  assert.equal(listenAddressOf("http://0.0.0.0:8080/healthz"), "0.0.0.0:8080");
  assert.equal(listenAddressOf("http://localhost/healthz"), "localhost:80");
  assert.throws(() => listenAddressOf("https://0.0.0.0:8443/"), UsageError);
  assert.throws(() => listenAddressOf("0.0.0.0:8080"), UsageError);
});

Deno.test("shell quoting of printed commands", () => {
  assert.equal(shellQuote("--allow-net=a:1,b:2"), "--allow-net=a:1,b:2");
  assert.equal(shellQuote("--allow-env=KOPF_*"), "'--allow-env=KOPF_*'");
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
});
