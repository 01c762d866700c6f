/**
 * Credential sources: what goes into each request's `Authorization` header (and, for exec
 * plugins that return certificates, which client certificate to present).
 *
 * Each source caches what it has and is cheap on the hot path; `invalidate()` drops the cache
 * after a 401 so the next request re-runs the exec plugin or re-reads the token file.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ConfigError } from "../errors.ts";
import { fileError, oneLine } from "./inputs.ts";

const logger = getLogger(["kopf", "kube"]);

/** An exec plugin that has not answered within this is killed, and the request fails. */
const EXEC_TIMEOUT_MS = 60_000;

/** What a credential source contributes to one request. */
export interface AuthMaterial {
  /** Headers to add, as pairs (a name may repeat, e.g. `Impersonate-Group`). */
  readonly headers: readonly (readonly [string, string])[];
  /** Client certificate (PEM) to present, when the source provides one. */
  readonly certPem?: string;
  /** Client key (PEM) for {@linkcode AuthMaterial.certPem}. */
  readonly keyPem?: string;
  /** When this material expires (ms since the epoch), if its source says (exec plugins). */
  readonly expiresAt?: number;
}

/** How a request authenticates. */
export type CredentialKind =
  | "none"
  | "token"
  | "token-file"
  | "basic"
  | "client-certificate"
  | "exec"
  | "auth-provider";

/**
 * A source of credentials for requests.
 *
 * @example
 * ```ts
 * import { tokenCredentials } from "./credentials.ts";
 * const credentials = tokenCredentials("s3cr3t");
 * const { headers } = await credentials.get(); // [["Authorization", "Bearer s3cr3t"]]
 * ```
 */
export interface Credentials {
  /** How this source authenticates. */
  readonly kind: CredentialKind;
  /** The material for the next request (cached; refreshed when expired). */
  get(): Promise<AuthMaterial>;
  /**
   * Forgets cached material after the server rejected it (401). Returns whether fetching it
   * again can give something different — i.e. whether retrying the request makes sense.
   */
  invalidate(): boolean;
}

/** Fixed credentials: a static token, basic auth, a client certificate, or nothing. */
export class StaticCredentials implements Credentials {
  readonly kind: CredentialKind;
  #material: Promise<AuthMaterial>;

  /** Credentials that always give `material`. */
  constructor(kind: CredentialKind, material: AuthMaterial) {
    this.kind = kind;
    this.#material = Promise.resolve(material);
  }

  get(): Promise<AuthMaterial> {
    return this.#material;
  }

  invalidate(): boolean {
    return false;
  }
}

/**
 * Credentials with a fixed bearer token.
 *
 * @example
 * ```ts
 * import { tokenCredentials } from "./credentials.ts";
 * const credentials = tokenCredentials("s3cr3t");
 * ```
 */
export function tokenCredentials(token: string): Credentials {
  return new StaticCredentials("token", withBearer({ headers: [] }, token));
}

/** `base` with a bearer token added to its headers. */
export function withBearer(base: AuthMaterial, token: string): AuthMaterial {
  return { ...base, headers: [...base.headers, ["Authorization", `Bearer ${token}`]] };
}

/**
 * A bearer token read from a file, re-read every `refreshMs` (60 s like client-go, so rotated
 * service-account tokens are picked up) and at once after a 401.
 */
export class TokenFileCredentials implements Credentials {
  readonly kind: CredentialKind = "token-file";
  /** The token file. */
  readonly path: string;
  #base: AuthMaterial;
  #refreshMs: number;
  #now: () => number;
  #readAt = -Infinity;
  #token?: string;
  #pending?: Promise<AuthMaterial>;
  #at: { source: string; field: string };

  /** Creates the source; the file is read on first use. */
  constructor(init: {
    path: string;
    base?: AuthMaterial;
    refreshMs?: number;
    now?: () => number;
    source: string;
    field: string;
  }) {
    this.path = init.path;
    this.#base = init.base ?? { headers: [] };
    this.#refreshMs = init.refreshMs ?? 60_000;
    this.#now = init.now ?? (() => performance.now());
    this.#at = { source: init.source, field: init.field };
  }

