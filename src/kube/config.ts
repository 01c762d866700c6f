/**
 * Where the cluster is and how to authenticate: kubeconfig files (`KUBECONFIG`, merged like
 * kubectl), a chosen context, or the in-cluster service account.
 *
 * Kubeconfigs are parsed here with js-yaml, checked the way client-node checks them (same
 * messages for missing names, clusters and servers). `@kubernetes/client-node` is imported
 * only for users with an `auth-provider` (OIDC, legacy GCP/Azure), whose token refreshes it
 * implements: the import costs 0.3–0.6 s and about 75 MiB of resident memory for the life of
 * the process, which nobody else should pay. What loading returns is plain data plus a small
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

import type { KubeConfig } from "@kubernetes/client-node";
import { load as loadYaml } from "js-yaml";
import {
  type AuthMaterial,
  type CredentialKind,
  type Credentials,
  type ExecClusterInfo,
  ExecCredentials,
  type ExecSpec,
  fileError,
  StaticCredentials,
  TokenFileCredentials,
} from "./_credentials.ts";
import { ConfigError } from "./errors.ts";

export type { AuthMaterial, CredentialKind, Credentials, ExecSpec };
export { ExecCredentials, TokenFileCredentials };

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
 * import { tokenCredentials, type ClusterConfig } from "./config.ts";
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

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

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
 * ```ts ignore
 * import { loadConfig } from "./config.ts";
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
    files = [options.kubeconfig].flat().filter((f) => f);
    if (!files.length) throw new ConfigError("the kubeconfig option names no file");
  } else {
    const fromEnv = readEnv("KUBECONFIG");
    if (fromEnv) {
      files = fromEnv.split(Deno.build.os === "windows" ? ";" : ":").filter((f) => f);
      // kubectl skips listed files that do not exist, as long as one does.
      const present = [];
      for (const file of files) if (await fileExists(file)) present.push(file);
      if (!present.length) {
        throw new ConfigError(
          `none of the files in KUBECONFIG exists: ${files.join(", ")}`,
          { source: files.join(":") },
        );
      }
      files = present;
    } else if (readEnv("KUBERNETES_SERVICE_HOST") && readEnv("KUBERNETES_SERVICE_PORT")) {
      return await loadInCluster(options);
    } else {
      const home = readEnv("HOME") ?? readEnv("USERPROFILE");
      const fallback = home ? `${home}/.kube/config` : undefined;
      if (!fallback || !(await fileExists(fallback))) {
        throw new ConfigError(
          "no cluster configuration found: KUBECONFIG is not set, " +
            `${fallback ?? "~/.kube/config (HOME is not set)"} does not exist, and ` +
            "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set (not in a cluster)",
        );
      }
      files = [fallback];
    }
  }
  return await loadKubeconfig(files, options);
}

let handedOver: KubeconfigDocument | undefined;

/**
 * Makes this process's {@linkcode loadConfig} use a kubeconfig held in memory instead of looking
 * for one (files, `KUBECONFIG`, the in-cluster service account), whenever it is not given a
 * `kubeconfig` option. `kopf run` uses it in the operator process, which gets the kubeconfig of
 * its one context from the launcher and may not read the kubeconfig files themselves. Relative
 * paths in it are taken as relative to `dir` (the launcher makes them all absolute).
 *
 * Nothing is checked here: {@linkcode loadConfig} reports what is wrong with it, as for a file.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, useKubeconfigDocument } from "./config.ts";
 * useKubeconfigDocument(text, "the kubeconfig from kopf run");
 * const config = await loadConfig(); // from `text`
 * ```
 */
export function useKubeconfigDocument(text: string, source: string, dir: string = "/"): void {
  handedOver = { text, source, dir };
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
 * ```ts ignore
 * import * as kopf from "jsr:@kopf/kopf";
 * import * as k8s from "npm:@kubernetes/client-node";
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
 * does from files; `source` names it in messages, `dir` is where relative paths start from.
 *
 * @example
 * ```ts
 * import { loadConfigFromDocument } from "./config.ts";
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
  options: Omit<LoadConfigOptions, "kubeconfig" | "inCluster"> & { source: string; dir?: string },
): Promise<ClusterConfig> {
  return await loadDocuments([{ text, source: options.source, dir: options.dir ?? "/" }], options);
}

