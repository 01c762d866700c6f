// The watch reader keeps up while the main thread is busy. An operator's main thread can be busy
// for a long stretch (a burst of handlers, a garbage collection); the API server buffers only a
// few events per watcher (10 to 100) and closes a watch whose consumer does not read them as
// unresponsive ("Forcing … watcher close due to unresponsiveness", counted by its
// apiserver_terminated_watchers_total). Watches are read on a thread of their own
// (src/kube/_stream_reader.ts), so a burst of 3000 ConfigMaps created by another process while
// this process's main thread is blocked 800 ms of every 1.6 s comes whole through one watch.
// With the watch read on the main thread (before), the server closed it in every run tried.
// Real kube-apiserver, no fault proxy: the stalls are the test's own.
import assert from "node:assert/strict";
import { listAndWatch } from "../../src/kube/watch.ts";
import { cluster } from "../support/cluster.ts";
import { configMaps } from "../support/engines.ts";
import { connect } from "../support/watch_fixtures.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OBJECTS = 3000;
const STALL_MS = 800;

/** The API server's count of watchers it closed as unresponsive, for ConfigMaps. */
async function terminatedWatchers(c: Awaited<ReturnType<typeof cluster>>): Promise<number> {
  const { text } = await c.api("GET", "/metrics");
  let total = 0;
  for (const line of String(text).split("\n")) {
    if (line.startsWith("apiserver_terminated_watchers_total") && line.includes('"configmaps"')) {
      total += Number(line.split(" ").at(-1));
    }
  }
  return total;
}

Deno.test("watch reader: a burst arrives whole through one watch while the main thread stalls", async () => {
  const c = await cluster();
  const ns = await c.namespace("watch-reader");
  const client = await connect(c.kubeconfig);
  const abort = new AbortController();
  const watch = listAndWatch(client, configMaps, { namespace: ns, signal: abort.signal });
  const seen = new Set<string>();
  let stalling: ReturnType<typeof setInterval> | undefined;
  try {
    const closedBefore = await terminatedWatchers(c);
    const events = (async () => {
      for await (const event of watch) {
        if (event.type === "ADDED") seen.add(event.object.metadata?.name ?? "");
        if (seen.size === OBJECTS) return;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 1000)); // listed and watching
    stalling = setInterval(() => {
      const end = Date.now() + STALL_MS;
      while (Date.now() < end) { /* the main thread is busy */ }
    }, STALL_MS);
    const burst = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}tests/support/burst.ts`, ns, String(OBJECTS)],
      env: { KUBECONFIG: c.kubeconfig },
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    assert.equal((await burst).code, 0, "the burst was created");
    await Promise.race([
      events,
      new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), 120_000)),
    ]);
    clearInterval(stalling);
    stalling = undefined;
    assert.equal(seen.size, OBJECTS);
    assert.equal(watch.stats.watches, 1, "the watch was never closed and re-opened");
    assert.equal(await terminatedWatchers(c) - closedBefore, 0, "no watcher closed by the server");
  } finally {
    clearInterval(stalling);
    abort.abort();
    client.close();
    await c.deleteNamespace(ns);
  }
});
