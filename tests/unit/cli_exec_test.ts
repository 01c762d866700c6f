import assert from "node:assert/strict";
import { cString, cStringArray, libcCandidates, replaceProcess } from "../../src/cli/exec.ts";
import { launcherMode } from "../../src/cli/run.ts";

Deno.test("cStringArray: NULL-terminated pointers to NUL-terminated strings, in one buffer", () => {
  const words = ["deno", "run", "", "ä '\"", `{"a":1}`];
  const buffer = cStringArray(words);
  const view = new Deno.UnsafePointerView(Deno.UnsafePointer.of(buffer)!);
  const read: string[] = [];
  for (let i = 0;; i++) {
    const pointer = view.getPointer(i * 8);
    if (pointer === null) break;
    read.push(Deno.UnsafePointerView.getCString(pointer));
  }
  assert.deepEqual(read, words);
  // The strings live after the pointer table, inside the same buffer.
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
  const first = BigInt(Deno.UnsafePointer.value(view.getPointer(0)));
  assert.equal(first - base, BigInt((words.length + 1) * 8));
  assert.equal(buffer.length, (words.length + 1) * 8 + cString(words.join("-")).length);
});

Deno.test("libcCandidates: glibc then musl on Linux, libSystem on macOS, nothing on Windows", () => {
  assert.equal(libcCandidates("linux")[0], "libc.so.6");
  assert.ok(libcCandidates("linux").some((name) => name.startsWith("libc.musl-")));
  assert.deepEqual(libcCandidates("darwin"), ["/usr/lib/libSystem.B.dylib"]);
  assert.deepEqual(libcCandidates("windows"), []);
});

Deno.test("replaceProcess returns why when execve fails, and this process goes on", () => {
  const failure = replaceProcess("/nonexistent/kopf-exec-test", ["x"]);
  assert.deepEqual(failure, {
    reason: "execve /nonexistent/kopf-exec-test failed: ENOENT",
    expected: false,
  });
  assert.deepEqual(replaceProcess(Deno.execPath(), ["a\0b"]), {
    reason: "an argument or variable contains a NUL character",
    expected: false,
  });
});

Deno.test("launcherMode: KOPF_LAUNCHER unset or exec, spawn, anything else is bad input", () => {
  const env = (value?: string) => (name: string) => name === "KOPF_LAUNCHER" ? value : undefined;
  assert.equal(launcherMode(env()), "exec");
  assert.equal(launcherMode(env("")), "exec");
  assert.equal(launcherMode(env("exec")), "exec");
  assert.equal(launcherMode(env("spawn")), "spawn");
  assert.throws(() => launcherMode(env("fork")), /KOPF_LAUNCHER must be "exec" or "spawn"/);
  assert.equal(
    launcherMode(() => {
      throw new Deno.errors.NotCapable("no env");
    }),
    "exec",
  );
});