/**
 * Credentials with a fixed bearer token.
 *
 * @example
 * ```ts
 * import { tokenCredentials } from "./config.ts";
 * const credentials = tokenCredentials("s3cr3t");
 * ```
 */
export function tokenCredentials(token: string): Credentials {
  return new StaticCredentials("token", { headers: [["Authorization", `Bearer ${token}`]] });
}

/** Credentials that add nothing (anonymous, or a client certificate in {@linkcode TlsSettings}). */
export function noCredentials(): Credentials {
  return new StaticCredentials("none", { headers: [] });
}

// ---------------------------------------------------------------------------------------------

// The kubeconfig data model, field for field as client-node's Cluster/User/Context (so that an
// auth-provider user can be handed to its KubeConfig as is).

interface Cluster {
  readonly name: string;
  readonly server: string;
  readonly caData?: string;
  caFile?: string;
  readonly skipTLSVerify: boolean;
  readonly tlsServerName?: string;
  readonly proxyUrl?: string;
}

interface AuthProvider {
  name?: string;
  config?: Record<string, string>;
}

interface User {
  readonly name: string;
  readonly authProvider?: AuthProvider;
  readonly certData?: string;
  certFile?: string;
  readonly exec?: unknown;
  readonly keyData?: string;
  keyFile?: string;
  readonly token?: string;
  readonly username?: string;
  readonly password?: string;
  readonly impersonateUser?: string;
}

interface Context {
  readonly name: string;
  readonly cluster: string;
  readonly user?: string;
  readonly namespace?: string;
}

/** One parsed kubeconfig file. */
interface ParsedKubeconfig {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext?: string;
}

// deno-lint-ignore no-explicit-any
type Entry = any;

/** Reads the lists like client-node's `loadFromString()`, with its messages for bad entries. */
function parseKubeconfig(doc: Record<string, unknown>, dir: string): ParsedKubeconfig {
  const list = (key: string): Entry[] => Array.isArray(doc[key]) ? doc[key] as Entry[] : [];
  const clusters = list("clusters").map((elt, i): Cluster => {
    if (!elt?.name) throw new Error(`clusters[${i}].name is missing`);
    if (!elt.cluster) throw new Error(`clusters[${i}].cluster is missing`);
    if (!elt.cluster.server) throw new Error(`clusters[${i}].cluster.server is missing`);
    const c = elt.cluster;
    return {
      name: elt.name,
      server: String(c.server).replace(/\/$/, ""),
      caData: c["certificate-authority-data"] || undefined,
      caFile: absolute(dir, c["certificate-authority"]),
      skipTLSVerify: c["insecure-skip-tls-verify"] === true,
      tlsServerName: c["tls-server-name"] || undefined,
      proxyUrl: c["proxy-url"] || undefined,
    };
  });
  const contexts = list("contexts").map((elt, i): Context => {
    if (!elt?.name) throw new Error(`contexts[${i}].name is missing`);
    if (!elt.context) throw new Error(`contexts[${i}].context is missing`);
    if (!elt.context.cluster) throw new Error(`contexts[${i}].context.cluster is missing`);
    return {
      name: elt.name,
      cluster: elt.context.cluster,
      user: elt.context.user || undefined,
      namespace: elt.context.namespace || undefined,
    };
  });
  // `token-file` is not read here (client-node reads it once, relative to the working
  // directory): userCredentials() reads it relative to the kubeconfig, and re-reads it.
  const users = list("users").map((elt, i): User => {
    if (!elt?.name) throw new Error(`users[${i}].name is missing`);
    const u = elt.user ?? {};
    return {
      name: elt.name,
      authProvider: u["auth-provider"] || undefined,
      certData: u["client-certificate-data"] || undefined,
      certFile: absolute(dir, u["client-certificate"]),
      exec: u.exec || undefined,
      keyData: u["client-key-data"] || undefined,
      keyFile: absolute(dir, u["client-key"]),
      token: u.token || undefined,
      username: u.username || undefined,
      password: u.password ?? undefined,
      impersonateUser: u.as || undefined,
    };
  });
  const current = doc["current-context"];
  return {
    clusters,
    users,
    contexts,
    currentContext: typeof current === "string" && current ? current : undefined,
  };
}

