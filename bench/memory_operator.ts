/**
 * The operator process of `bench/memory_profile.ts`: the same entry as `kopf run`'s sandboxed
 * child (`runOperator` of `src/cli/child.ts`, LogTape configured the same way), plus two
 * signal listeners for the profiler:
 *
 * - `SIGWINCH`: append `Deno.memoryUsage()` and `/proc/self/smaps_rollup` as one JSON line to
 *   `<out>/usage.jsonl`;
 * - `SIGHUP`: call glibc's `malloc_trim(0)`, then append a usage line;
 * - `SIGUSR2`: write a heap snapshot to `<out>/<n>.heapsnapshot` (after the usage line above).
 *
 * Run: `deno run -A --v8-flags=… bench/memory_operator.ts <out-dir> '<ChildSpec JSON>'`.
 *
 * @module
 */
import v8 from "node:v8";
import { type ChildSpec, runOperator } from "../src/cli/child.ts";

const [out, specJson] = Deno.args;
if (!out || !specJson) {
  throw new Error("usage: memory_operator.ts <out-dir> '<ChildSpec JSON>'");
}
const spec = JSON.parse(specJson) as ChildSpec;

function usage(label: string): void {
  const rollup = Deno.readTextFileSync("/proc/self/smaps_rollup");
  const smaps: Record<string, number> = {};
  for (const line of rollup.split("\n")) {
    const match = line.match(/^(\w+):\s+(\d+) kB/);
    if (match) smaps[match[1]] = Number(match[2]) * 1024;
  }
  const line = JSON.stringify({ label, at: Date.now(), ...Deno.memoryUsage(), smaps });
  Deno.writeTextFileSync(`${out}/usage.jsonl`, line + "\n", { append: true });
}

// With MEMORY_TRACE_MS, a usage line every so many milliseconds (for a time series).
const traceMs = Number(Deno.env.get("MEMORY_TRACE_MS") ?? 0);
if (traceMs > 0) setInterval(() => usage("trace"), traceMs);

// SIGHUP: glibc's malloc_trim(0), to see how much of the non-heap RSS is free malloc memory.
Deno.addSignalListener("SIGHUP", () => {
  const libc = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
  libc.symbols.malloc_trim(0n);
  libc.close();
  usage("trimmed");
});

let snapshots = 0;
// Not SIGUSR1: Deno opens its inspector on it, as Node does.
Deno.addSignalListener("SIGWINCH", () => usage("signal"));
Deno.addSignalListener("SIGUSR2", () => {
  usage("before-snapshot");
  const path = `${out}/${++snapshots}.heapsnapshot`;
  v8.writeHeapSnapshot(path);
  Deno.writeTextFileSync(`${out}/snapshot.done`, path);
});

Deno.exit(await runOperator(spec));
