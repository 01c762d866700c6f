/**
 * The webhook servers Kopf ships, on Deno's HTTPS server (`listening.ts`): `WebhookServer`
 * listening on an address, with a self-signed CA and certificate generated in memory unless
 * certificate files are given (re-read when they change), and its variants for local clusters
 * that reach their host by a magic hostname (K3d, Minikube, Docker Desktop), and the one that
 * detects which of them it runs for. Tunnels (Kopf's ngrok) are not provided.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type {
  WebhookClientConfig,
  WebhookClientConfigService,
  WebhookFn,
  WebhookServeContext,
} from "../storage/reviews.ts";
import {
  type CertificateSet,
  decryptedKey,
  generateCertificates,
  hasCertificate,
  isIpAddress,
} from "./certificates.ts";
import { DOCKER_DESKTOP_HOST, guessHost, K3D_HOST, MINIKUBE_HOST } from "./detection.ts";
import { listen, type ListenerTls, type VerifyMode } from "./listening.ts";
import { normalizedPath, parseServerUrl } from "./urls.ts";
import { base64 } from "../kube/base64.ts";

const logger = getLogger(["kopf", "webhooks"]);

/**
 * Options of {@linkcode WebhookServer} (Kopf's, camel-cased).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.WebhookServerOptions = {
 *   addr: "0.0.0.0",
 *   port: 9443,
 *   certFile: "/secrets/tls.crt", // e.g. from cert-manager; re-read when it changes
 *   pkeyFile: "/secrets/tls.key",
 *   caFile: "/secrets/ca.crt",
 * };
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookServer(options);
 * });
 * ```
 */
export interface WebhookServerOptions {
  /** The address to listen on (default `127.0.0.1`; the cluster variants: `0.0.0.0`). */
  addr?: string;
  /** The port (default 0: a free one, chosen once and kept while the operator runs). */
  port?: number;
  /** The path prefix of the webhooks (each handler is served at `<path>/<handler id>`). */
  path?: string;
  /**
   * The hostname the API server uses to reach the server (default: the variant's magic
   * hostname, else `addr`, with `0.0.0.0` reached as `127.0.0.1` and `::` as `::1`).
   */
  host?: string;
  /** The CA bundle (PEM) for the webhook configurations, if not the certificate's own. */
  caData?: string;
  /** A file with that CA bundle. */
  caFile?: string;
  /** Write the CA bundle in use to this file (e.g. for `curl --cacert`). */
  caDump?: string;
  /** Serve plain HTTP (the API server accepts only HTTPS: for tunnels and debugging). */
  insecure?: boolean;
  /** The serving certificate (PEM, with its chain); with `pkeyFile`. Default: generated. */
  certFile?: string;
  /** Its private key (PEM). */
  pkeyFile?: string;
  /** The password of an encrypted `pkeyFile`. */
  password?: string;
  /** More names (DNS or IP) for the generated certificate. */
  extraSans?: readonly string[];
  /**
   * Verify client certificates: `"optional"` (a verified one reaches handlers as `sslpeer`),
   * `"required"` (a client without one is refused in the TLS handshake), `"none"`. Default:
   * `"optional"` when a CA to verify against is given, else `"none"`.
   */
  verifyMode?: VerifyMode;
  /** A CA file (PEM) to verify client certificates against. */
  verifyCaFile?: string;
  /** A directory of CA files (PEM) to verify client certificates against. */
  verifyCaPath?: string;
  /** CA certificates (PEM) to verify client certificates against. */
  verifyCaData?: string;
  /** Seconds between checks whether the certificate files changed (default 60). */
  fileCheckInterval?: number;
  /** Reach the server through this Service of the cluster instead of a URL (in-cluster). */
  service?: WebhookClientConfigService;
  /** Largest request body accepted, bytes (default 8 MiB; larger: 413). */
  maxBodySize?: number;
}

const DEFAULT_MAX_BODY = 8 * 1024 * 1024;

/** The address the API server can connect to for a listening address. */
export function accessibleHost(addr: string): string {
  const bare = addr.replace(/^\[|\]$/g, "");
  if (bare === "0.0.0.0") return "127.0.0.1";
  if (/^[0:]+$/.test(bare) && bare.includes(":")) return "::1";
  return bare;
}

