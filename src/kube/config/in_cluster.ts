/**
 * The in-cluster configuration: the pod's service account.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { ClusterConfig, LoadConfigOptions } from "./mod.ts";
import { TokenFileCredentials } from "./credentials.ts";
import { checkServer, fileError, pemFrom, readEnv } from "./inputs.ts";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The in-cluster configuration, as client-go's `InClusterConfig`: the server from
 * `KUBERNETES_SERVICE_HOST`/`PORT`, the service account's CA, token file and namespace.
 */
export async function loadInCluster(options: LoadConfigOptions): Promise<ClusterConfig> {
  const source = "in-cluster";
  const host = readEnv("KUBERNETES_SERVICE_HOST");
  const port = readEnv("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    throw new ConfigError("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set", {
      source,
    });
  }
  const root = options.inClusterRoot ?? "";
  const dir = `${root}${SERVICE_ACCOUNT_DIR}`;
  // As client-go's InClusterConfig (and client-node's loadFromCluster): plain HTTP only on
  // the well-known insecure ports, IPv6 addresses in brackets.
  const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
  const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  const server = checkServer(`${scheme}://${hostPart}:${port}`, source, "KUBERNETES_SERVICE_HOST");
  const caPem = await pemFrom({
    file: `${dir}/ca.crt`,
    source,
    field: "ca.crt",
    expect: "CERTIFICATE",
  });
  const tokenPath = `${dir}/token`;
  const credentials = new TokenFileCredentials({
    path: tokenPath,
    refreshMs: options.tokenRefreshMs,
    source,
    field: "token",
  });
  await credentials.get(); // fail now, not on the first request
  let namespace: string | undefined;
  try {
    namespace = (await Deno.readTextFile(`${dir}/namespace`)).trim() || undefined;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new ConfigError(`cannot read ${dir}/namespace: ${fileError(error)}`, {
        source,
        field: "namespace",
        cause: error,
      });
    }
  }
  return { server, namespace, source, tls: { caPem }, credentials };
}
