/**
 * KopfRunner: output collection, exit codes, SIGTERM then SIGKILL, `await using`, restart — with a
 * stand-in operator process (a tiny script) so that the runner's own contract is tested without a
 * cluster; and once through the real `kopf run` for bad input, which needs no cluster either.
 */
import assert from "node:assert/strict";
import { KopfRunner, KopfRunnerError } from "../../testing.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

// A stand-in operator: prints to both streams, then behaves as its first argument says.
const SCRIPT = `
const mode = Deno.args[0];
// Signal listeners first: the tests stop it as soon as it has printed.
if (mode === "stubborn") {
  Deno.addSignalListener("SIGTERM", () => console.error("err: ignoring SIGTERM"));
} else {
  Deno.addSignalListener("SIGTERM", () => {
    console.error("err: Signal SIGTERM is received. Operator is stopping.");
    Deno.exit(0);
  });
}
console.log("out: started " + Deno.args.slice(1).join(" "));
console.error("err: log line");
if (mode === "exit3") Deno.exit(3);
if (mode === "late") setTimeout(() => console.error("err: late line"), 300);
setInterval(() => {}, 1000);
`;

async function standIn(): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(path, SCRIPT);
  return path;
}

function command(path: string, mode: string): string[] {
  return [Deno.execPath(), "run", "--allow-all", path, mode];
}

Deno.test("KopfRunner collects stdout and stderr and stops with SIGTERM (exit 0)", async () => {
  const script = await standIn();
  const runner = new KopfRunner(["a", "b"], { command: command(script, "normal") });
  assert.equal(runner.running, true);
  assert.equal(runner.exitCode, null);
  await runner.waitForOutput("err: log line", { timeout: 30 });
  await runner.waitForOutput(/^out: started a b$/, { timeout: 30 });
  assert.equal(await runner.stop(), 0);
  assert.equal(runner.running, false);
  assert.equal(runner.exitCode, 0);
  assert.equal(runner.killed, false);
  assert.match(runner.stdout, /^out: started a b$/m);
  assert.doesNotMatch(runner.stdout, /err:/);
  assert.match(runner.stderr, /Operator is stopping/);
  assert.match(runner.output, /out: started a b\n/);
  assert.match(runner.output, /err: log line\n/);
  assert.equal(await runner.stop(), 0, "stop() again returns the same code");
});

Deno.test("onOutput sees every line with its stream, in order", async () => {
  const script = await standIn();
  const seen: string[] = [];
  const runner = new KopfRunner(["z"], {
    command: command(script, "exit3"),
    onOutput: (line, stream) => seen.push(`${stream}: ${line}`),
  });
  await runner.wait();
  assert.deepEqual(seen.filter((l) => l.startsWith("stdout")), ["stdout: out: started z"]);
  assert.deepEqual(seen.filter((l) => l.startsWith("stderr")), ["stderr: err: log line"]);
});

Deno.test("KopfRunner kills an operator that ignores SIGTERM after the timeout", async () => {
  const script = await standIn();
  const runner = new KopfRunner([], { command: command(script, "stubborn"), timeout: 1 });
  await runner.waitForOutput("err: log line", { timeout: 30 });
  assert.equal(await runner.stop(), 137);
  assert.equal(runner.killed, true);
  assert.match(runner.output, /ignoring SIGTERM/);
});

Deno.test("await using: disposal throws KopfRunnerError when the operator failed", async () => {
  const script = await standIn();
  let caught: unknown;
  try {
    await using runner = new KopfRunner([], { command: command(script, "exit3") });
    await assert.rejects(runner.waitForOutput("never printed", { timeout: 30 }), /exited/);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof KopfRunnerError, `expected KopfRunnerError, got ${caught}`);
  assert.equal(caught.exitCode, 3);
  assert.match(caught.message, /exited with code 3/);
  assert.match(caught.output, /err: log line/);
});