/** A URL's `scheme://host:port/path`, brackets around IPv6, the default port left out. */
export function buildUrl(scheme: "http" | "https", host: string, port: number, path: string) {
  const bracketed = isIpAddress(host) && host.includes(":") && !host.startsWith("[")
    ? `[${host}]`
    : host;
  const isDefault = (scheme === "http" && port === 80) || (scheme === "https" && port === 443);
  return `${scheme}://${bracketed}${isDefault ? "" : `:${port}`}${path}`;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new TypeError(
      `the webhook server's ${what} cannot be read from ${path}: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}

/** Sleeps `seconds` or until `signal` aborts; whether it slept the whole time. */
function sleep(seconds: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (slept: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(slept);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), seconds * 1000);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** What one build of the TLS material gives: the listener's TLS and the clients' CA bundle. */
interface Built {
  readonly tls?: ListenerTls;
  readonly caPem?: string;
}

/**
 * A webhook server on Deno's HTTPS server, listening on `addr:port` and serving each admission
 * handler at `<path>/<handler id>` (Kopf's `kopf.WebhookServer`). Without certificate files it
 * generates a self-signed CA and a certificate for its hostnames in memory, and gives the CA to
 * the webhook configurations; with files, it re-reads them every `fileCheckInterval` seconds
 * and serves the new certificate when they change (cert-manager renewals), and the managed
 * configurations follow. With a CA to verify clients against, the API server's client
 * certificate (its `--admission-control-config-file`) is verified and reaches handlers as
 * `sslpeer`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookServer({ port: 9443 }); // self-signed, 127.0.0.1
 *   settings.admission.managed = "auto.kopf.dev";
 * });
 * kopf.on.validate("kopfexamples", function checkFn({ spec }) {
 *   if (spec.field === "wrong") throw new kopf.AdmissionError("Change the field.", { code: 400 });
 * });
 * ```
 */
export class WebhookServer {
  /** The hostname of the URL when `host` is not given (the variants' magic hostnames). */
  protected defaultHost: string | undefined = undefined;
  /** The listening address when `addr` is not given. */
  protected defaultAddr = "127.0.0.1";
  /** The options given. */
  readonly options: Readonly<WebhookServerOptions>;

  /** A server with these options (none: `127.0.0.1`, a free port, self-signed HTTPS). */
  constructor(options: WebhookServerOptions = {}) {
    const known = new Set([
      "addr",
      "port",
      "path",
      "host",
      "caData",
      "caFile",
      "caDump",
      "insecure",
      "certFile",
      "pkeyFile",
      "password",
      "extraSans",
      "verifyMode",
      "verifyCaFile",
      "verifyCaPath",
      "verifyCaData",
      "fileCheckInterval",
      "service",
      "maxBodySize",
    ]);
    for (const key of Object.keys(options)) {
      if (!known.has(key)) {
        throw new TypeError(
          `${this.constructor.name}: unknown option "${key}"; known: ${[...known].join(", ")}`,
        );
      }
    }
    if ((options.certFile === undefined) !== (options.pkeyFile === undefined)) {
      throw new TypeError(`${this.constructor.name}: certFile and pkeyFile go together`);
    }
    const port = options.port;
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new TypeError(`${this.constructor.name}: port must be 0–65535, got ${port}`);
    }
    if (options.insecure && options.verifyMode && options.verifyMode !== "none") {
      throw new TypeError(`${this.constructor.name}: insecure (HTTP) cannot verify clients`);
    }
    this.options = { ...options };
  }

  /** The listening address. */
  get addr(): string {
    return this.options.addr ?? this.defaultAddr;
  }

  /** The hostname in the webhook URLs. */
  get host(): string {
    return this.options.host ?? this.defaultHost ?? accessibleHost(this.addr);
  }

  /** Files whose change means a new certificate. */
  #watchedFiles(): string[] {
    const { certFile, pkeyFile, caFile, verifyCaFile } = this.options;
    return [certFile, pkeyFile, caFile, verifyCaFile].filter((f): f is string => !!f);
  }

  async #digest(): Promise<string> {
    const parts = await Promise.all(
      this.#watchedFiles().map((f) => Deno.readFile(f).catch(() => new Uint8Array())),
    );
    const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength + 1, 0));
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.byteLength + 1;
    }
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
    return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  async #verifyCa(): Promise<string | undefined> {
    const { verifyCaData, verifyCaFile, verifyCaPath } = this.options;
    const parts: string[] = [];
    if (verifyCaData) parts.push(verifyCaData);
    if (verifyCaFile) parts.push(await readText(verifyCaFile, "verifyCaFile"));
    if (verifyCaPath) {
      for await (const entry of Deno.readDir(verifyCaPath)) {
        if (!entry.isFile) continue;
        const text = await Deno.readTextFile(`${verifyCaPath}/${entry.name}`).catch(() => "");
        if (hasCertificate(text)) parts.push(text);
      }
    }
    return parts.length ? parts.join("\n") : undefined;
  }

  /** The TLS material (Kopf's `_build_ssl`): given files, or generated; and the CA bundle. */
  async #build(): Promise<Built> {
    const o = this.options;
    let caPem = o.caData ?? (o.caFile ? await readText(o.caFile, "caFile") : undefined);
    let built: Built;
    if (o.insecure) {
      built = { caPem };
    } else {
      let certs: CertificateSet;
      if (o.certFile && o.pkeyFile) {
        const certPem = await readText(o.certFile, "certFile");
        const keyPem = await decryptedKey(await readText(o.pkeyFile, "pkeyFile"), o.password);
        certs = { certPem, keyPem, caPem: caPem ?? certPem };
      } else {
        const names = [this.host, accessibleHost(this.addr), ...(o.extraSans ?? [])];
        if (o.service) {
          const { name, namespace } = o.service;
          names.push(`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`);
        }
        certs = await generateCertificates(names);
        logger.debug("Generated a self-signed CA and certificate for {names}.", {
          names: names.join(", "),
        });
      }
      caPem = certs.caPem;
      const verifyCa = await this.#verifyCa();
      const mode = this.options.verifyMode ?? (verifyCa ? "optional" : "none");
      if (mode !== "none" && !verifyCa) {
        throw new TypeError(
          `${this.constructor.name}: verifyMode "${mode}" needs a CA to verify clients ` +
            "against (verifyCaFile, verifyCaPath or verifyCaData)",
        );
      }
      built = {
        tls: {
          cert: certs.certPem,
          key: certs.keyPem,
          ...(mode !== "none" ? { verify: { mode, ca: verifyCa! } } : {}),
        },
        caPem,
      };
    }
    if (o.caDump && built.caPem) await Deno.writeTextFile(o.caDump, built.caPem);
    return built;
  }

  #clientConfig(port: number, built: Built): WebhookClientConfig {
    const path = normalizedPath(this.options.path);
    const config: WebhookClientConfig = {};
    if (this.options.service) {
      const service = this.options.service;
      config.service = {
        namespace: service.namespace,
        name: service.name,
        ...(service.port !== undefined ? { port: service.port } : {}),
        path: normalizedPath(service.path) + path,
      };
    } else {
      config.url = buildUrl(built.tls ? "https" : "http", this.host, port, path);
    }
    if (built.caPem) config.caBundle = base64(built.caPem);
    return config;
  }

  /** Called before serving: the variants choose their host here. */
  protected prepare(_context: WebhookServeContext): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Serve admission requests with `fn` until `context.signal` aborts; yield the client config at
   * start and whenever the certificate changes.
   */
  async *serve(fn: WebhookFn, context: WebhookServeContext): AsyncGenerator<WebhookClientConfig> {
    await this.prepare(context);
    let built = await this.#build();
    const listener = await listen({
      hostname: this.addr,
      port: this.options.port ?? 0,
      prefix: normalizedPath(this.options.path),
      tls: built.tls,
      maxBodySize: this.options.maxBodySize ?? DEFAULT_MAX_BODY,
      fn,
    });
    try {
      const scheme = built.tls ? "https" : "http";
      logger.debug("Listening for webhooks at {url}.", {
        url: buildUrl(scheme, listener.hostname, listener.port, normalizedPath(this.options.path)),
      });
      let config = this.#clientConfig(listener.port, built);
      logger.debug("The webhooks are reached at {where}.", {
        where: config.url ?? JSON.stringify(config.service),
      });
      yield config;
      const files = this.#watchedFiles();
      const interval = this.options.fileCheckInterval ?? 60;
      let digest = files.length ? await this.#digest() : "";
      while (await sleep(files.length ? interval : 86400, context.signal)) {
        if (!files.length) continue;
        const next = await this.#digest();
        if (next === digest) continue;
        try {
          built = await this.#build();
        } catch (error) {
          // Half-written files (a renewal under way): the next check reads them again.
          logger.warn("The changed certificate files cannot be used yet: {error}", {
            error: error instanceof Error ? error.message : String(error),
          });
          continue;
        }
        digest = next;
        if (built.tls) await listener.update(built.tls);
        logger.info("The webhook server serves the renewed certificate.");
        config = this.#clientConfig(listener.port, built);
        yield config;
      }
    } finally {
      await listener.close();
    }
  }
}