/** A kubeconfig path made absolute against the kubeconfig's directory (as makePathsAbsolute). */
function absolute(dir: string, path: unknown): string | undefined {
  if (typeof path !== "string" || !path) return undefined;
  return isAbsolute(path) ? path : joinPath(dir, path);
}

type KubeConfigClass = typeof KubeConfig;

let kubeConfigClass: Promise<KubeConfigClass> | undefined;

/** The `KubeConfig` class, imported on first use only. */
function importKubeConfig(): Promise<KubeConfigClass> {
  kubeConfigClass ??= import("@kubernetes/client-node").then(
    (m) => m.KubeConfig,
    (error) => {
      kubeConfigClass = undefined;
      // Its dependencies read environment variables at import (`debug` lists all of them,
      // undici reads UNDICI_*): with a scoped --allow-env that fails unless --ignore-env is set.
      const hint = error instanceof Deno.errors.NotCapable
        ? " (with a scoped --allow-env, add --ignore-env)"
        : "";
      throw new ConfigError(
        `cannot load @kubernetes/client-node: ${
          error instanceof Error ? error.message : error
        }${hint}`,
        { cause: error },
      );
    },
  );
  return kubeConfigClass;
}

interface LoadedFile {
  path: string;
  dir: string;
  raw: Record<string, unknown>;
  kc: ParsedKubeconfig;
}

async function loadKubeconfig(files: string[], options: LoadConfigOptions): Promise<ClusterConfig> {
  const documents: KubeconfigDocument[] = [];
  for (const path of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      throw new ConfigError(`cannot read the file: ${fileError(error)}`, {
        source: path,
        cause: error,
      });
    }
    documents.push({ text, source: path, dir: dirname(path) });
  }
  return await loadDocuments(documents, options);
}

/** A kubeconfig's text, where it came from, and the directory its relative paths start from. */
interface KubeconfigDocument {
  text: string;
  source: string;
  dir: string;
}

