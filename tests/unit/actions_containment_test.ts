// Containment of hostile handler code, in this process: what a handler leaves behind (a rejected
// promise nobody awaits, a throw in a timer callback, a throw in a microtask), `Deno.exit()` and a
// Worker option that makes Deno exit — each logged once at ERROR naming the handler and the
// object, and the process goes on. The same through the CLI against a real API server is in
// tests/chaos/hostile_handlers_test.ts.

import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import { attributed, contain, HandlerExitError } from "../../src/actions/containment.ts";

function recordingLogger(lines: string[]): Logger {
  const log = (message: string, props: Record<string, unknown> = {}) =>
    lines.push(message.replace(/\{(\w+)\}/g, (_, key) => String(props[key])));
  return { error: log, debug: log, info: log, warn: log } as unknown as Logger;
}

function tick(ms = 20): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const who = (lines: string[]) => ({ title: "Handler 'hostile'", logger: recordingLogger(lines) });

Deno.test("a promise rejected and left behind by a handler is logged, naming the handler", async () => {
  const release = contain();
  try {
    const lines: string[] = [];
    const result = await attributed(who(lines), () => {
      Promise.reject(new Error("nobody awaits me"));
      return "done";
    });
    await tick();
    assert.equal(result, "done");
    assert.deepEqual(lines, [
      "Handler 'hostile' left a promise rejected with nothing awaiting it: nobody awaits me",
    ]);
  } finally {
    release();
  }
});

Deno.test("a throw in a timer callback or a microtask of a handler is logged, naming it", async () => {
  const release = contain();
  try {
    const lines: string[] = [];
    await attributed(who(lines), () => {
      setTimeout(() => {
        throw new Error("from a timer");
      }, 1);
      queueMicrotask(() => {
        throw new Error("from a microtask");
      });
    });
    await tick();
    assert.deepEqual(lines.sort(), [
      "Handler 'hostile' threw an error in a timer callback that nothing caught: from a timer",
      "Handler 'hostile' threw an error that nothing caught: from a microtask",
    ]);
  } finally {
    release();
  }
});

Deno.test("Deno.exit() from a handler is refused and fails it, even when the handler catches it", async () => {
  const release = contain();
  try {
    const lines: string[] = [];
    await assert.rejects(
      attributed(who(lines), () => {
        try {
          Deno.exit(3);
        } catch { /* a handler that swallows everything */ }
        return "swallowed";
      }),
      (error) =>
        error instanceof HandlerExitError &&
        error.message ===
          "Deno.exit(3) was called, which handler code may not do: the operator keeps running, " +
            "and the handler fails permanently.",
    );
    // After the call has finished, a late exit (from a timer) is refused and logged.
    await attributed(who(lines), () => {
      setTimeout(() => Deno.exit(4), 1);
    });
    await tick();
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.equal(lines[0], "Handler 'hostile' called Deno.exit(4) after it had finished: refused.");
  } finally {
    release();
  }
});

Deno.test("a Worker with deno.permissions but without the unstable flag throws instead", async () => {
  const release = contain({ workerOptions: false });
  try {
    await assert.rejects(
      attributed(who([]), () =>
        new Worker(new URL("data:application/javascript,close()"), {
          type: "module",
          deno: { permissions: "none" },
        } as WorkerOptions)),
      HandlerExitError,
    );
  } finally {
    release();
  }
});

Deno.test("the guards are gone once released; Deno.exit outside handlers is Deno's own", () => {
  const exit = Deno.exit;
  const release = contain();
  const nested = contain();
  assert.notEqual(Deno.exit, exit);
  release();
  assert.notEqual(Deno.exit, exit, "still held by the nested operator");
  nested();
  assert.equal(Deno.exit, exit);
});

Deno.test("an activity (e.g. startup) may end the process: its Deno.exit is passed on", async () => {
  const exit = Deno.exit;
  const calls: number[] = [];
  // A stand-in for Deno's own exit, installed before the guard captures it.
  const fake = (code?: number) => calls.push(code ?? 0);
  Object.defineProperty(Deno, "exit", { value: fake, configurable: true, writable: true });
  const release = contain();
  try {
    await attributed({ ...who([]), mayExit: true }, () => Deno.exit(5));
    await assert.rejects(attributed(who([]), () => Deno.exit(6)), HandlerExitError);
    assert.deepEqual(calls, [5]);
  } finally {
    release();
    Object.defineProperty(Deno, "exit", { value: exit, configurable: true, writable: true });
  }
});
