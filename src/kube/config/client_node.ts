/**
 * What `@kubernetes/client-node` makes of the cluster configuration — its `KubeConfig` loaded and
 * asked for the options of a request, so that its auth-providers and exec plugins run as they do
 * for its own clients — as plain data, for `kopf.loginViaClient()` (Kopf's `login_via_client`
 * piggybacking on the official client). client-node is imported when this is called, never before
 * (`auth_provider.ts`).
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
import { ConfigError } from "../errors.ts";
import { importKubeConfig } from "./auth_provider.ts";
import { readEnv } from "./inputs.ts";

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** What client-node would send to which server, for its current context. */
export interface ClientNodeConnection {
  /** Where client-node found its configuration. */
  readonly source: "in-cluster" | "kubeconfig";
  /** The API server URL. */
  readonly server: string;
  /** The CA bundle (PEM). */
  readonly caPem?: string;
  /** `insecure-skip-tls-verify`. */
  readonly insecure?: boolean;
  /** `tls-server-name`. */
  readonly tlsServerName?: string;
  /** `proxy-url`. */
  readonly proxyUrl?: string;
  /** Client certificate and key (PEM). */
  readonly certPem?: string;
  /** Client key (PEM). */
  readonly keyPem?: string;
  /** The `Authorization` header it would send (a token, from any auth-provider or exec plugin). */
  readonly authorization?: string;
  /** Basic authentication. */
  readonly username?: string;
  /** Basic authentication. */
  readonly password?: string;
  /** The current context's namespace. */
  readonly namespace?: string;
  /** The user it impersonates (`as`), if any. */
  readonly impersonate?: string;
}

/**
 * Loads client-node's `KubeConfig` as Kopf's `login_via_client` loads the official client's: the
 * in-cluster service account first, else the kubeconfig — the one `kopf run` handed over
 * (`kubeconfig`), or client-node's own `KUBECONFIG`/`~/.kube/config` — and never client-node's
 * fallback to `http://localhost:8080`. Throws a one-line {@linkcode ConfigError} when there is
 * neither, or when client-node fails.
 */
export async function connectionViaClientNode(
  kubeconfig?: string,
): Promise<ClientNodeConnection> {
  const KubeConfigCtor = await importKubeConfig();
  const kc = new KubeConfigCtor();
  const source = "client-node";
  let from: ClientNodeConnection["source"];
  try {
    if (inCluster()) {
      kc.loadFromCluster();
      from = "in-cluster";
    } else if (kubeconfig !== undefined) {
      kc.loadFromString(kubeconfig);
      from = "kubeconfig";
    } else if (readEnv("KUBECONFIG") || homeConfigExists()) {
      kc.loadFromDefault();
      from = "kubeconfig";
    } else {
      throw new ConfigError(
        "cannot authenticate client-node neither in-cluster, nor via kubeconfig " +
          "(no service account, KUBECONFIG is not set, ~/.kube/config does not exist)",
        { source },
      );
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`client-node cannot load its configuration: ${firstLine(error)}`, {
      source,
      cause: error,
    });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new ConfigError(
      `client-node has no current cluster (context "${kc.getCurrentContext()}")`,
      {
        source,
      },
    );
  }
  const opts: RequestOptions = { headers: {} };
  try {
    await kc.applyToHTTPSOptions(opts as Parameters<KubeConfig["applyToHTTPSOptions"]>[0]);
  } catch (error) {
    throw new ConfigError(`client-node failed to authenticate: ${firstLine(error)}`, {
      source,
      cause: error,
    });
  }
  const user = kc.getCurrentUser();
  const headers = opts.headers ?? {};
  return {
    source: from,
    server: cluster.server.replace(/\/+$/, ""),
    caPem: text(opts.ca),
    insecure: cluster.skipTLSVerify || undefined,
    tlsServerName: cluster.tlsServerName || undefined,
    proxyUrl: cluster.proxyUrl || undefined,
    certPem: text(opts.cert),
    keyPem: text(opts.key),
    authorization: headers.Authorization || headers.authorization || undefined,
    username: user?.username || undefined,
    password: user?.username ? user.password ?? "" : undefined,
    namespace: kc.getContextObject(kc.getCurrentContext())?.namespace || undefined,
    impersonate: headers["Impersonate-User"] || undefined,
  };
}

/** What `applyToHTTPSOptions` fills in, of what is read here. */
interface RequestOptions {
  headers?: Record<string, string>;
  ca?: unknown;
  cert?: unknown;
  key?: unknown;
}

function inCluster(): boolean {
  if (!readEnv("KUBERNETES_SERVICE_HOST") || !readEnv("KUBERNETES_SERVICE_PORT")) return false;
  try {
    return Deno.statSync(SERVICE_ACCOUNT_TOKEN).isFile;
  } catch {
    return false; // absent, or not readable in the sandbox: not this way
  }
}

function homeConfigExists(): boolean {
  const home = readEnv("HOME") ?? readEnv("USERPROFILE");
  if (!home) return false;
  try {
    return Deno.statSync(`${home}/.kube/config`).isFile;
  } catch {
    return false;
  }
}

/** A Buffer, string or array of them (client-node's `ca`/`cert`/`key`) as text. */
function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map((v) => text(v) ?? "").join("\n") || undefined;
  return String(value) || undefined;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n").find((line) => line.trim())?.trim() ?? message;
}