async function loadDocuments(
  documents: KubeconfigDocument[],
  options: LoadConfigOptions,
): Promise<ClusterConfig> {
  const loaded: LoadedFile[] = [];
  const files = documents.map((d) => d.source);
  for (const { text, source: path, dir } of documents) {
    let raw: unknown;
    try {
      raw = loadYaml(text);
    } catch (error) {
      const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
      throw new ConfigError(`invalid YAML: ${message}`, { source: path, cause: error });
    }
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== "object" || Array.isArray(raw)) {
      throw new ConfigError("not a kubeconfig: the document is not a mapping", { source: path });
    }
    const doc = raw as Record<string, unknown>;
    for (const key of ["clusters", "users", "contexts"]) {
      if (doc[key] !== undefined && doc[key] !== null && !Array.isArray(doc[key])) {
        throw new ConfigError("must be a list", { source: path, field: key });
      }
    }
    let kc: ParsedKubeconfig;
    try {
      kc = parseKubeconfig(doc, dir);
    } catch (error) {
      throw new ConfigError(error instanceof Error ? error.message : String(error), {
        source: path,
        cause: error,
      });
    }
    loaded.push({ path, dir, raw: doc, kc });
  }

  // kubectl's merge: the first file to define a name wins; so does the first current-context.
  const source = files.join(":");
  const clusters = new Map<string, { cluster: Cluster; file: LoadedFile }>();
  const users = new Map<string, { user: User; file: LoadedFile }>();
  const contexts = new Map<string, { context: Context; file: LoadedFile }>();
  let currentContext: string | undefined;
  for (const file of loaded) {
    for (const cluster of file.kc.clusters) {
      if (!clusters.has(cluster.name)) clusters.set(cluster.name, { cluster, file });
    }
    for (const user of file.kc.users) {
      if (!users.has(user.name)) users.set(user.name, { user, file });
    }
    for (const context of file.kc.contexts) {
      if (!contexts.has(context.name)) contexts.set(context.name, { context, file });
    }
    currentContext ||= file.kc.currentContext;
  }

  const contextName = options.context ?? currentContext;
  if (!contextName) {
    throw new ConfigError(
      `no current-context is set and no context was chosen (contexts: ${
        [...contexts.keys()].join(", ") || "none"
      })`,
      { source, field: "current-context" },
    );
  }
  const contextEntry = contexts.get(contextName);
  if (!contextEntry) {
    throw new ConfigError(
      `context "${contextName}" not found (contexts: ${[...contexts.keys()].join(", ") || "none"})`,
      { source, field: options.context !== undefined ? "contexts" : "current-context" },
    );
  }
  const { context } = contextEntry;
  const contextField = `contexts[${context.name}]`;
  const clusterEntry = clusters.get(context.cluster);
  if (!clusterEntry) {
    throw new ConfigError(
      `cluster "${context.cluster}" not found (clusters: ${
        [...clusters.keys()].join(", ") || "none"
      })`,
      { source: contextEntry.file.path, field: `${contextField}.cluster` },
    );
  }
  let userEntry: { user: User; file: LoadedFile } | undefined;
  if (context.user) {
    userEntry = users.get(context.user);
    if (!userEntry) {
      throw new ConfigError(
        `user "${context.user}" not found (users: ${[...users.keys()].join(", ") || "none"})`,
        { source: contextEntry.file.path, field: `${contextField}.user` },
      );
    }
  }

  const { cluster, file: clusterFile } = clusterEntry;
  const clusterField = `clusters[${cluster.name}]`;
  const server = checkServer(cluster.server, clusterFile.path, `${clusterField}.server`);
  const caPem = await pemFrom({
    file: cluster.caFile,
    data: cluster.caData,
    source: clusterFile.path,
    field: `${clusterField}.certificate-authority`,
    expect: "CERTIFICATE",
  });
  const tlsBase = {
    caPem,
    insecureSkipTlsVerify: cluster.skipTLSVerify || undefined,
    tlsServerName: cluster.tlsServerName || undefined,
    proxyUrl: cluster.proxyUrl || undefined,
  };

  let tls: TlsSettings = tlsBase;
  let credentials: Credentials = noCredentials();
  if (userEntry) {
    const { user, file } = userEntry;
    const userField = `users[${user.name}]`;
    const rawUser = rawEntry(file.raw, "users", user.name, "user");
    const certPem = await pemFrom({
      file: user.certFile,
      data: user.certData,
      source: file.path,
      field: `${userField}.client-certificate`,
      expect: "CERTIFICATE",
    });
    const keyPem = await pemFrom({
      file: user.keyFile,
      data: user.keyData,
      source: file.path,
      field: `${userField}.client-key`,
      expect: "PRIVATE KEY",
    });
    if ((certPem === undefined) !== (keyPem === undefined)) {
      throw new ConfigError(
        "a client certificate needs both client-certificate and client-key",
        { source: file.path, field: userField },
      );
    }
    tls = { ...tlsBase, certPem, keyPem };
    const base: AuthMaterial = { headers: impersonationHeaders(user, rawUser) };
    credentials = await userCredentials({
      user,
      rawUser,
      file,
      field: userField,
      base,
      hasCert: certPem !== undefined,
      cluster: {
        server,
        "certificate-authority-data": caPem ? base64(caPem) : undefined,
        "tls-server-name": tlsBase.tlsServerName,
        "insecure-skip-tls-verify": tlsBase.insecureSkipTlsVerify,
        "proxy-url": tlsBase.proxyUrl,
      },
      contextName,
      allFiles: loaded,
      tokenRefreshMs: options.tokenRefreshMs,
    });
  }

  return {
    server,
    namespace: context.namespace || undefined,
    source,
    context: contextName,
    tls,
    credentials,
  };
}

