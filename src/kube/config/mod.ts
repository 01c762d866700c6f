/**
 * Where the cluster is and how to authenticate: kubeconfig files (`KUBECONFIG`, merged like
 * kubectl), a chosen context, or the in-cluster service account.
 *
 * The entry of `src/kube/config/` (the rest of the code imports only this module): kubeconfigs
 * are read in `kubeconfig.ts`, the service account in `in_cluster.ts`; credential sources are in
 * `credentials.ts`, and `@kubernetes/client-node` is imported only for users with an
 * `auth-provider` (`auth_provider.ts`). What loading returns is plain data plus a small
 * {@linkcode Credentials} object the client asks for headers on every request.
 *
 * Unlike client-node's `loadFromDefault()`, loading never falls back to
 * `http://localhost:8080`: when nothing is found (or a file cannot be read for lack of a Deno
 * permission) it throws a {@linkcode ConfigError} saying what was looked for.
 *
 * Permissions: `--allow-env=KUBECONFIG,HOME,KUBERNETES_SERVICE_HOST,KUBERNETES_SERVICE_PORT`
 * (for an `auth-provider` user, client-node's dependencies enumerate the environment at import:
 * add `--ignore-env` when the list is scoped), `--allow-read` for the kubeconfig and the files
 * it names (or the service-account directory in a cluster), and `--allow-run` for exec plugins.
 * A kubeconfig can also be held in memory ({@linkcode useKubeconfigDocument},
 * {@linkcode loadConfigFromDocument}): then only the token file and exec plugin it names need
 * grants — how `kopf run` keeps the operator away from the kubeconfig files.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { Credentials } from "./credentials.ts";
import { loadInCluster } from "./in_cluster.ts";
import { fileError, readEnv } from "./inputs.ts";
import { type KubeconfigDocument, loadDocuments, readKubeconfigFiles } from "./kubeconfig.ts";

export { type ClientNodeConnection, connectionViaClientNode } from "./client_node.ts";
export {
  type AuthMaterial,
  type Credentials,
  ExecCredentials,
  tokenCredentials,
  TokenFileCredentials,
} from "./credentials.ts";

/** TLS settings for talking to the API server. */
export interface TlsSettings {
  /** CA bundle (PEM) to verify the server with, in addition to the system roots. */
  readonly caPem?: string;
  /** Client certificate (PEM), when the user authenticates with one. */
  readonly certPem?: string;
  /** Client key (PEM) for {@linkcode TlsSettings.certPem}. */
  readonly keyPem?: string;
  /** `insecure-skip-tls-verify`: do not verify the server's certificate at all. */
  readonly insecureSkipTlsVerify?: boolean;
  /** `tls-server-name`: the name to verify the server's certificate against. */
  readonly tlsServerName?: string;
  /** `proxy-url`: an HTTP(S) or SOCKS5 proxy. */
  readonly proxyUrl?: string;
}

/**
 * A resolved cluster configuration: what the client needs, as plain data.
 *
 * Build one by hand for tests or special setups, or get one from {@linkcode loadConfig}.
 *
 * @example
 * ```ts
 * import { type ClusterConfig, tokenCredentials } from "./mod.ts";
 * const config: ClusterConfig = {
 *   server: "https://127.0.0.1:6443",
 *   source: "manual",
 *   tls: { caPem: "-----BEGIN CERTIFICATE-----\n..." },
 *   credentials: tokenCredentials("s3cr3t"),
 * };
 * ```
 */