/**
 * A webhook server for K3d/K3s clusters: reached as `host.k3d.internal`, listening on all
 * interfaces by default (Kopf's `kopf.WebhookK3dServer`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookK3dServer({ port: 54321 });
 * });
 * ```
 */
export class WebhookK3dServer extends WebhookServer {
  /** A K3d server with these options. */
  constructor(options: WebhookServerOptions = {}) {
    super(options);
    this.defaultHost = K3D_HOST;
    this.defaultAddr = "0.0.0.0";
  }
}

/**
 * A webhook server for Minikube clusters: reached as `host.minikube.internal`, listening on all
 * interfaces by default (Kopf's `kopf.WebhookMinikubeServer`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookMinikubeServer({ port: 54321 });
 * });
 * ```
 */
export class WebhookMinikubeServer extends WebhookServer {
  /** A Minikube server with these options. */
  constructor(options: WebhookServerOptions = {}) {
    super(options);
    this.defaultHost = MINIKUBE_HOST;
    this.defaultAddr = "0.0.0.0";
  }
}

/**
 * A webhook server for Docker Desktop's cluster: reached as `host.docker.internal`, listening on
 * all interfaces by default (Kopf's `kopf.WebhookDockerDesktopServer`).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookDockerDesktopServer({ port: 54321 });
 * });
 * ```
 */
