/**
 * Kubeconfig documents → a {@linkcode ClusterConfig}: parsed with js-yaml and checked the way
 * client-node checks them (same messages for missing names, clusters and servers), merged like
 * kubectl merges `KUBECONFIG`, and resolved for one context: its cluster's server and TLS, its
 * user's client certificate, impersonation and credentials (an exec plugin, a token file, an
 * auth-provider, a token, basic auth, or nothing more).
 *
 * @module
 */

import { load as loadYaml } from "js-yaml";
import { ConfigError } from "../errors.ts";
import { authProviderCredentials } from "./auth_provider.ts";
import {
  type AuthMaterial,
  type Credentials,
  type ExecClusterInfo,
  ExecCredentials,
  type ExecSpec,
  StaticCredentials,
  TokenFileCredentials,
  withBearer,
} from "./credentials.ts";
import { absolute, checkServer, fileError, pemFrom } from "./inputs.ts";
import type { ClusterConfig, LoadConfigOptions } from "./mod.ts";
import { base64 } from "../base64.ts";

// The kubeconfig data model, field for field as client-node's Cluster/User/Context (so that an
// auth-provider user can be handed to its KubeConfig as is).

/** A kubeconfig cluster, as client-node's `Cluster`. */
export interface Cluster {
  readonly name: string;
  readonly server: string;
  readonly caData?: string;
  caFile?: string;
  readonly skipTLSVerify: boolean;
  readonly tlsServerName?: string;
  readonly proxyUrl?: string;
}

/** A kubeconfig user, as client-node's `User`. */
export interface User {
  readonly name: string;
  readonly authProvider?: { name?: string; config?: Record<string, string> };
  readonly certData?: string;
  certFile?: string;
  readonly exec?: unknown;
  readonly keyData?: string;
  keyFile?: string;
  readonly token?: string;
  readonly username?: string;
  readonly password?: string;
  readonly impersonateUser?: string;
  /** The `user` mapping as written, for what client-node's `User` lacks (`token-file`, `as-*`). */
  readonly raw: Record<string, unknown>;
}

/** A kubeconfig context, as client-node's `Context`. */
export interface Context {
  readonly name: string;
  readonly cluster: string;
  readonly user?: string;
  readonly namespace?: string;
}

/** A kubeconfig's text, where it came from, and the directory its relative paths start from. */
export interface KubeconfigDocument {
  text: string;
  source: string;
  dir: string;
}

/** A parsed kubeconfig document: its path (or name), directory and entries. */
export interface LoadedFile {
  path: string;
  dir: string;
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext?: string;
}

/** Definitions by name, each with the file that defined it first. */
type Defined<T> = Map<string, { item: T; file: LoadedFile }>;

/** Several kubeconfigs merged the kubectl way: the first file to define a name wins. */
export interface MergedKubeconfig {
  clusters: Defined<Cluster>;
  users: Defined<User>;
  contexts: Defined<Context>;
  /** The first file's `current-context` that is set. */
  currentContext?: string;
}

/** Reads kubeconfig files; relative paths in each start from its directory. */
export async function readKubeconfigFiles(files: string[]): Promise<KubeconfigDocument[]> {
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
    const slash = path.lastIndexOf("/");
    documents.push({ text, source: path, dir: slash < 0 ? "." : path.slice(0, slash) || "/" });
  }
  return documents;
}

/**
 * Parses and merges kubeconfig documents and resolves the chosen (or current) context into a
 * {@linkcode ClusterConfig}; a {@linkcode ConfigError} names the file and field of anything
 * unusable.
 */
