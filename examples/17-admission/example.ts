/**
 * Admission control: validating and mutating webhooks served by the operator itself. The
 * startup handler picks the webhook server (unless `kopf run --webhook-server` already did) and
 * lets the operator manage the webhook configurations; the API server then calls the handlers
 * before it stores a KopfExample.
 *
 * Other servers, as in Kopf's example (tunnels such as ngrok are not provided):
 *
 * ```ts ignore
 * new kopf.WebhookServer(); // 127.0.0.1, a free port, a self-signed CA generated in memory
 * new kopf.WebhookServer({ certFile: "cert.pem", pkeyFile: "key.pem", port: 1234 });
 * new kopf.WebhookK3dServer({ caDump: "ca.pem" }); // reached as host.k3d.internal
 * new kopf.WebhookMinikubeServer({ port: 1234, caDump: "ca.pem" }); // host.minikube.internal
 * new kopf.WebhookAutoServer(); // one of the above, for the cluster it finds
 * ```
 *
 * ```sh
 * deno run -A cli.ts run --verbose -A examples/17-admission/example.ts
 * kubectl apply -f examples/obj.yaml          # warnings: user-agent, SSL peer
 * kubectl patch kex kopf-example-1 --type=merge -p '{"spec":{"field":"wrong"}}'   # rejected
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

kopf.on.startup(function config({ settings }) {
  // Auto-detect the best server (K3d/Minikube/simple) strictly locally, on a fixed port (the
  // one `kopf run` grants to listen on is `--webhook-server`'s; with -A any port is fine).
  settings.admission.server ??= new kopf.WebhookAutoServer({ port: 9443 });
  settings.admission.managed ??= "auto.kopf.dev";
});

kopf.on.validate("kex", function authhook({ headers, sslpeer, warnings }) {
  const userAgent = headers["user-agent"] ?? "(unidentified)";
  warnings.push(`Accessing as user-agent: ${userAgent}`);
  if (!sslpeer.subject?.length) {
    warnings.push("SSL peer is not identified.");
  } else {
    const commonNames = sslpeer.subject.flat().filter(([key]) => key === "commonName");
    if (commonNames.length) warnings.push(`SSL peer is ${commonNames[0][1]}.`);
    else warnings.push("SSL peer's common name is absent.");
  }
});

kopf.on.validate("kex", function validate1({ spec, dryrun }) {
  if (!dryrun && spec.field === "wrong") {
    throw new kopf.AdmissionError("Meh! I don't like it. Change the field.");
  }
});

kopf.on.validate("kex", { field: "spec.field", value: "not-allowed" }, function validate2() {
  throw new kopf.AdmissionError("I'm too lazy anyway. Go away!", { code: 555 });
});

kopf.on.mutate("kex", { labels: { somelabel: "somevalue" } }, function mutate1({ patch }) {
  patch.spec.injected = 123;
});
