/**
 * Example 06-peering as its README tells it, through the real command line (`kopf run`) against
 * the control plane, in a namespace of its own with Kopf's peering CRDs and a `default`
 * `KopfPeering`: two operators of the same priority both warn and pause; one started with `--dev`
 * makes the other pause in its favour, and handles objects; when it stops, the other resumes.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";
import { sleep, waitFor } from "../support/wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const EXAMPLE = `${ROOT}examples/06-peering/example.ts`;

const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);
await c.apply(
  (await Deno.readTextFile(`${ROOT}examples/06-peering/peering.yaml`)).split("\n---\n")
    .filter((doc) => doc.includes("CustomResourceDefinition")).join("\n---\n"),
);
await waitFor(
  async () =>
    (await c.api("GET", "/apis/kopf.dev/v1")).resources?.some((r: Obj) =>
      r.name === "kopfpeerings"
    ),
  { message: "the KopfPeering CRD served" },
);

function operator(ns: string, ...extra: string[]): KopfRunner {
  return new KopfRunner(["run", "--verbose", "-n", ns, ...extra, EXAMPLE], {
    env: { KUBECONFIG: c.kubeconfig },
    cwd: ROOT,
    timeout: 120,
  }).start();
}

async function create(ns: string, name: string): Promise<void> {
  await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`, {
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata: { name },
    spec: {},
  });
}

const handled = (r: KopfRunner, name: string) => new RegExp(`Handled ${name}\\.`).test(r.output);

Deno.test("example 06-peering: same priority → both pause with a warning; --dev takes over; its stop resumes the other", async () => {
  const ns = await c.namespace("e2e-example-06");
  await c.api("POST", `/apis/kopf.dev/v1/namespaces/${ns}/kopfpeerings`, {
    apiVersion: "kopf.dev/v1",
    kind: "KopfPeering",
    metadata: { name: "default" },
  });
  const a = operator(ns);
  let b: KopfRunner | undefined;
  try {
    await a.waitForOutput(/Peering as .* with priority 0/, { timeout: 60 });
    b = operator(ns);
    for (const r of [a, b]) {
      await r.waitForOutput(/Possibly conflicting operators with the same priority/, {
        timeout: 60,
      });
    }
    await create(ns, "paused");
    await sleep(5000);
    assert.ok(!handled(a, "paused") && !handled(b, "paused"), "handled while both paused");
    assert.equal(await b.stop(), 0);

    // B again with --dev: A pauses in favour of it; B handles objects, A does not.
    b = operator(ns, "--dev");
    await a.waitForOutput(/Pausing operations in favour of \[<Peer .*priority=666/, {
      timeout: 60,
    });
    await create(ns, "dev");
    await waitFor(() => handled(b!, "dev"), { timeout: 30, message: "B handles it" });
    assert.ok(!handled(a, "dev"));

    // B stops: A resumes, and handles what it missed and what comes.
    const mark = a.output.length;
    assert.equal(await b.stop(), 0);
    b = undefined;
    await waitFor(() => /Resuming operations after the pause/.test(a.output.slice(mark)), {
      timeout: 30,
      message: "A resumes",
    });
    await create(ns, "after");
    await waitFor(() => handled(a, "after") && handled(a, "paused"), {
      timeout: 30,
      message: "A handles the new object and the one created while all were paused",
    });
    assert.ok(!handled(a, "dev"), "an object B handled is not handled again");
  } finally {
    await b?.stop().catch(() => {});
    await a.stop().catch(() => {});
    await c.deleteNamespace(ns);
  }
});