  get(): Promise<AuthMaterial> {
    if (this.#token !== undefined && this.#now() - this.#readAt < this.#refreshMs) {
      return Promise.resolve(withBearer(this.#base, this.#token));
    }
    this.#pending ??= this.#read().finally(() => this.#pending = undefined);
    return this.#pending;
  }

  invalidate(): boolean {
    this.#readAt = -Infinity;
    return true;
  }

  async #read(): Promise<AuthMaterial> {
    let token: string;
    try {
      token = (await Deno.readTextFile(this.path)).trim();
    } catch (error) {
      // A token that was readable before keeps working until the file is back (a rotation
      // in progress replaces the file non-atomically on some volume types).
      if (this.#token !== undefined) {
        logger.warn("Cannot re-read the token file {path}: {error}; using the previous token", {
          path: this.path,
          error: String(error),
        });
        this.#readAt = this.#now();
        return withBearer(this.#base, this.#token);
      }
      throw new ConfigError(`cannot read token file ${this.path}: ${fileError(error)}`, {
        ...this.#at,
        cause: error,
      });
    }
    if (!token) {
      throw new ConfigError(`token file ${this.path} is empty`, this.#at);
    }
    this.#token = token;
    this.#readAt = this.#now();
    return withBearer(this.#base, token);
  }
}

/** The `exec` stanza of a kubeconfig user (client-go's `ExecConfig`). */
export interface ExecSpec {
  /** The plugin: a path, or a name looked up in `PATH`. */
  command: string;
  /** Its arguments. */
  args?: string[];
  /** Extra environment variables for it. */
  env?: { name: string; value: string }[];
  /** The `ExecCredential` version asked for (default `client.authentication.k8s.io/v1`). */
  apiVersion?: string;
  /** Shown when the command is not found. */
  installHint?: string;
  /** Pass the cluster's details in `KUBERNETES_EXEC_INFO`. */
  provideClusterInfo?: boolean;
  /** `Never` / `IfAvailable` / `Always`; the plugin is always run without a terminal here. */
  interactiveMode?: string;
}

/** What the exec plugin learns about the cluster when `provideClusterInfo` is set. */
export interface ExecClusterInfo {
  /** API server URL. */
  server: string;
  /** CA bundle, base64-encoded PEM. */
  "certificate-authority-data"?: string;
  /** TLS server name override. */
  "tls-server-name"?: string;
  /** Whether the server's certificate is not verified. */
  "insecure-skip-tls-verify"?: boolean;
  /** Proxy URL. */
  "proxy-url"?: string;
}

/**
 * Credentials from an exec plugin (client-go's credential plugin protocol): runs the command,
 * reads an `ExecCredential` from its stdout, and reuses it until `expirationTimestamp` — or
 * until a 401 says it is no longer good.
 */
export class ExecCredentials implements Credentials {
  readonly kind: CredentialKind = "exec";
  #spec: ExecSpec;
  #base: AuthMaterial;
  #cluster?: ExecClusterInfo;
  #at: { source: string; field: string };
  #cached?: { material: AuthMaterial; expiresAt: number };
  #pending?: Promise<AuthMaterial>;

  /** Creates the source; the plugin runs on first use. */
  constructor(init: {
    spec: ExecSpec;
    base?: AuthMaterial;
    cluster?: ExecClusterInfo;
    source: string;
    field: string;
  }) {
    if (!init.spec || typeof init.spec.command !== "string" || !init.spec.command) {
      throw new ConfigError("exec plugin has no command", {
        source: init.source,
        field: init.field,
      });
    }
    this.#spec = init.spec;
    this.#base = init.base ?? { headers: [] };
    this.#cluster = init.cluster;
    this.#at = { source: init.source, field: init.field };
  }

  get(): Promise<AuthMaterial> {
    const cached = this.#cached;
    if (cached && Date.now() < cached.expiresAt) return Promise.resolve(cached.material);
    this.#pending ??= this.#run().finally(() => this.#pending = undefined);
    return this.#pending;
  }

  invalidate(): boolean {
    this.#cached = undefined;
    return true;
  }

  async #run(): Promise<AuthMaterial> {
    const spec = this.#spec;
    const apiVersion = spec.apiVersion ?? "client.authentication.k8s.io/v1";
    const info: Record<string, unknown> = {
      apiVersion,
      kind: "ExecCredential",
      spec: { interactive: false, ...(spec.provideClusterInfo ? { cluster: this.#cluster } : {}) },
    };
    const env: Record<string, string> = { KUBERNETES_EXEC_INFO: JSON.stringify(info) };
    for (const { name, value } of spec.env ?? []) env[name] = value;
    const fail = (message: string, cause?: unknown) =>
      new ConfigError(`exec plugin "${spec.command}" ${message}`, { ...this.#at, cause });

    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(spec.command, {
        args: spec.args ?? [],
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(EXEC_TIMEOUT_MS),
      }).output();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw fail(`not found${spec.installHint ? ` (${oneLine(spec.installHint)})` : ""}`, error);
      }
      if (
        error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ) {
        throw fail(`cannot be run: ${oneLine(String(error))} (grant --allow-run for it)`, error);
      }
      throw fail(`failed to start: ${oneLine(String(error))}`, error);
    }
    const stderr = new TextDecoder().decode(output.stderr).trim();
    if (!output.success) {
      const how = output.signal
        ? `was killed by ${output.signal}`
        : `exited with code ${output.code}`;
      throw fail(`${how}${stderr ? `: ${oneLine(stderr)}` : ""}`);
    }
    let credential: {
      kind?: string;
      apiVersion?: string;
      status?: {
        token?: string;
        clientCertificateData?: string;
        clientKeyData?: string;
        expirationTimestamp?: string;
      };
    };
    try {
      credential = JSON.parse(new TextDecoder().decode(output.stdout));
    } catch (error) {
      throw fail(`printed no valid JSON: ${oneLine(String(error))}`, error);
    }
    if (credential?.kind !== "ExecCredential" || !credential.status) {
      throw fail(`printed no ExecCredential with a status (kind: ${credential?.kind})`);
    }
    if (credential.apiVersion && credential.apiVersion !== apiVersion) {
      throw fail(`answered ${credential.apiVersion}, but ${apiVersion} was asked for`);
    }
    const { token, clientCertificateData, clientKeyData, expirationTimestamp } = credential.status;
    if (!token && !(clientCertificateData && clientKeyData)) {
      throw fail("returned neither a token nor a client certificate and key");
    }
    let expiresAt = Infinity;
    if (expirationTimestamp) {
      expiresAt = Date.parse(expirationTimestamp);
      if (Number.isNaN(expiresAt)) {
        throw fail(`returned a bad expirationTimestamp ${JSON.stringify(expirationTimestamp)}`);
      }
    }
    const headers = [...this.#base.headers];
    if (token) headers.push(["Authorization", `Bearer ${token}`]);
    const material: AuthMaterial = {
      headers,
      certPem: clientCertificateData ?? this.#base.certPem,
      keyPem: clientKeyData ?? this.#base.keyPem,
      ...(Number.isFinite(expiresAt) ? { expiresAt } : {}),
    };
    this.#cached = { material, expiresAt };
    logger.debug("Exec plugin {command} gave credentials (expire: {expires})", {
      command: spec.command,
      expires: expirationTimestamp ?? "never",
    });
    return material;
  }
}
