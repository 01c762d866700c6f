/**
 * The Deno permission flags an operator runs with: the API server, the operator's own listening
 * addresses, the files of its module graph one by one, the files, variables and programs its
 * credentials need, and nothing else unless the user adds it.
 *
 * @module
 */
import { parseServerUrl } from "../webhooks/urls.ts";
import type { ApiTarget } from "./api_target.ts";
import { type ContextKubeconfig, KUBECONFIG_VARIABLE } from "./context_kubeconfig.ts";
import { UsageError } from "./errors.ts";

/** The kinds of permission the launcher scopes. */
export type PermissionName = "net" | "read" | "write" | "env" | "run" | "sys" | "import" | "ffi";

const NAMES: readonly PermissionName[] = [
  "net",
  "read",
  "write",
  "env",
  "run",
  "sys",
  "import",
  "ffi",
];

const SHORT: Record<string, PermissionName> = {
  N: "net",
  R: "read",
  W: "write",
  E: "env",
  S: "sys",
};

/**
 * Deno's defaults for `--allow-import`, kept when the launcher adds hosts of remote handler files
 * (an explicit list replaces the defaults).
 */
export const DEFAULT_IMPORT_HOSTS: readonly string[] = [
  "deno.land:443",
  "jsr.io:443",
  "esm.sh:443",
  "raw.esm.sh:443",
  "cdn.jsdelivr.net:443",
  "raw.githubusercontent.com:443",
  "gist.githubusercontent.com:443",
];

/** A set of scoped grants; a kind in `unscoped` is granted wholesale (`--allow-net` alone). */
export class Permissions {
  readonly scoped: Map<PermissionName, Set<string>> = new Map();
  readonly unscoped: Set<PermissionName> = new Set();
  /** Other Deno flags, passed through in order. */
  readonly otherFlags: string[] = [];
  /** `-A` / `--allow-all` was asked for. */
  all = false;

  /** Grants `values` of `name`. */
  add(name: PermissionName, ...values: string[]): this {
    let set = this.scoped.get(name);
    if (!set) this.scoped.set(name, set = new Set());
    for (const value of values) if (value) set.add(value);
    return this;
  }

  /** Whether `value` of `name` is granted exactly (or the whole kind is). */
  has(name: PermissionName, value: string): boolean {
    return this.all || this.unscoped.has(name) || (this.scoped.get(name)?.has(value) ?? false);
  }

  /**
   * Takes a Deno flag: `--allow-X[=a,b]` (and the short `-N`, `-R`, `-W`, `-E`, `-S`) merge into
   * the grants, `-A`/`--allow-all` grants everything, anything else is kept as is.
   */
  addFlag(flag: string): this {
    if (flag === "-A" || flag === "--allow-all") {
      this.all = true;
      return this;
    }
    const long = flag.match(/^--allow-([a-z]+)(?:=(.*))?$/s);
    const short = flag.match(/^-([NRWES])(?:=(.*))?$/s);
    const name = (long ? long[1] : short ? SHORT[short[1]] : undefined) as PermissionName;
    const value = long ? long[2] : short ? short[2] : undefined;
    if (name && NAMES.includes(name)) {
      if (value === undefined || value === "") this.unscoped.add(name);
      else this.add(name, ...value.split(",").map((v) => v.trim()));
      return this;
    }
    if (long || short) throw new UsageError(`unknown Deno permission flag: ${flag}`);
    this.otherFlags.push(flag);
    return this;
  }

  /**
   * The flags for `deno run`: `--no-prompt` (a missing grant is a hard error, never a question),
   * one `--allow-X=…` per kind, and `--ignore-env` so that code which enumerates the environment
   * sees only the allowed variables instead of failing.
   */
  toFlags(): string[] {
    const flags = ["--no-prompt"];
    if (this.all) flags.push("--allow-all");
    else {
      for (const name of NAMES) {
        if (this.unscoped.has(name)) flags.push(`--allow-${name}`);
        else {
          const values = this.scoped.get(name);
          if (values && values.size > 0) flags.push(`--allow-${name}=${[...values].join(",")}`);
        }
      }
      if (!this.unscoped.has("env")) flags.push("--ignore-env");
    }
    flags.push(...this.otherFlags);
    return flags;
  }
}