export interface ClusterConfig {
  /** API server base URL, e.g. `https://127.0.0.1:6443` (no trailing slash). */
  readonly server: string;
  /** The context's default namespace (or the service account's namespace in a cluster). */
  readonly namespace?: string;
  /** Where it came from: kubeconfig path(s), `in-cluster`, or anything for hand-made configs. */
  readonly source: string;
  /** The chosen context's name (kubeconfig only). */
  readonly context?: string;
  /** TLS settings. */
  readonly tls: TlsSettings;
  /** Per-request credentials. */
  readonly credentials: Credentials;
}

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /**
   * Kubeconfig file(s) to use instead of `KUBECONFIG` / `~/.kube/config`. Several files are
   * merged like kubectl merges `KUBECONFIG`: the first file to define a name wins.
   */
  kubeconfig?: string | string[];
  /** Context to use instead of the `current-context`. */
  context?: string;
  /** Use the in-cluster service account and skip kubeconfig discovery. */
  inCluster?: boolean;
  /**
   * Prefix for the service-account files (`<root>/var/run/secrets/kubernetes.io/serviceaccount`),
   * as client-node's `loadFromCluster(pathPrefix)`; for tests.
   */
  inClusterRoot?: string;
  /** How often a token file is re-read, in milliseconds (default 60 s, as client-go). */
  tokenRefreshMs?: number;
}

/**
 * Loads the cluster configuration, in controller-runtime's order: the `kubeconfig` option,
 * then `KUBECONFIG` (a `:`-separated list, merged), then the in-cluster service account (when
 * `KUBERNETES_SERVICE_HOST`/`PORT` are set), then `~/.kube/config`.
 *
 * Throws a {@linkcode ConfigError} with a one-line message naming the file and field for
 * anything unusable: a missing file, bad YAML, an unknown or unset context, a missing
 * certificate file, and no configuration at all.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./mod.ts";
 * const config = await loadConfig({ context: "kind-dev" });
 * console.log(config.server, config.namespace);
 * ```
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ClusterConfig> {
  if (options.inCluster) return await loadInCluster(options);
  if (options.kubeconfig === undefined && handedOver) {
    return await loadDocuments([handedOver], options);
  }
  let files: string[];
  if (options.kubeconfig !== undefined) {
    files = explicitFiles(options.kubeconfig);
  } else {
    const fromEnv = await filesFromEnv();
    if (fromEnv) {
      files = fromEnv;
    } else if (readEnv("KUBERNETES_SERVICE_HOST") && readEnv("KUBERNETES_SERVICE_PORT")) {
      return await loadInCluster(options);
    } else {
      const home = await homeFile();
      if (!home.exists) {
        throw new ConfigError(
          "no cluster configuration found: KUBECONFIG is not set, " +
            `${home.path ?? "~/.kube/config (HOME is not set)"} does not exist, and ` +
            "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set (not in a cluster)",
        );
      }
      files = [home.path];
    }
  }
  return await loadDocuments(await readKubeconfigFiles(files), options);
}

/**
 * Loads the cluster configuration from kubeconfigs only — the `kubeconfig` option, the one
 * `kopf run` handed over, `KUBECONFIG`, `~/.kube/config` — or `null` when there is none (no
 * in-cluster fallback): what `kopf.loginWithKubeconfig()` logs in with, as Kopf's
 * `login_with_kubeconfig` does. What is there but unusable throws a {@linkcode ConfigError}.
 *
 * @example
 * ```ts ignore
 * import { loadKubeconfig } from "./mod.ts";
 * const config = await loadKubeconfig(); // null without KUBECONFIG or ~/.kube/config
 * ```
 */
export async function loadKubeconfig(
  options: Omit<LoadConfigOptions, "inCluster" | "inClusterRoot"> = {},
): Promise<ClusterConfig | null> {
  if (options.kubeconfig === undefined && handedOver) {
    return await loadDocuments([handedOver], options);
  }
  let files: string[] | undefined;
  if (options.kubeconfig !== undefined) files = explicitFiles(options.kubeconfig);
  else {
    files = await filesFromEnv();
    if (!files) {
      const home = await homeFile();
      if (!home.exists) return null;
      files = [home.path];
    }
  }
  return await loadDocuments(await readKubeconfigFiles(files), options);
}

function explicitFiles(kubeconfig: string | string[]): string[] {
  const files = [kubeconfig].flat().filter((f) => f);
  if (!files.length) throw new ConfigError("the kubeconfig option names no file");
  return files;
}

