/**
 * Example 17-admission through the real command line (`kopf run` with its Deno permissions):
 * `--webhook-server` on a free port of 127.0.0.1 with a certificate generated in the operator,
 * `--webhook-managed` for the configurations; the kube-apiserver calls the webhooks over TLS with
 * the CA bundle the operator wrote. Checked: warnings in the API response, rejections with the
 * handlers' messages and codes, the mutation stored, and the configurations gone after SIGTERM.
 */
import assert from "node:assert/strict";
import { KopfRunner } from "../../testing.ts";
import { cluster, type Obj } from "../support/cluster.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const c = await cluster();
await c.applyCrd(c.kopfExampleCrd);
const http = Deno.createHttpClient({ caCerts: [c.caPem] });

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function call(method: string, path: string, body: unknown, type = "application/json") {
  const response = await fetch(`${c.server}${path}`, {
    method,
    client: http,
    headers: { Authorization: `Bearer ${c.token}`, "Content-Type": type },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    warning: response.headers.get("warning") ?? "",
    body: await response.json() as Obj,
  };
}

async function configuration(kind: string, name: string): Promise<Obj | null> {
  try {
    return await c.api("GET", `/apis/admissionregistration.k8s.io/v1/${kind}/${name}`);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return null;
    throw error;
  }
}

Deno.test("example 17-admission: webhooks validate and mutate; configurations go at SIGTERM", async () => {
  const ns = await c.namespace("e2e-17");
  const name = `${ns}.kopf.dev`;
  const port = freePort();
  const runner = new KopfRunner([
    "run",
    "--verbose",
    "--standalone",
    "-n",
    ns,
    "--webhook-server",
    `https://127.0.0.1:${port}`,
    "--webhook-managed",
    name,
    `${ROOT}examples/17-admission/example.ts`,
  ], { env: { KUBECONFIG: c.kubeconfig }, cwd: ROOT, timeout: 30 });
  const kex = (metadata: Obj, spec: Obj) => ({
    apiVersion: "kopf.dev/v1",
    kind: "KopfExample",
    metadata,
    spec,
  });
  const base = `/apis/kopf.dev/v1/namespaces/${ns}/kopfexamples`;
  try {
    await runner.waitForOutput(`Configured the MutatingWebhookConfiguration ${name}`, {
      timeout: 60,
    });
    const validating = await configuration("validatingwebhookconfigurations", name);
    assert.deepEqual(
      validating?.webhooks.map((w: Obj) => w.clientConfig.url),
      // Field handlers' ids have the field: Kopf's `validate2/spec.field`.
      ["authhook", "validate1", "validate2/spec.field"].map((id) =>
        `https://127.0.0.1:${port}/${id}`
      ),
    );
    // Admitted and mutated (the label matches mutate1's objectSelector), with the warnings.
    const created = await call(
      "POST",
      base,
      kex({ name: "good", labels: { somelabel: "somevalue" } }, { field: "value" }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.match(created.warning, /Accessing as user-agent: kube-apiserver-admission/);
    assert.match(created.warning, /SSL peer is not identified\./);
    assert.equal(created.body.spec.injected, 123);
    // Without the label: not mutated.
    const plain = await call("POST", base, kex({ name: "plain" }, { field: "value" }));
    assert.equal(plain.status, 201);
    assert.equal(plain.body.spec.injected, undefined);
    // Rejected by validate1 (500, the default code), but not in a dry run.
    const wrong = await call("POST", base, kex({ name: "wrong" }, { field: "wrong" }));
    assert.equal(wrong.status, 500);
    assert.match(wrong.body.message, /Meh! I don't like it\. Change the field\./);
    const dry = await call(
      "POST",
      `${base}?dryRun=All`,
      kex({ name: "wrong" }, { field: "wrong" }),
    );
    assert.equal(dry.status, 201, "validate1 lets dry runs pass");
    // Rejected by validate2 with its own code.
    const lazy = await call(
      "PATCH",
      `${base}/plain`,
      { spec: { field: "not-allowed" } },
      "application/merge-patch+json",
    );
    assert.equal(lazy.status, 555);
    assert.match(lazy.body.message, /I'm too lazy anyway\. Go away!/);
    const code = await runner.stop();
    assert.equal(code, 0, runner.output.slice(-3000));
    assert.doesNotMatch(runner.output, /Uncaught|kopf: error/);
    assert.equal(await configuration("validatingwebhookconfigurations", name), null);
    assert.equal(await configuration("mutatingwebhookconfigurations", name), null);
    // Nothing calls the stopped operator any more.
    const after = await call("POST", base, kex({ name: "after" }, { field: "wrong" }));
    assert.equal(after.status, 201);
  } finally {
    if (runner.running) await runner.stop();
    for (const kind of ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]) {
      await c.api("DELETE", `/apis/admissionregistration.k8s.io/v1/${kind}/${name}`).catch(
        () => {},
      );
    }
    await c.deleteNamespace(ns);
  }
});