/** Everything that decides the grants of one operator. */
export interface PermissionInputs {
  /** Where the client connects, and what it reads for that. */
  target: ApiTarget;
  /**
   * The kubeconfig of the one context, handed over in {@linkcode KUBECONFIG_VARIABLE} (`kopf run`
   * with a kubeconfig). Then the operator may read that variable and the token files it names,
   * but neither the kubeconfig files nor the variables that find them; without it, it may read
   * what the target's client reads (`target.readPaths`, `target.envNames`).
   */
  handoff?: Pick<ContextKubeconfig, "readPaths" | "execCommands">;
  /**
   * Local module files of the operator (absolute paths, see `module_graph.ts`): each is readable,
   * exactly that file; no directory is granted for them.
   */
  moduleFiles?: string[];
  /** Remote modules (URLs) the handlers load; their hosts become importable. */
  remoteModules?: string[];
  /** Addresses the operator listens on (`host:port`), e.g. the liveness endpoint. */
  listen?: string[];
  /** Variables the operator reads besides the client's (e.g. `POD_ID`). */
  env?: string[];
  /** The user's own additions: `--allow-*` flags and other Deno flags. */
  extraFlags?: string[];
  /**
   * Grant `--allow-sys=uid`: the npm Kubernetes client needs it to look for kubeconfig files,
   * and silently falls back to `localhost:8080` without it.
   */
  sysUid?: boolean;
}

/**
 * Variables every operator may read: its identity for Kopf's peering (`POD_ID`) and for Leases
 * (`POD_NAME`, else `HOSTNAME`, which a pod's is).
 */
export const OPERATOR_ENV: readonly string[] = ["POD_ID", "POD_NAME", "HOSTNAME"];

/**
 * Computes the grants of an operator.
 *
 * @example
 * ```ts
 * import { operatorPermissions } from "./permissions.ts";
 * import { resolveApiTarget } from "./api_target.ts";
 * const target = resolveApiTarget({ kubeconfig: "/tmp/kubeconfig" });
 * const flags = operatorPermissions({ target, moduleFiles: ["/app/handlers.ts"] }).toFlags();
 * // ["--no-prompt", "--allow-net=127.0.0.1:6443", "--allow-read=/tmp/kubeconfig,/app/handlers.ts", …]
 * ```
 */
export function operatorPermissions(inputs: PermissionInputs): Permissions {
  const { target, handoff } = inputs;
  const perms = new Permissions();
  perms.add("net", target.netAddress, ...target.extraNet, ...(inputs.listen ?? []));
  perms.add("read", ...(handoff ? handoff.readPaths : target.readPaths));
  perms.add("read", ...(inputs.moduleFiles ?? []));
  perms.add(
    "env",
    ...(handoff ? [KUBECONFIG_VARIABLE] : target.envNames),
    ...OPERATOR_ENV,
    ...(inputs.env ?? []),
  );
  const programs = handoff ? handoff.execCommands : target.execCommands;
  if (programs.length > 0) perms.add("run", ...programs);
  if (inputs.sysUid) perms.add("sys", "uid");
  const remoteHosts = (inputs.remoteModules ?? []).map((url) => {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || (parsed.protocol === "http:" ? "80" : "443")}`;
  });
  if (remoteHosts.length > 0) perms.add("import", ...DEFAULT_IMPORT_HOSTS, ...remoteHosts);
  for (const flag of inputs.extraFlags ?? []) perms.addFlag(flag);
  return perms;
}

/**
 * The address a listener needs in `--allow-net`, from a URL like Kopf's
 * `--liveness http://0.0.0.0:8080/healthz`.
 */
export function listenAddressOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${url}`);
  }
  if (parsed.protocol !== "http:") throw new UsageError(`only http:// is supported: ${url}`);
  return `${parsed.hostname}:${parsed.port || "80"}`;
}

/**
 * The address the webhook server needs in `--allow-net`, from `--webhook-server`: exactly its
 * `host:port` (an IPv6 address in brackets), nothing wider.
 */
export function webhookListenAddressOf(url: string): string {
  try {
    const { hostname, port } = parseServerUrl(url);
    return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  } catch (error) {
    throw new UsageError(`--webhook-server: ${(error as Error).message}`);
  }
}

/**
 * The addresses to allow listening on for the given endpoint URLs (the liveness and the metrics
 * URL), each once: the two may share a port.
 *
 * @example
 * ```ts
 * import { listenAddresses } from "./permissions.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   listenAddresses("http://0.0.0.0:8080/healthz", "http://0.0.0.0:8080/metrics"),
 *   ["0.0.0.0:8080"],
 * );
 * ```
 */
export function listenAddresses(...urls: (string | undefined)[]): string[] {
  return [...new Set(urls.filter((u) => u !== undefined).map(listenAddressOf))];
}

/** Quotes a shell word when needed, for the commands the CLI prints. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}