async function userCredentials(init: {
  user: User;
  rawUser: Record<string, unknown>;
  file: LoadedFile;
  field: string;
  base: AuthMaterial;
  hasCert: boolean;
  cluster: ExecClusterInfo;
  contextName: string;
  allFiles: LoadedFile[];
  tokenRefreshMs?: number;
}): Promise<Credentials> {
  const { user, rawUser, file, field, base } = init;
  if (user.exec) {
    const spec = { ...(user.exec as ExecSpec) };
    // client-go resolves a relative command with a path separator against the kubeconfig's
    // directory; bare names are looked up in PATH.
    if (
      typeof spec.command === "string" && spec.command.includes("/") && !isAbsolute(spec.command)
    ) {
      spec.command = joinPath(file.dir, spec.command);
    }
    return new ExecCredentials({
      spec,
      base,
      cluster: init.cluster,
      source: file.path,
      field: `${field}.exec`,
    });
  }
  const providerTokenFile = user.authProvider?.config?.tokenFile;
  if (typeof providerTokenFile === "string" && providerTokenFile) {
    const credentials = new TokenFileCredentials({
      path: isAbsolute(providerTokenFile)
        ? providerTokenFile
        : joinPath(file.dir, providerTokenFile),
      base,
      refreshMs: init.tokenRefreshMs,
      source: file.path,
      field: `${field}.auth-provider.config.tokenFile`,
    });
    await credentials.get();
    return credentials;
  }
  if (user.authProvider) {
    return await authProviderCredentials(init);
  }
  // client-node's `token-file`, or client-go's `tokenFile`.
  const tokenKey = typeof rawUser["token-file"] === "string" ? "token-file" : "tokenFile";
  const tokenFile = rawUser[tokenKey];
  if (typeof tokenFile === "string" && tokenFile && !user.token) {
    const path = isAbsolute(tokenFile) ? tokenFile : joinPath(file.dir, tokenFile);
    const credentials = new TokenFileCredentials({
      path,
      base,
      refreshMs: init.tokenRefreshMs,
      source: file.path,
      field: `${field}.${tokenKey}`,
    });
    await credentials.get(); // fail now, not on the first request
    return credentials;
  }
  if (user.token) {
    return new StaticCredentials("token", {
      headers: [...base.headers, ["Authorization", `Bearer ${user.token}`]],
    });
  }
  if (user.username) {
    const basic = base64(`${user.username}:${user.password ?? ""}`);
    return new StaticCredentials("basic", {
      headers: [...base.headers, ["Authorization", `Basic ${basic}`]],
    });
  }
  return new StaticCredentials(init.hasCert ? "client-certificate" : "none", base);
}

/**
 * Delegates `auth-provider` users (OIDC, legacy GCP/Azure, legacy `exec` under auth-provider)
 * to client-node, which refreshes those tokens itself. Only these users keep client-node on
 * the request path.
 */
async function authProviderCredentials(init: {
  user: User;
  file: LoadedFile;
  field: string;
  base: AuthMaterial;
  contextName: string;
  allFiles: LoadedFile[];
}): Promise<Credentials> {
  const KubeConfigCtor = await importKubeConfig();
  const kc = new KubeConfigCtor();
  const clusters: Cluster[] = [];
  const users: User[] = [];
  const contexts: Context[] = [];
  const seen = new Set<string>();
  const firstWins = <T extends { name: string }>(kind: string, item: T, into: T[]) => {
    if (seen.has(`${kind}/${item.name}`)) return;
    seen.add(`${kind}/${item.name}`);
    into.push(item);
  };
  for (const file of init.allFiles) {
    for (const c of file.kc.clusters) firstWins("cluster", c, clusters);
    for (const u of file.kc.users) firstWins("user", u, users);
    for (const x of file.kc.contexts) firstWins("context", x, contexts);
  }
  // The shapes are client-node's own (see Cluster/User/Context above).
  kc.loadFromOptions(
    {
      clusters,
      users,
      contexts,
      currentContext: init.contextName,
    } as unknown as Parameters<KubeConfig["loadFromOptions"]>[0],
  );
  const name = init.user.authProvider?.name ?? "unknown";
  const source = init.file.path;
  const field = `${init.field}.auth-provider`;
  return {
    kind: "auth-provider",
    async get(): Promise<AuthMaterial> {
      const opts: { headers?: Record<string, string>; cert?: unknown; key?: unknown } = {
        headers: {},
      };
      try {
        await kc.applyToHTTPSOptions(opts as Parameters<KubeConfig["applyToHTTPSOptions"]>[0]);
      } catch (error) {
        throw new ConfigError(`auth-provider "${name}" failed: ${String(error)}`, {
          source,
          field,
          cause: error,
        });
      }
      const headers = [...init.base.headers];
      for (const [key, value] of Object.entries(opts.headers ?? {})) {
        if (key.toLowerCase() !== "impersonate-user") headers.push([key, String(value)]);
      }
      return {
        headers,
        certPem: opts.cert ? String(opts.cert) : undefined,
        keyPem: opts.key ? String(opts.key) : undefined,
      };
    },
    invalidate: () => false,
  };
}

