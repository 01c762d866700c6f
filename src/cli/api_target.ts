/**
 * Where the operator will talk to, worked out by the launcher before it starts the operator: the
 * API server address and every local file, variable and program the connection needs. Reads
 * kubeconfigs with js-yaml only, so that the launcher stays light and never loads the Kubernetes
 * client.
 *
 * The order of sources is client-go's: `--kubeconfig`, then `$KUBECONFIG` (a merged list), then the
 * in-cluster service account, then `~/.kube/config`.
 *
 * @module
 */
import { load } from "js-yaml";
import { UsageError } from "./errors.ts";

/** The service account directory mounted into every pod. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** What the operator will connect to, and what it needs to do so. */
export interface ApiTarget {
  /** How the address was found. */
  source: "kubeconfig" | "in-cluster";
  /** The API server URL, e.g. `https://127.0.0.1:6443`. */
  server: string;
  /** `host:port` of the server, in the form `--allow-net` takes (`[::1]:6443` for IPv6). */
  netAddress: string;
  /** The kubeconfig context used (kubeconfig source only). */
  context?: string;
  /** The kubeconfig files read (kubeconfig source only), in merge order. */
  kubeconfigs: string[];
  /** Files and directories the client reads: kubeconfigs, CA, client cert and key, token files. */
  readPaths: string[];
  /** Environment variables the client reads. */
  envNames: string[];
  /** Exec credential plugins (absolute paths) the client runs. */
  execCommands: string[];
  /** Other hosts the client connects to (a `proxy-url`). */
  extraNet: string[];
  /** Things worth a warning (unsupported auth providers, skipped TLS verification). */
  warnings: string[];
  /**
   * The kubeconfig entries of the context used (kubeconfig source only), as merged: what
   * `contextKubeconfig()` (context_kubeconfig.ts) turns into the kubeconfig the operator gets.
   */
  selected?: SelectedContext;
}

/** One named entry of a kubeconfig list (a cluster, user or context) and the file it came from. */
export interface KubeconfigEntry {
  /** Its name. */
  name: string;
  /** The kubeconfig file that defined it first (relative paths in it are relative to this). */
  file: string;
  /** The entry's body: the `cluster`, `user` or `context` mapping, as written. */
  // deno-lint-ignore no-explicit-any
  value: Record<string, any>;
}

/** The entries a context brings together. */
export interface SelectedContext {
  /** The context itself. */
  context: KubeconfigEntry;
  /** Its cluster. */
  cluster: KubeconfigEntry;
  /** Its user, when it names one. */
  user?: KubeconfigEntry;
}

/** Where to look; defaults come from the process environment. */
export interface TargetSources {
  /** `--kubeconfig`: one path, or a list separated like `$KUBECONFIG`. */
  kubeconfig?: string;
  /** `--context`. */
  context?: string;
  /** Defaults to `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /** Defaults to {@linkcode SERVICE_ACCOUNT_DIR}. */
  serviceAccountDir?: string;
  /** The working directory for relative paths; defaults to `Deno.cwd()`. */
  cwd?: string;
}

// deno-lint-ignore no-explicit-any
type Yaml = Record<string, any>;

type Named = KubeconfigEntry;

/** Joins `path` to `base` unless it is absolute, and normalises `.` and `..` segments. */
export function resolvePath(base: string, path: string): string {
  const joined = path.startsWith("/") ? path : `${base.replace(/\/+$/, "")}/${path}`;
  const out: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** The directory part of an absolute path. */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** `host:port` of a URL as `--allow-net` spells it; the scheme's default port when none is given. */
export function netAddressOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`the API server address is not a URL: ${url}`);
  }
  const port = parsed.port ||
    (parsed.protocol === "https:" ? "443" : parsed.protocol === "http:" ? "80" : "");
  if (!port) throw new UsageError(`the API server address has no port: ${url}`);
  return `${parsed.hostname}:${port}`;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function readKubeconfig(path: string): Yaml {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read the kubeconfig ${path}: ${(error as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = load(text);
  } catch (error) {
    const reason = (error as Error).message.split("\n")[0];
    throw new UsageError(`the kubeconfig ${path} is not valid YAML: ${reason}`);
  }
  if (doc === undefined || doc === null) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(`the kubeconfig ${path} is not a YAML mapping`);
  }
  return doc as Yaml;
}