/** The files `KUBECONFIG` lists that exist, or `undefined` when it is not set. */
async function filesFromEnv(): Promise<string[] | undefined> {
  const fromEnv = readEnv("KUBECONFIG");
  if (!fromEnv) return undefined;
  const files = fromEnv.split(Deno.build.os === "windows" ? ";" : ":").filter((f) => f);
  // kubectl skips listed files that do not exist, as long as one does.
  const present = [];
  for (const file of files) if (await fileExists(file)) present.push(file);
  if (!present.length) {
    throw new ConfigError(
      `none of the files in KUBECONFIG exists: ${files.join(", ")}`,
      { source: files.join(":") },
    );
  }
  return present;
}

/** `~/.kube/config` and whether it exists. */
async function homeFile(): Promise<
  { path: string; exists: true } | { path?: string; exists: false }
> {
  const home = readEnv("HOME") ?? readEnv("USERPROFILE");
  const path = home ? `${home}/.kube/config` : undefined;
  if (path && await fileExists(path)) return { path, exists: true };
  return { path, exists: false };
}

let handedOver: KubeconfigDocument | undefined;

/**
 * Makes this process's {@linkcode loadConfig} use a kubeconfig held in memory instead of looking
 * for one (files, `KUBECONFIG`, the in-cluster service account), whenever it is not given a
 * `kubeconfig` option. `kopf run` uses it in the operator process, which gets the kubeconfig of
 * its one context from the launcher and may not read the kubeconfig files themselves (the
 * launcher makes all paths in it absolute).
 *
 * Nothing is checked here: {@linkcode loadConfig} reports what is wrong with it, as for a file.
 *
 * @example
 * ```ts
 * import { loadConfig, useKubeconfigDocument } from "./mod.ts";
 *
 * const text = `clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
 * users: [{name: u, user: {token: s3cr3t}}]
 * contexts: [{name: k, context: {cluster: c, user: u}}]
 * current-context: k`;
 * useKubeconfigDocument(text, "the kubeconfig from kopf run");
 * const config = await loadConfig(); // from `text`
 * ```
 */
export function useKubeconfigDocument(text: string, source: string): void {
  handedOver = { text, source, dir: "/" };
}

/**
 * The kubeconfig `kopf run` handed to this operator process — one cluster, one user, one context:
 * the one the operator runs with, its files inlined — or `undefined` when the process was not
 * started by a sandboxed `kopf run` (embedded `kopf.run()`, `--no-sandbox`, bundles).
 *
 * For handlers that talk to the cluster with a client of their own: in the sandbox they may not
 * read the kubeconfig files, so `loadFromDefault()` cannot find them. These are the operator's own
 * credentials, which code in its process could use anyway; no other user's are in it.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 * import * as k8s from "@kubernetes/client-node";
 * const config = new k8s.KubeConfig();
 * const kubeconfig = kopf.sandboxKubeconfig();
 * if (kubeconfig) config.loadFromString(kubeconfig);
 * else config.loadFromDefault();
 * ```
 */
export function sandboxKubeconfig(): string | undefined {
  return handedOver?.text;
}

/**
 * Loads the cluster configuration from a kubeconfig held in memory, as {@linkcode loadConfig}
 * does from files; `source` names it in messages, relative paths start from `/`.
 *
 * @example
 * ```ts
 * import { loadConfigFromDocument } from "./mod.ts";
 * const config = await loadConfigFromDocument(
 *   `clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
 * users: [{name: u, user: {token: s3cr3t}}]
 * contexts: [{name: k, context: {cluster: c, user: u}}]
 * current-context: k`,
 *   { source: "inline" },
 * );
 * console.log(config.server); // "https://127.0.0.1:6443"
 * ```
 */
export async function loadConfigFromDocument(
  text: string,
  options: Omit<LoadConfigOptions, "kubeconfig" | "inCluster"> & { source: string },
): Promise<ClusterConfig> {
  return await loadDocuments([{ text, source: options.source, dir: "/" }], options);
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    // Not silently "absent": a missing permission must not turn into another cluster.
    throw new ConfigError(`cannot check the file: ${fileError(error)}`, {
      source: path,
      cause: error,
    });
  }
}