async function loadInCluster(options: LoadConfigOptions): Promise<ClusterConfig> {
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

// ---------------------------------------------------------------------------------------------

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch (error) {
    throw new ConfigError(
      `cannot read the environment variable ${name}: ${
        error instanceof Error ? error.message : error
      } (grant --allow-env=${name}, or pass the kubeconfig explicitly)`,
      { cause: error },
    );
  }
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

function checkServer(server: string, source: string, field: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ConfigError(`not a URL: ${JSON.stringify(server)}`, { source, field });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(`unsupported scheme ${url.protocol} in ${server}`, { source, field });
  }
  return server.replace(/\/+$/, "");
}

async function pemFrom(init: {
  file?: string;
  data?: string;
  source: string;
  field: string;
  expect: string;
}): Promise<string | undefined> {
  let pem: string;
  if (init.file) {
    try {
      pem = await Deno.readTextFile(init.file);
    } catch (error) {
      throw new ConfigError(`cannot read ${init.file}: ${fileError(error)}`, {
        source: init.source,
        field: init.field,
        cause: error,
      });
    }
  } else if (init.data) {
    try {
      pem = new TextDecoder().decode(Uint8Array.from(atob(init.data), (c) => c.charCodeAt(0)));
    } catch (error) {
      throw new ConfigError("is not valid base64", {
        source: init.source,
        field: `${init.field}-data`,
        cause: error,
      });
    }
  } else {
    return undefined;
  }
  if (!pem.includes(`${init.expect}-----`)) {
    throw new ConfigError(`holds no PEM ${init.expect}`, {
      source: init.source,
      field: init.file ? init.field : `${init.field}-data`,
    });
  }
  return pem;
}

function impersonationHeaders(
  user: User,
  rawUser: Record<string, unknown>,
): [string, string][] {
  const headers: [string, string][] = [];
  if (user.impersonateUser) headers.push(["Impersonate-User", user.impersonateUser]);
  const groups = rawUser["as-groups"];
  if (Array.isArray(groups)) {
    for (const group of groups) headers.push(["Impersonate-Group", String(group)]);
  }
  if (typeof rawUser["as-uid"] === "string") headers.push(["Impersonate-Uid", rawUser["as-uid"]]);
  const extra = rawUser["as-user-extra"];
  if (extra && typeof extra === "object") {
    for (const [key, values] of Object.entries(extra)) {
      for (const value of [values].flat()) {
        headers.push([`Impersonate-Extra-${encodeURIComponent(key)}`, String(value)]);
      }
    }
  }
  return headers;
}

function rawEntry(
  doc: Record<string, unknown>,
  list: string,
  name: string,
  key: string,
): Record<string, unknown> {
  const entries = doc[list];
  if (!Array.isArray(entries)) return {};
  const entry = entries.find((e) => e && typeof e === "object" && e.name === name);
  const inner = entry?.[key];
  return inner && typeof inner === "object" ? inner : {};
}

function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/** `dir` + a relative path, with `.` and `..` segments resolved. */
function joinPath(dir: string, relative: string): string {
  const parts: string[] = [];
  for (const part of `${dir}/${relative}`.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return (dir.startsWith("/") ? "/" : "") + parts.join("/");
}

function isAbsolute(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path);
}