function splitList(value: string): string[] {
  return value.split(":").filter((p) => p !== "");
}

/**
 * Merges kubeconfig files like client-go: for clusters, users and contexts the first file that
 * defines a name wins, and so does the first `current-context`. Missing files in a list are
 * skipped, as client-go does.
 */
function merge(paths: string[]) {
  const clusters = new Map<string, Named>();
  const users = new Map<string, Named>();
  const contexts = new Map<string, Named>();
  let current: string | undefined;
  const read: string[] = [];
  for (const file of paths) {
    if (paths.length > 1 && !exists(file)) continue;
    const doc = readKubeconfig(file);
    read.push(file);
    const add = (map: Map<string, Named>, list: unknown, field: string) => {
      if (!Array.isArray(list)) return;
      for (const item of list) {
        if (item && typeof item.name === "string" && !map.has(item.name)) {
          map.set(item.name, { name: item.name, file, value: item[field] ?? {} });
        }
      }
    };
    add(clusters, doc.clusters, "cluster");
    add(users, doc.users, "user");
    add(contexts, doc.contexts, "context");
    if (current === undefined && typeof doc["current-context"] === "string") {
      current = doc["current-context"] || undefined;
    }
  }
  return { clusters, users, contexts, current, read };
}

/** Finds a program on `$PATH` (as the kube client will when it runs it). */
function which(command: string, env: (name: string) => string | undefined): string | undefined {
  for (const dir of splitList(env("PATH") ?? "")) {
    const candidate = `${dir}/${command}`;
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111)) return candidate;
    } catch { /* not in this directory */ }
  }
  return undefined;
}

function fromKubeconfig(paths: string[], sources: TargetSources): ApiTarget {
  const env = sources.env ?? ((name: string) => Deno.env.get(name));
  const { clusters, users, contexts, current, read } = merge(paths);
  if (read.length === 0) {
    throw new UsageError(`none of the kubeconfig files exists: ${paths.join(", ")}`);
  }
  const where = read.join(", ");
  const contextName = sources.context ?? current;
  if (!contextName) {
    throw new UsageError(`the kubeconfig ${where} has no current context; pass --context NAME`);
  }
  const context = contexts.get(contextName);
  if (!context) throw new UsageError(`context "${contextName}" is not in the kubeconfig ${where}`);
  const clusterName = context.value.cluster;
  const cluster = clusters.get(clusterName);
  if (!cluster) {
    throw new UsageError(`cluster "${clusterName}" of context "${contextName}" is not in ${where}`);
  }
  const server = cluster.value.server;
  if (typeof server !== "string" || !server) {
    throw new UsageError(`cluster "${clusterName}" in ${cluster.file} has no server address`);
  }
  const target: ApiTarget = {
    source: "kubeconfig",
    server,
    netAddress: netAddressOf(server),
    context: contextName,
    kubeconfigs: read,
    readPaths: [...read],
    envNames: [],
    execCommands: [],
    extraNet: [],
    warnings: [],
    selected: { context, cluster },
  };
  const fileOf = (entry: Named, key: string) => {
    const path = entry.value[key];
    if (typeof path === "string" && path) {
      target.readPaths.push(resolvePath(dirname(entry.file), path));
    }
  };
  fileOf(cluster, "certificate-authority");
  if (typeof cluster.value["proxy-url"] === "string") {
    target.extraNet.push(netAddressOf(cluster.value["proxy-url"]));
  }
  if (cluster.value["insecure-skip-tls-verify"] === true) {
    target.warnings.push(`cluster "${clusterName}" skips TLS verification`);
  }
  const userName = context.value.user;
  const user = userName === undefined ? undefined : users.get(userName);
  if (userName !== undefined && !user) {
    throw new UsageError(`user "${userName}" of context "${contextName}" is not in ${where}`);
  }
  if (user) {
    target.selected!.user = user;
    fileOf(user, "client-certificate");
    fileOf(user, "client-key");
    // client-go's key is `tokenFile`, client-node's `token-file`: the client reads both.
    fileOf(user, "tokenFile");
    fileOf(user, "token-file");
    const exec = user.value.exec;
    if (exec && typeof exec.command === "string" && exec.command) {
      const command: string = exec.command;
      // client-go: a command with a slash is a path (relative to the kubeconfig); else $PATH.
      const resolved = command.includes("/")
        ? resolvePath(dirname(user.file), command)
        : which(command, env);
      if (!resolved) {
        throw new UsageError(
          `the credential plugin "${command}" of user "${userName}" is not on $PATH`,
        );
      }
      target.execCommands.push(resolved);
    }
    if (user.value["auth-provider"]) {
      const provider = user.value["auth-provider"].name ?? "unknown";
      target.warnings.push(`user "${userName}" uses the auth provider "${provider}"`);
    }
  }
  return target;
}

