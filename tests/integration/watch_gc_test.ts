// Regression: aborting a watch (unsubscribe, idle timeout) must still work after a garbage
// collection. Deno may collect a signal made by AbortSignal.any() while its fetch body is still
// streaming; the abort then never reaches the request, and stopping an informer hangs until the
// server's timeoutSeconds (5-10 min). Seen after the streaming list of 3,000 ConfigMaps; with a
// few hundred objects it did not show, hence the bulk below.
//
// The check needs V8's gc(), so this test runs itself as a child process with --expose-gc. The
// silent stream comes from the fault proxy (tests/support/fault_proxy.ts).
import assert from "node:assert/strict";
import { Informers } from "../../src/cache/informer.ts";
import { cluster } from "../support/cluster.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { waitFor } from "../support/wait.ts";
import { connect } from "../support/watch_fixtures.ts";
import { configMaps as CONFIGMAPS } from "../support/engines.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OBJECTS = 3000;

async function child(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  const c = await cluster();
  const ns = await c.namespace("watch-gc");
  const proxy = await FaultProxy.start(c);
  const client = await connect(proxy.kubeconfig);
  let next = 0;
  const create = () =>
    c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
      metadata: { name: `cm-${next++}` },
      data: { payload: "x".repeat(200) },
    });
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < OBJECTS) await create();
  }));
  try {
    for (const initialSync of ["stream", "list"] as const) {
      // Stopping right after a collection: the abort must reach the open stream.
      {
        const informers = new Informers(client, { initialSync });
        const informer = informers.get(CONFIGMAPS, { namespace: ns });
        const subscription = informer.subscribe(() => {});
        await informer.waitForSync();
        for (let i = 0; i < 3; i++) gc();
        subscription.unsubscribe();
        const stopped = await Promise.race([
          informers.stop().then(() => true),
          new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000)),
        ]);
        if (!stopped) throw new Error(`${initialSync}: the informer did not stop within 10 s`);
        await waitFor(() => proxy.openWatches() === 0, { timeout: 10, message: "no open watch" });
      }
      // A silent stream after a collection must still be dropped by the idle timer, or the
      // object created meanwhile is never seen.
      {
        const informers = new Informers(client, { idleTimeoutMs: 1500, initialSync });
        const informer = informers.get(CONFIGMAPS, { namespace: ns });
        informer.subscribe(() => {});
        await informer.waitForSync();
        await waitFor(() => proxy.openWatches() === 1, { message: "the watch to be open" });
        for (let i = 0; i < 3; i++) gc();
        proxy.silenceOpenWatches();
        const made = (await create()).metadata.name;
        await waitFor(() => informer.store.getByName(made, ns), {
          timeout: 20,
          message: "the object created while the stream was silent",
        });
        await informers.stop();
      }
    }
  } finally {
    client.close();
    await proxy.close();
    await c.deleteNamespace(ns);
  }
}

if (import.meta.main) {
  try {
    await child();
    console.log("OK");
    Deno.exit(0);
  } catch (error) {
    console.log(`FAILED: ${error instanceof Error ? error.stack : error}`);
    Deno.exit(1);
  }
}

Deno.test("watch: informer stops and idle reconnects still work after a garbage collection", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", import.meta.filename!],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success && stdout.includes("OK"), `child failed:\n${stdout}\n${stderr}`);
});