export async function loadDocuments(
  documents: KubeconfigDocument[],
  options: LoadConfigOptions,
): Promise<ClusterConfig> {
  const merged = merge(documents.map(parseDocument));
  const source = documents.map((d) => d.source).join(":");
  const { clusters, users, contexts } = merged;

  const known = (defined: Defined<unknown>) => [...defined.keys()].join(", ") || "none";
  const contextName = options.context ?? merged.currentContext;
  if (!contextName) {
    throw new ConfigError(
      `no current-context is set and no context was chosen (contexts: ${known(contexts)})`,
      { source, field: "current-context" },
    );
  }
  const contextEntry = contexts.get(contextName);
  if (!contextEntry) {
    throw new ConfigError(`context "${contextName}" not found (contexts: ${known(contexts)})`, {
      source,
      field: options.context !== undefined ? "contexts" : "current-context",
    });
  }
  const context = contextEntry.item;
  const contextField = `contexts[${context.name}]`;
  const clusterEntry = clusters.get(context.cluster);
  if (!clusterEntry) {
    throw new ConfigError(
      `cluster "${context.cluster}" not found (clusters: ${known(clusters)})`,
      { source: contextEntry.file.path, field: `${contextField}.cluster` },
    );
  }
  const userEntry = context.user ? users.get(context.user) : undefined;
  if (context.user && !userEntry) {
    throw new ConfigError(
      `user "${context.user}" not found (users: ${known(users)})`,
      { source: contextEntry.file.path, field: `${contextField}.user` },
    );
  }

  const { item: cluster, file: clusterFile } = clusterEntry;
  const clusterField = `clusters[${cluster.name}]`;
  const server = checkServer(cluster.server, clusterFile.path, `${clusterField}.server`);
  const caPem = await pemFrom({
    file: cluster.caFile,
    data: cluster.caData,
    source: clusterFile.path,
    field: `${clusterField}.certificate-authority`,
    expect: "CERTIFICATE",
  });
  const tls = {
    caPem,
    insecureSkipTlsVerify: cluster.skipTLSVerify || undefined,
    tlsServerName: cluster.tlsServerName || undefined,
    proxyUrl: cluster.proxyUrl || undefined,
  };
  const auth = userEntry && await userAuth(userEntry.item, userEntry.file, {
    merged,
    contextName,
    tokenRefreshMs: options.tokenRefreshMs,
    // What an exec plugin learns about the cluster when it asks (provideClusterInfo).
    cluster: {
      server,
      "certificate-authority-data": caPem ? base64(caPem) : undefined,
      "tls-server-name": tls.tlsServerName,
      "insecure-skip-tls-verify": tls.insecureSkipTlsVerify,
      "proxy-url": tls.proxyUrl,
    },
  });
  return {
    server,
    namespace: context.namespace || undefined,
    source,
    context: contextName,
    tls: auth ? { ...tls, certPem: auth.certPem, keyPem: auth.keyPem } : tls,
    credentials: auth?.credentials ?? new StaticCredentials("none", { headers: [] }),
  };
}

function parseDocument({ text, source: path, dir }: KubeconfigDocument): LoadedFile {
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
  try {
    return { path, dir, ...parseKubeconfig(doc, dir) };
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error), {
      source: path,
      cause: error,
    });
  }
}

// deno-lint-ignore no-explicit-any
type Entry = any;

