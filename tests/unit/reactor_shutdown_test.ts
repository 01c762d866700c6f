// Stopping: the first signal starts a graceful stop, the second exits at once (tested in a child
// process receiving real signals); the ultimate timer exits a hung stop and never keeps the
// process alive by itself.

import assert from "node:assert/strict";
import { armUltimateExit } from "../../src/reactor/shutdown.ts";

const SHUTDOWN = new URL("../../src/reactor/shutdown.ts", import.meta.url).href;

function child(script: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
}

async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  text: string,
  seen: { value: string },
) {
  while (!seen.value.includes(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the child ended before printing ${text}: ${seen.value}`);
    seen.value += value;
  }
}

Deno.test("first SIGTERM stops gracefully; a second one exits at once with 143", async () => {
  const proc = child(`
    import { handleSignals } from "${SHUTDOWN}";
    handleSignals(() => console.log("graceful stop"));
    console.log("ready");
    setInterval(() => {}, 1000); // a stuck graceful stop
  `);
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const seen = { value: "" };
  await readUntil(reader, "ready", seen);
  proc.kill("SIGTERM");
  await readUntil(reader, "graceful stop", seen);
  proc.kill("SIGTERM");
  const status = await proc.status;
  reader.releaseLock();
  await proc.stdout.cancel().catch(() => {});
  await proc.stderr.cancel();
  assert.equal(status.code, 143);
});

Deno.test("the ultimate timer exits a stop that hangs, with code 1", async () => {
  const proc = child(`
    import { armUltimateExit } from "${SHUTDOWN}";
    armUltimateExit(0.2);
    setInterval(() => {}, 1000); // something keeps the process alive
  `);
  const status = await proc.status;
  await proc.stdout.cancel();
  await proc.stderr.cancel();
  assert.equal(status.code, 1);
});

Deno.test("the ultimate timer does not keep a finished process alive", async () => {
  const proc = child(`
    import { armUltimateExit } from "${SHUTDOWN}";
    armUltimateExit(600);
    console.log("done");
  `);
  const output = await proc.output();
  assert.equal(output.code, 0);
  assert.equal(new TextDecoder().decode(output.stdout).trim(), "done");
});

Deno.test("a disarmed ultimate timer never fires; null disables it", async () => {
  let exited = false;
  armUltimateExit(0.01, { exit: () => exited = true }).dispose();
  armUltimateExit(null, { exit: () => exited = true }).dispose();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(exited, false);
});
