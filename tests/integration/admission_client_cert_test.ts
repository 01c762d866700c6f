// The API server authenticating to the operator's webhooks with a client certificate: a plane of
// this test's own, started with `KOPF_CLUSTER_WEBHOOK_CLIENT_CERT=1` (cluster.sh's
// --admission-control-config-file with a kubeconfig for webhooks), and a WebhookServer that
// requires client certificates of the plane's CA. The verified peer reaches handlers as `sslpeer`.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { privateCluster } from "../support/cluster.ts";
import { startOperator, testResource } from "../support/engine.ts";

const dir = `${Deno.env.get("KOPF_CLUSTER_DIR") ?? "/tmp/kopf-cluster"}-webhook-cert`;

Deno.test("the API server's client certificate is verified and reaches handlers as sslpeer", async () => {
  Deno.env.set("KOPF_CLUSTER_WEBHOOK_CLIENT_CERT", "1");
  const c = await privateCluster(dir);
  Deno.env.delete("KOPF_CLUSTER_WEBHOOK_CLIENT_CERT");
  try {
    const res = await testResource(c, "certadmissions");
    const ns = await c.namespace("adm-cert");
    const peers: kopf.SSLPeer[] = [];
    const registry = new kopf.Registry();
    registry.on.validate(res.plural, { id: "who" }, ({ sslpeer, warnings }) => {
      peers.push(sslpeer);
      const cn = sslpeer.subject?.flat().find(([key]) => key === "commonName")?.[1];
      warnings.push(`SSL peer is ${cn}.`);
    });
    const settings = new kopf.Settings();
    settings.admission.server = new kopf.WebhookServer({
      verifyCaFile: `${c.runDir}/pki/ca.crt`,
      verifyMode: "required",
    });
    settings.admission.managed = `cert-${ns}.kopf.dev`;
    const operator = await startOperator(c, { registry, namespaces: [ns], settings });
    try {
      const http = Deno.createHttpClient({ caCerts: [c.caPem] });
      const response = await fetch(`${c.server}${res.path(ns)}`, {
        method: "POST",
        client: http,
        headers: { Authorization: `Bearer ${c.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          apiVersion: res.apiVersion,
          kind: res.kind,
          metadata: { name: "x" },
          spec: {},
        }),
      });
      await response.body?.cancel();
      http.close();
      assert.equal(response.status, 201);
      assert.match(
        response.headers.get("warning") ?? "",
        /SSL peer is kube-apiserver-webhook-client\./,
      );
      assert.equal(peers.length, 1);
      assert.deepEqual(peers[0].subject, [
        [["organizationName", "kopf-tests"]],
        [["commonName", "kube-apiserver-webhook-client"]],
      ]);
      assert.deepEqual(peers[0].issuer, [[["commonName", "kopf-test-ca"]]]);
    } finally {
      await operator.stop();
    }
  } finally {
    await c.down();
  }
});
