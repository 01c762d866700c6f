/**
 * Graceful shutdown through the real command line (`kopf run`) against the control plane:
 * SIGTERM during a busy run lets running handlers finish and write their outcomes, leaves no
 * object half-handled, and the next start finishes the rest without repeating finished work; a
 * stuck handler is abandoned after the drain timeout; a stop that hangs (here: a cleanup handler
 * that never returns) is ended by the ultimate exit timeout.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const FIXTURE = `${ROOT}tests/e2e/fixtures/busy_operator.ts`;
const DIFF_BASE = "kopf.zalando.org/last-handled-configuration";
const ENV_FLAG =
  "--allow-env=BUSY_WORKERS,BUSY_DRAIN_TIMEOUT,BUSY_ULTIMATE_TIMEOUT,BUSY_HANG_CLEANUP";

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);

const kexes = (ns: string) => `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`;

function operator(ns: string, env: Record<string, string> = {}, timeout = 60): KopfRunner {
  return new KopfRunner(["run", "--verbose", "--standalone", "-n", ns, ENV_FLAG, FIXTURE], {
    env: { KUBECONFIG: c.kubeconfig, ...env },
    cwd: ROOT,
    timeout,
  });
}

async function createMany(ns: string, count: number, ms: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await c.api("POST", kexes(ns), {
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      metadata: { name: `busy-${i}` },
      spec: { ms },
    });
  }
}

function handledIn(output: string): Set<string> {
  return new Set([...output.matchAll(/\] handled (busy-\d+)$/gm)].map((m) => m[1]));
}

function startedIn(output: string): Set<string> {
  return new Set([...output.matchAll(/\] handling (busy-\d+)$/gm)].map((m) => m[1]));
}

Deno.test("SIGTERM during a busy run: running handlers finish, nothing is half-handled, the next start finishes the rest", async () => {
  const ns = await c.namespace("e2e-sigterm");
  const COUNT = 30;
  try {
    await createMany(ns, COUNT, 1500);
    // Few workers, so that some objects are running and others waiting when the signal comes.
    const first = operator(ns, { BUSY_WORKERS: "3", BUSY_DRAIN_TIMEOUT: "20" });
    await first.waitForOutput(/\] handled busy-/, { timeout: 60 });
    const code = await first.stop(); // SIGTERM, then waits for the exit
    assert.equal(code, 0, first.output.slice(-3000));
    const started1 = startedIn(first.output);
    const handled1 = handledIn(first.output);
    assert.deepEqual(
      [...started1].filter((n) => !handled1.has(n)),
      [],
      "every started handler finished",
    );

    // What the API server holds: each object is either fully handled or untouched.
    const items: Obj[] = (await c.api("GET", kexes(ns))).items;
    const complete = new Set<string>();
    for (const item of items) {
      const name = item.metadata.name;
      const result = item.status?.create_fn?.done === true;
      const diffBase = Boolean(item.metadata.annotations?.[DIFF_BASE]);
      if (handled1.has(name)) {
        assert.ok(result && diffBase, `${name}: handled, but its outcome is not all written`);
        complete.add(name);
      } else {
        assert.ok(!result && !diffBase, `${name}: not handled, yet something was written`);
      }
    }
    assert.ok(complete.size > 0 && complete.size < COUNT, `complete: ${complete.size}`);
    console.log(`at SIGTERM: ${complete.size} of ${COUNT} handled, the rest untouched`);

    const second = operator(ns);
    await waitFor(async () => {
      const list: Obj[] = (await c.api("GET", kexes(ns))).items;
      return list.every((o) => o.status?.create_fn?.done && o.metadata.annotations?.[DIFF_BASE]);
    }, { timeout: 120, message: "every object handled after the restart" });
    assert.equal(await second.stop(), 0, second.output.slice(-3000));
    const handled2 = handledIn(second.output);
    assert.deepEqual([...handled2].filter((n) => complete.has(n)), [], "finished work not redone");
    assert.equal(handled1.size + handled2.size, COUNT);
  } finally {
    await c.deleteNamespace(ns);
  }
});

Deno.test("a stuck handler is abandoned after the drain timeout; the operator still exits 0", async () => {
  const ns = await c.namespace("e2e-stuck");
  try {
    await createMany(ns, 1, -1);
    const runner = operator(ns, { BUSY_DRAIN_TIMEOUT: "2" });
    await runner.waitForOutput("handling busy-0", { timeout: 60 });
    const t0 = Date.now();
    const code = await runner.stop();
    const took = Date.now() - t0;
    assert.equal(code, 0, runner.output.slice(-3000));
    assert.equal(runner.killed, false, "exited on its own, not killed");
    console.log(`stop with a stuck handler took ${took} ms (drain timeout 2 s)`);
  } finally {
    await c.deleteNamespace(ns);
  }
});

Deno.test("a stop that hangs is ended by the ultimate exit timeout", async () => {
  const ns = await c.namespace("e2e-ultimate");
  try {
    const runner = operator(ns, { BUSY_HANG_CLEANUP: "1", BUSY_ULTIMATE_TIMEOUT: "3" });
    await runner.waitForOutput("Activity 'configure' succeeded.", { timeout: 60 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const code = await runner.stop();
    assert.match(runner.output, /Cleanup hangs\./);
    assert.match(runner.output, /did not stop in 3 seconds/);
    assert.equal(runner.killed, false, "it exited by itself");
    assert.equal(code, 1);
  } finally {
    await c.deleteNamespace(ns);
  }
});