function fromCluster(env: (name: string) => string | undefined, dir: string): ApiTarget {
  const host = env("KUBERNETES_SERVICE_HOST")!;
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return inClusterTarget(`${bracketed}:${env("KUBERNETES_SERVICE_PORT")}`, dir);
}

/**
 * The target of an operator in a pod whose API server is `netAddress` (`host:port`, as in
 * `KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT`): for artifacts built outside the cluster.
 */
export function inClusterTarget(netAddress: string, dir: string = SERVICE_ACCOUNT_DIR): ApiTarget {
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d+$/.test(netAddress)) {
    throw new UsageError(`the API server address must be HOST:PORT, not "${netAddress}"`);
  }
  return {
    source: "in-cluster",
    server: `https://${netAddress}`,
    netAddress,
    kubeconfigs: [],
    // The directory, not the files: the kubelet rotates the token through a symlinked `..data/`.
    readPaths: [dir],
    envNames: ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"],
    execCommands: [],
    extraNet: [],
    warnings: [],
  };
}

/**
 * Works out the API server and what reaching it takes, from the flags and the environment.
 * Throws {@linkcode UsageError} with a one-line reason when there is no usable configuration.
 *
 * @example
 * ```ts
 * import { resolveApiTarget } from "./api_target.ts";
 * const target = resolveApiTarget({ kubeconfig: "/tmp/kubeconfig" });
 * console.log(target.netAddress); // "127.0.0.1:6443"
 * ```
 */
export function resolveApiTarget(sources: TargetSources = {}): ApiTarget {
  const env = sources.env ?? ((name: string) => Deno.env.get(name));
  const cwd = sources.cwd ?? Deno.cwd();
  if (sources.kubeconfig) {
    const paths = splitList(sources.kubeconfig).map((p) => resolvePath(cwd, p));
    if (paths.length === 1 && !exists(paths[0])) {
      throw new UsageError(`the kubeconfig ${paths[0]} does not exist`);
    }
    return fromKubeconfig(paths, sources);
  }
  const fromEnv = env("KUBECONFIG");
  if (fromEnv && splitList(fromEnv).length > 0) {
    const paths = splitList(fromEnv).map((p) => resolvePath(cwd, p));
    const target = fromKubeconfig(paths, sources);
    target.envNames.push("KUBECONFIG");
    return target;
  }
  const dir = sources.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  // Like the client (and controller-runtime): both variables set means "in a pod".
  if (env("KUBERNETES_SERVICE_HOST") && env("KUBERNETES_SERVICE_PORT")) {
    if (sources.context) {
      throw new UsageError(
        `--context needs a kubeconfig, but the operator is running in a cluster`,
      );
    }
    return fromCluster(env, dir);
  }
  const home = env("HOME");
  const fallback = home ? `${home}/.kube/config` : undefined;
  if (fallback && exists(fallback)) {
    const target = fromKubeconfig([fallback], sources);
    target.envNames.push("HOME");
    return target;
  }
  throw new UsageError(
    "no cluster configured: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, " +
      "or run in a pod with a service account",
  );
}
