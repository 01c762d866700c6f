/**
 * Custom credentials from `kopf.on.login` handlers (Kopf's `ConnectionInfo` and credentials
 * vault), as a `Credentials` source for the Kubernetes client.
 *
 * The login activity runs when credentials are first needed; each handler's result is one
 * candidate. Requests use the highest-`priority` candidate that has not expired. After a 401,
 * the client invalidates the one it used; when none is left (or all have expired), the login
 * activity runs again — so credentials are refreshed on 401 and on expiration, as in Kopf.
 *
 * The API server, its CA and TLS options come from the first login: they decide the client's
 * connection. A re-login that names another server keeps the first one (with a warning).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ClusterConfig, TlsSettings } from "../kube/config/mod.ts";
import type { AuthMaterial, Credentials } from "../kube/config/mod.ts";
import type { Memo } from "../registry/context.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings/settings.ts";
import { isObject } from "../storage/fields.ts";
import { runActivity } from "./activities.ts";

const logger = getLogger(["kopf", "activities", "login"]);

/**
 * What a `kopf.on.login` handler returns (Kopf's `ConnectionInfo`, camel-cased).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const fields: kopf.ConnectionInfoFields = {
 *   server: "https://10.0.0.1:6443",
 *   token: "s3cr3t",
 *   insecure: true,
 * };
 * kopf.on.login(function staticToken() {
 *   return fields; // a plain object is accepted as well as a ConnectionInfo
 * });
 * ```
 */
export interface ConnectionInfoFields {
  /** API server URL, e.g. `https://10.0.0.1:6443`. */
  server: string;
  /** A CA bundle file to verify the server with. */
  caPath?: string;
  /** A CA bundle (PEM, or base64 of PEM as in kubeconfigs). */
  caData?: string;
  /** Do not verify the server's certificate. */
  insecure?: boolean;
  /** Basic authentication user. */
  username?: string;
  /** Basic authentication password. */
  password?: string;
  /** The `Authorization` scheme for `token` (default `Bearer`). */
  scheme?: string;
  /** A token (sent as `Authorization: <scheme> <token>`). */
  token?: string;
  /** A client certificate file. */
  certificatePath?: string;
  /** A client certificate (PEM, or base64 of PEM). */
  certificateData?: string;
  /** The client key file. */
  privateKeyPath?: string;
  /** The client key (PEM, or base64 of PEM). */
  privateKeyData?: string;
  /** The default namespace. */
  defaultNamespace?: string;
  /** An HTTP(S) proxy for the API server. */
  proxyUrl?: string;
  /** Higher wins when several handlers give credentials (default 0). */
  priority?: number;
  /** When these credentials expire (a `Date`, an ISO string, or ms since the epoch). */
  expiration?: Date | string | number;
}

/**
 * Connection info returned by a `kopf.on.login` handler; a plain object with the same fields
 * is accepted too.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.login(async function fromVault() {
 *   const response = await fetch("https://vault.example.com/v1/k8s/token");
 *   const { token } = await response.json() as { token: string };
 *   return new kopf.ConnectionInfo({
 *     server: "https://10.0.0.1:6443",
 *     caPath: "/etc/ca.pem",
 *     token,
 *     expiration: new Date(Date.now() + 30 * 60_000),
 *   });
 * });
 * ```
 */
export class ConnectionInfo implements ConnectionInfoFields {
  /** API server URL. */
  server!: string;
  /** Everything else from {@linkcode ConnectionInfoFields}. */
  constructor(fields: ConnectionInfoFields) {
    Object.assign(this, fields);
  }
}
/** The fields of a {@linkcode ConnectionInfo} (merged into the class for type checking). */
export interface ConnectionInfo extends ConnectionInfoFields {}

/** Read a PEM from data (PEM text or base64 of it) or a file. */
async function pem(
  data: string | undefined,
  path: string | undefined,
): Promise<string | undefined> {
  if (data) {
    if (data.includes("-----BEGIN")) return data;
    try {
      return new TextDecoder().decode(Uint8Array.from(atob(data.trim()), (c) => c.charCodeAt(0)));
    } catch {
      return data;
    }
  }
  if (path) return await Deno.readTextFile(path);
  return undefined;
}

/** Check and normalise one handler's result. */
export function toConnectionInfo(id: string, value: unknown): ConnectionInfoFields {
  if (!isObject(value) || typeof value.server !== "string" || !value.server) {
    throw new TypeError(
      `Login handler '${id}' returned no connection info (an object with a server URL is needed)`,
    );
  }
  return value as unknown as ConnectionInfoFields;
}

function expiresAt(info: ConnectionInfoFields): number {
  const value = info.expiration;
  if (value === undefined || value === null) return Infinity;
  const time = value instanceof Date ? value.getTime() : new Date(value).getTime();
  return Number.isNaN(time) ? Infinity : time;
}

/** The per-request material of one connection info. */
export async function materialOf(info: ConnectionInfoFields): Promise<AuthMaterial> {
  const headers: [string, string][] = [];
  if (info.token) headers.push(["Authorization", `${info.scheme ?? "Bearer"} ${info.token}`]);
  else if (info.username !== undefined && info.password !== undefined) {
    headers.push(["Authorization", `Basic ${btoa(`${info.username}:${info.password}`)}`]);
  }
  const certPem = await pem(info.certificateData, info.certificatePath);
  const keyPem = await pem(info.privateKeyData, info.privateKeyPath);
  return { headers, certPem, keyPem };
}

