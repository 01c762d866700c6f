/**
 * The operator's own identity on the control plane: a client certificate for
 * {@linkcode OPERATOR_USER} signed by the plane's CA, a kubeconfig with it, cluster-admin rights,
 * and the FlowSchemas that count its requests (see traffic.ts). Every operator under test — Kopf,
 * ours, the floor — runs as this user, the benchmark driver as the admin.
 *
 * @module
 */
import type { TestCluster } from "../../tests/support/cluster.ts";
import { waitFor } from "../../tests/support/wait.ts";
import { DriverApi } from "./driver_api.ts";
import { flowSchemas, OPERATOR_USER, parseClassCounts } from "./traffic.ts";

/** Files of the operator's identity. */
export interface OperatorIdentity {
  kubeconfig: string;
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const b64 = (text: string) => btoa(text);

/**
 * Mints the certificate into `dir`, writes `dir/operator.kubeconfig`, grants cluster-admin and
 * applies the FlowSchemas; resolves once a request made with the certificate is counted.
 */
export async function prepareIdentity(
  c: TestCluster,
  dir: string,
  resource: { group: string; version: string; plural: string },
): Promise<OperatorIdentity> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/operator.ext`,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
      "extendedKeyUsage=clientAuth\n",
  );
  await openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "operator.key",
    "-out",
    "operator.csr",
    "-subj",
    `/CN=${OPERATOR_USER}/O=kopf-bench`,
  ]);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "operator.csr",
    "-CA",
    c.caFile,
    "-CAkey",
    c.caKeyFile,
    "-CAcreateserial",
    "-CAserial",
    "operator.srl",
    "-days",
    "30",
    "-sha256",
    "-out",
    "operator.crt",
    "-extfile",
    "operator.ext",
  ]);
  const certPem = await Deno.readTextFile(`${dir}/operator.crt`);
  const keyPem = await Deno.readTextFile(`${dir}/operator.key`);
  const kubeconfig = `${dir}/operator.kubeconfig`;
  await Deno.writeTextFile(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: bench",
      "  cluster:",
      `    server: ${c.server}`,
      `    certificate-authority-data: ${b64(c.caPem)}`,
      "users:",
      `- name: ${OPERATOR_USER}`,
      "  user:",
      `    client-certificate-data: ${b64(certPem)}`,
      `    client-key-data: ${b64(keyPem)}`,
      "contexts:",
      "- name: bench",
      `  context: {cluster: bench, user: ${OPERATOR_USER}, namespace: default}`,
      "current-context: bench",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await c.apply([
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: OPERATOR_USER },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "cluster-admin",
      },
      subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: OPERATOR_USER }],
    },
    ...flowSchemas(resource.group, resource.plural),
  ]);

  // The FlowSchemas take effect asynchronously: probe until a LIST as the operator is counted.
  const admin = new DriverApi({ server: c.server, caPem: c.caPem, token: c.token });
  const operator = new DriverApi({ server: c.server, caPem: c.caPem, certPem, keyPem });
  try {
    await waitFor(async () => {
      const before = parseClassCounts(await admin.metrics())["cr-list"] ?? 0;
      await operator.request(
        "GET",
        `/apis/${resource.group}/${resource.version}/${resource.plural}?limit=1`,
      );
      const after = parseClassCounts(await admin.metrics())["cr-list"] ?? 0;
      return after > before;
    }, {
      timeout: 60,
      interval: 500,
      message: "the operator's requests to be counted by flow schema",
    });
  } finally {
    admin.close();
    operator.close();
  }
  return {
    kubeconfig,
    certFile: `${dir}/operator.crt`,
    keyFile: `${dir}/operator.key`,
    certPem,
    keyPem,
  };
}