Deno.test("await using: reraise false keeps disposal quiet; a clean stop never throws", async () => {
  const script = await standIn();
  {
    await using runner = new KopfRunner([], { command: command(script, "exit3"), reraise: false });
    await assert.rejects(runner.waitForOutput("never", { timeout: 30 }));
  }
  let runner: KopfRunner;
  {
    await using scoped = new KopfRunner([], { command: command(script, "normal") });
    runner = scoped;
    await scoped.waitForOutput("err: log line", { timeout: 30 });
  }
  assert.equal(runner.exitCode, 0);
  assert.equal(runner.running, false);
});

Deno.test("await using: an operator killed after the timeout is an error", async () => {
  const script = await standIn();
  await assert.rejects(
    async () => {
      await using runner = new KopfRunner([], { command: command(script, "stubborn"), timeout: 1 });
      await runner.waitForOutput("err: log line", { timeout: 30 });
    },
    (error) => error instanceof KopfRunnerError && /was killed/.test(error.message),
  );
});

Deno.test("explicit start(), stop() and a restart keep accumulating output", async () => {
  const script = await standIn();
  const runner = new KopfRunner(["x"], { command: command(script, "late"), autostart: false });
  assert.equal(runner.running, false);
  assert.equal(runner.pid, undefined);
  await assert.rejects(runner.waitForOutput("anything", { timeout: 1 }), /not started/);
  assert.equal(runner.start(), runner);
  const first = runner.pid;
  assert.equal(runner.start().pid, first, "start() while running does nothing");
  await runner.waitForOutput("late line", { timeout: 30 });
  assert.equal(await runner.stop(), 0);
  runner.start();
  assert.notEqual(runner.pid, first);
  assert.equal(runner.exitCode, null);
  // Waiting looks at the current run only: the first run's line does not count.
  await runner.waitForOutput("late line", { timeout: 30 });
  assert.equal(await runner.stop(), 0);
  assert.equal(runner.output.match(/out: started x/g)?.length, 2);
});

Deno.test("waitForOutput treats a string as a literal, not a pattern", async () => {
  const script = await standIn();
  await using runner = new KopfRunner(["(1+1)"], { command: command(script, "normal") });
  const line = await runner.waitForOutput("started (1+1)", { timeout: 30 });
  assert.equal(line, "out: started (1+1)");
  await assert.rejects(runner.waitForOutput("started 2", { timeout: 0.2 }), /within 0.2s/);
});

Deno.test("wait() resolves with the code of an operator that exits by itself", async () => {
  const script = await standIn();
  const runner = new KopfRunner([], { command: command(script, "exit3") });
  assert.equal(await runner.wait(), 3);
  assert.equal(runner.exitCode, 3);
  assert.match(runner.output, /err: log line/);
  assert.equal(await runner.stop(), 3, "stopping an exited operator changes nothing");
  await assert.rejects(
    new KopfRunner([], { autostart: false }).wait(),
    /not started/,
  );
});

Deno.test("KopfRunner runs the real `kopf run`: bad input exits 2 with one line", async () => {
  const runner = new KopfRunner(["run", "-A", "no-such-handlers.ts"], { cwd: ROOT });
  assert.equal(await runner.wait(), 2, runner.output);
  // The exception line for the runner is not part of the output.
  assert.equal(
    runner.stderr,
    "kopf: error: handler file not found: no-such-handlers.ts\n",
  );
  assert.equal(runner.exception?.name, "UsageError");
  assert.equal(runner.exception?.message, "handler file not found: no-such-handlers.ts");
});

Deno.test("exception: null after a clean stop; the exit code when nothing was reported", async () => {
  const script = await standIn();
  const clean = new KopfRunner([], { command: command(script, "normal") });
  assert.equal(clean.exception, null, "null while running");
  await clean.waitForOutput("err: log line", { timeout: 30 });
  await clean.stop();
  assert.equal(clean.exception, null);
  const failed = new KopfRunner([], { command: command(script, "exit3") });
  await failed.wait();
  assert.ok(failed.exception instanceof KopfRunnerError);
  assert.equal(failed.exception.exitCode, 3);
  assert.equal(failed.exception.message, "The operator exited with code 3.");
});