/** Reads the lists like client-node's `loadFromString()`, with its messages for bad entries. */
function parseKubeconfig(
  doc: Record<string, unknown>,
  dir: string,
): Omit<LoadedFile, "path" | "dir"> {
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
  // directory): userAuth() reads it relative to the kubeconfig, and re-reads it.
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
      raw: typeof u === "object" ? u : {},
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

function merge(loaded: LoadedFile[]): MergedKubeconfig {
  const merged: MergedKubeconfig = { clusters: new Map(), users: new Map(), contexts: new Map() };
  const define = <T extends { name: string }>(into: Defined<T>, items: T[], file: LoadedFile) => {
    for (const item of items) if (!into.has(item.name)) into.set(item.name, { item, file });
  };
  for (const file of loaded) {
    define(merged.clusters, file.clusters, file);
    define(merged.users, file.users, file);
    define(merged.contexts, file.contexts, file);
    merged.currentContext ||= file.currentContext;
  }
  return merged;
}

/**
 * What a user's credentials may need besides the user: all files merged and the context
 * (client-node gets them all for an auth-provider), the cluster's details (for an exec plugin that
 * asks for them), and how often a token file is re-read.
 */
interface UserAuthInit {
  merged: MergedKubeconfig;
  contextName: string;
  cluster: ExecClusterInfo;
  tokenRefreshMs?: number;
}

/** A user's client certificate and key (PEM), if any, and its per-request credentials. */
async function userAuth(
  user: User,
  file: LoadedFile,
  init: UserAuthInit,
): Promise<{ certPem?: string; keyPem?: string; credentials: Credentials }> {
  const field = `users[${user.name}]`;
  const certPem = await pemFrom({
    file: user.certFile,
    data: user.certData,
    source: file.path,
    field: `${field}.client-certificate`,
    expect: "CERTIFICATE",
  });
  const keyPem = await pemFrom({
    file: user.keyFile,
    data: user.keyData,
    source: file.path,
    field: `${field}.client-key`,
    expect: "PRIVATE KEY",
  });
  if ((certPem === undefined) !== (keyPem === undefined)) {
    throw new ConfigError(
      "a client certificate needs both client-certificate and client-key",
      { source: file.path, field },
    );
  }
  const base: AuthMaterial = { headers: impersonationHeaders(user) };
  const hasCert = certPem !== undefined;
  const credentials = await userCredentials(user, file, { ...init, field, base, hasCert });
  return { certPem, keyPem, credentials };
}

async function userCredentials(
  user: User,
  file: LoadedFile,
  init: UserAuthInit & { field: string; base: AuthMaterial; hasCert: boolean },
): Promise<Credentials> {
  const { field, base } = init;
  if (user.exec) {
    const spec = { ...(user.exec as ExecSpec) };
    // client-go resolves a relative command with a path separator against the kubeconfig's
    // directory; bare names are looked up in PATH.
    if (typeof spec.command === "string" && spec.command.includes("/")) {
      spec.command = absolute(file.dir, spec.command)!;
    }
    const { cluster } = init;
    return new ExecCredentials({ spec, base, cluster, source: file.path, field: `${field}.exec` });
  }
  const tokenFile = tokenFileOf(user);
  if (tokenFile) {
    const credentials = new TokenFileCredentials({
      path: absolute(file.dir, tokenFile.path)!,
      base,
      refreshMs: init.tokenRefreshMs,
      source: file.path,
      field: `${field}.${tokenFile.field}`,
    });
    await credentials.get(); // fail now, not on the first request
    return credentials;
  }
  if (user.authProvider) return await authProviderCredentials({ ...init, user, file });
  if (user.token) return new StaticCredentials("token", withBearer(base, user.token));
  if (user.username) {
    const basic = base64(`${user.username}:${user.password ?? ""}`);
    return new StaticCredentials("basic", {
      headers: [...base.headers, ["Authorization", `Basic ${basic}`]],
    });
  }
  return new StaticCredentials(init.hasCert ? "client-certificate" : "none", base);
}

/**
 * The token file to read (relative to the kubeconfig, re-read as it rotates) and its field: an
 * auth-provider's `tokenFile`; else, without an auth-provider or a token, client-node's
 * `token-file` or client-go's `tokenFile`.
 */
function tokenFileOf(user: User): { path: string; field: string } | undefined {
  const providerTokenFile = user.authProvider?.config?.tokenFile;
  if (typeof providerTokenFile === "string" && providerTokenFile) {
    return { path: providerTokenFile, field: "auth-provider.config.tokenFile" };
  }
  if (user.authProvider || user.token) return undefined;
  const key = typeof user.raw["token-file"] === "string" ? "token-file" : "tokenFile";
  const path = user.raw[key];
  return typeof path === "string" && path ? { path, field: key } : undefined;
}

function impersonationHeaders(user: User): [string, string][] {
  const headers: [string, string][] = [];
  const rawUser = user.raw;
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