export class WebhookDockerDesktopServer extends WebhookServer {
  /** A Docker Desktop server with these options. */
  constructor(options: WebhookServerOptions = {}) {
    super(options);
    this.defaultHost = DOCKER_DESKTOP_HOST;
    this.defaultAddr = "0.0.0.0";
  }
}

/**
 * A webhook server that detects the local cluster it serves (K3d/K3s, Minikube, Docker Desktop:
 * by the API server's certificate, else its version) and is reached by that cluster's magic
 * hostname, listening on all interfaces; for any other cluster it is a plain
 * {@linkcode WebhookServer} on `127.0.0.1` (Kopf's `kopf.WebhookAutoServer`; it never tunnels).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.startup(function configure({ settings }) {
 *   settings.admission.server = new kopf.WebhookAutoServer({ port: 9443 });
 *   settings.admission.managed = "auto.kopf.dev";
 * });
 * ```
 */
export class WebhookAutoServer extends WebhookServer {
  /** An auto-detecting server with these options. */
  constructor(options: WebhookServerOptions = {}) {
    super(options);
  }

  /** Detects the cluster and chooses the hostname and listening address for it. */
  protected override async prepare(context: WebhookServeContext): Promise<void> {
    const host = context.cluster ? await guessHost(context.cluster) : undefined;
    if (host === undefined) {
      logger.debug("Cluster detection found no magic hostname: running a simple local server.");
      return;
    }
    logger.debug("Cluster detection found the hostname {host}.", { host });
    this.defaultHost = host;
    this.defaultAddr = "0.0.0.0";
  }
}

/**
 * The server `kopf run --webhook-server URL` starts: `https://ADDR:PORT[/PATH]` listens on that
 * address and port with a self-signed certificate; `http://…` serves plain HTTP (for a
 * TLS-terminating proxy in front). The port must be given: the Deno permission is granted for it.
 *
 * @example
 * ```ts
 * import { serverFromUrl } from "./servers.ts";
 * const server = serverFromUrl("https://127.0.0.1:9443/hooks");
 * // server.addr === "127.0.0.1", server.options.port === 9443, server.options.path === "/hooks"
 * ```
 */
export function serverFromUrl(url: string): WebhookServer {
  const { scheme, hostname, port, path } = parseServerUrl(url);
  return new WebhookServer({
    addr: hostname,
    port,
    ...(path ? { path } : {}),
    ...(scheme === "http" ? { insecure: true } : {}),
  });
}
