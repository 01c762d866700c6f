/**
 * Creates ConfigMaps in a burst, from a process of its own (a test that stalls its own main
 * thread must not stall the load it puts on the server):
 *
 *     deno run -A tests/support/burst.ts <namespace> <count> [<padding bytes>]
 *
 * 32 requests in flight; each ConfigMap carries `padding` bytes of data (default 1500), so that
 * a burst is as many bytes on a watch as objects of a usual size.
 *
 * @module
 */
import { cluster } from "./cluster.ts";

const [namespace, count, padding = "1500"] = Deno.args;
const c = await cluster();
let next = 0;
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < Number(count)) {
    const i = next++;
    await c.api("POST", `/api/v1/namespaces/${namespace}/configmaps`, {
      metadata: { name: `burst-${i}` },
      data: { padding: "x".repeat(Number(padding)) },
    });
  }
}));