/** The TLS settings of one connection info. */
export async function tlsOf(info: ConnectionInfoFields): Promise<TlsSettings> {
  return {
    caPem: await pem(info.caData, info.caPath),
    insecureSkipTlsVerify: info.insecure || undefined,
    proxyUrl: info.proxyUrl,
  };
}

interface Candidate {
  id: string;
  info: ConnectionInfoFields;
  material: AuthMaterial;
  expires: number;
}

/** How the login activity is run. */
export interface LoginOptions {
  /** Where the login handlers are registered. */
  registry: Registry;
  /** The settings. */
  settings: Settings;
  /** The operator-wide memo. */
  memo: Memo;
  /** The operator's indexes. */
  indices?: Readonly<Record<string, unknown>>;
  /** Stops a login in progress. */
  signal?: AbortSignal;
  /** Milliseconds now (tests). */
  now?: () => number;
}

/**
 * Credentials from `kopf.on.login` handlers: a vault of candidates, refilled by the login
 * activity when it runs empty. Plugs into the client as `ClusterConfig.credentials`.
 */
export class LoginCredentials implements Credentials {
  readonly kind = "exec" as const;
  readonly #options: LoginOptions;
  readonly #now: () => number;
  #candidates: Candidate[] = [];
  #used: Candidate | undefined;
  #login: Promise<void> | undefined;
  #logins = 0;
  #server: string | undefined;

  /** Credentials that log in on first use. */
  constructor(options: LoginOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** How many times the login activity has run. */
  get logins(): number {
    return this.#logins;
  }

  /** The connection info of the first login (after {@linkcode LoginCredentials.login}). */
  get first(): ConnectionInfoFields | undefined {
    return this.#first;
  }
  #first: ConnectionInfoFields | undefined;

  /** Run the login activity now (once at a time) and refill the vault. */
  login(): Promise<void> {
    this.#login ??= this.#doLogin().finally(() => this.#login = undefined);
    return this.#login;
  }

  async get(): Promise<AuthMaterial> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const now = this.#now();
      this.#candidates = this.#candidates.filter((c) => c.expires > now);
      const best = this.#best();
      if (best) {
        this.#used = best;
        return best.material;
      }
      await this.login();
    }
    throw new Error("kopf.on.login handlers gave no usable credentials");
  }

  invalidate(): boolean {
    if (this.#used) {
      this.#candidates = this.#candidates.filter((c) => c !== this.#used);
      this.#used = undefined;
    }
    // Another candidate, or a new login, can give different credentials.
    return true;
  }

  #best(): Candidate | undefined {
    if (!this.#candidates.length) return undefined;
    const top = Math.max(...this.#candidates.map((c) => c.info.priority ?? 0));
    const best = this.#candidates.filter((c) => (c.info.priority ?? 0) === top);
    return best[Math.floor(Math.random() * best.length)];
  }

  async #doLogin(): Promise<void> {
    const title = this.#logins ? "Re-authentication" : "Initial authentication";
    this.#logins += 1;
    logger.info("{title} has been initiated.", { title });
    const results = await runActivity({
      registry: this.#options.registry,
      activity: "login",
      settings: this.#options.settings,
      memo: this.#options.memo,
      indices: this.#options.indices,
      signal: this.#options.signal,
    });
    const candidates: Candidate[] = [];
    for (const [id, value] of Object.entries(results)) {
      const info = toConnectionInfo(id, value);
      if (this.#server !== undefined && info.server.replace(/\/+$/, "") !== this.#server) {
        logger.warn(
          "Login handler '{id}' names another API server ({server}); the client keeps {kept}.",
          { id, server: info.server, kept: this.#server },
        );
      }
      candidates.push({ id, info, material: await materialOf(info), expires: expiresAt(info) });
    }
    if (!candidates.length) {
      logger.warn("{title} has failed: no credentials were retrieved from the login handlers.", {
        title,
      });
      throw new Error("kopf.on.login handlers gave no credentials");
    }
    logger.info("{title} has finished.", { title });
    this.#candidates = candidates;
    if (!this.#first) {
      const first = candidates.reduce((a, b) =>
        (b.info.priority ?? 0) > (a.info.priority ?? 0) ? b : a
      );
      this.#first = first.info;
      this.#server = first.info.server.replace(/\/+$/, "");
    }
  }
}

/**
 * The cluster configuration from the `kopf.on.login` handlers, or `null` if there are none
 * (then the usual kubeconfig / in-cluster configuration applies). Runs the first login.
 */
export async function loginConfig(options: LoginOptions): Promise<ClusterConfig | null> {
  if (!options.registry.activityHandlers("login").length) return null;
  const credentials = new LoginCredentials(options);
  await credentials.login();
  const first = credentials.first!;
  return {
    server: first.server.replace(/\/+$/, ""),
    namespace: first.defaultNamespace,
    source: "kopf.on.login",
    tls: await tlsOf(first),
    credentials,
  };
}
