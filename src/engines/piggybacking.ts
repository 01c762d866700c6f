/**
 * Kopf's login helpers for `kopf.on.login` handlers — `login_with_kubeconfig`,
 * `login_with_service_account` and `login_via_client` (Kopf's "piggybacking") — returning a
 * {@linkcode ConnectionInfo}:
 *
 * - {@linkcode loginWithKubeconfig} and {@linkcode loginWithServiceAccount} load the configuration
 *   with the framework's own loader (`kube/config/`), so a kubeconfig is read, merged and
 *   resolved the same way as without a login handler — and in `kopf run`'s sandbox from the
 *   kubeconfig it handed over. Unlike Kopf's, a token file or exec plugin is run for the token, and
 *   an exec credential's expiry becomes the connection's `expiration`.
 * - {@linkcode loginViaClient} asks `@kubernetes/client-node` (imported only when it is called),
 *   so that its auth-providers and exec plugins produce the token.
 *
 * A ConnectionInfo carries a server, TLS, one `Authorization` and a namespace: a kubeconfig user
 * that impersonates (`as`, `as-groups`, …) or a cluster with `tls-server-name` cannot be carried,
 * and is refused with a {@linkcode PermanentError} rather than connected as someone else.
 *
 * @module
 */

import type { Logger } from "../registry/context.ts";
import { PermanentError } from "../actions/errors.ts";
import {
  type AuthMaterial,
  type ClusterConfig,
  connectionViaClientNode,
  loadConfig,
  loadKubeconfig,
  sandboxKubeconfig,
} from "../kube/config/mod.ts";
import { ConnectionInfo, type ConnectionInfoFields } from "./login.ts";

/** Kopf's priority of the official client's credentials (higher wins). */
export const PRIORITY_OF_CLIENT = 10;
/** Kopf's priority of the kubeconfig's credentials. */
export const PRIORITY_OF_KUBECONFIG = 10;
/** Kopf's priority of the service account's credentials. */
export const PRIORITY_OF_SERVICE_ACCOUNT = 20;

/**
 * Options of the login helpers. A login handler's context fits (its `logger` is used), so a helper
 * can be the handler itself: `kopf.on.login(kopf.loginWithKubeconfig)`.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.LoginHelperOptions = { context: "staging" };
 * kopf.on.login(function login() {
 *   return kopf.loginWithKubeconfig(options);
 * });
 * ```
 */
export interface LoginHelperOptions {
  /** Kubeconfig file(s) instead of `KUBECONFIG` / `~/.kube/config` (`loginWithKubeconfig`). */
  kubeconfig?: string | string[];
  /** A context instead of the `current-context` (`loginWithKubeconfig`). */
  context?: string;
  /** Where to say how the login went (the login handler's logger). */
  logger?: Pick<Logger, "debug">;
}

/**
 * Kopf's `login_with_kubeconfig`: the connection of the kubeconfig's current context — from
 * `KUBECONFIG` (merged), `~/.kube/config`, or the kubeconfig `kopf run` handed over — or `null`
 * when there is no kubeconfig. Priority 10, as Kopf's.
 *
 * @example
 * ```ts ignore
 * import * as kopf from "jsr:@kopf/kopf";
 *
 * kopf.on.login(async (ctx) =>
 *   await kopf.loginWithServiceAccount(ctx) ?? await kopf.loginWithKubeconfig(ctx)
 * );
 * ```
 */
export async function loginWithKubeconfig(
  options: LoginHelperOptions = {},
): Promise<ConnectionInfo | null> {
  const config = await loadKubeconfig({ kubeconfig: options.kubeconfig, context: options.context });
  if (!config) return null;
  options.logger?.debug("Logging in with the kubeconfig {source}.", { source: config.source });
  return await fromClusterConfig(config, PRIORITY_OF_KUBECONFIG, "loginWithKubeconfig");
}

/**
 * Kopf's `login_with_service_account`: the pod's service account (its token, CA and namespace, at
 * `KUBERNETES_SERVICE_HOST`/`PORT`), or `null` outside a pod. Priority 20, as Kopf's.
 *
 * @example
 * ```ts ignore
 * kopf.on.login((ctx) => kopf.loginWithServiceAccount(ctx));
 * ```
 */
export async function loginWithServiceAccount(
  options: Pick<LoginHelperOptions, "logger"> = {},
): Promise<ConnectionInfo | null> {
  if (!serviceAccountPresent()) return null;
  const config = await loadConfig({ inCluster: true });
  options.logger?.debug("Logging in with the service account.");
  return await fromClusterConfig(config, PRIORITY_OF_SERVICE_ACCOUNT, "loginWithServiceAccount");
}

/**
 * Kopf's `login_via_client`, with `@kubernetes/client-node` as the client: its `KubeConfig` is
 * loaded (in-cluster first, else the kubeconfig — in `kopf run`'s sandbox, the one handed over)
 * and asked for a request's options, so its auth-providers (OIDC, …) and exec plugins make the
 * token. client-node is imported on this call only: an operator that never calls it does not
 * load it. Priority 10, as Kopf's.
 *
 * @example
 * ```ts ignore
 * kopf.on.login(kopf.loginViaClient);
 * ```
 */
export async function loginViaClient(
  options: Pick<LoginHelperOptions, "logger"> = {},
): Promise<ConnectionInfo> {
  const found = await connectionViaClientNode(sandboxKubeconfig());
  options.logger?.debug("client-node is configured from {source}.", { source: found.source });
  if (found.impersonate) {
    throw cannotCarry("loginViaClient", `the user impersonates (as: ${found.impersonate})`);
  }
  if (found.tlsServerName) {
    throw cannotCarry("loginViaClient", `the cluster has tls-server-name ${found.tlsServerName}`);
  }
  return new ConnectionInfo({
    server: found.server,
    caData: found.caPem,
    insecure: found.insecure,
    certificateData: found.certPem,
    privateKeyData: found.keyPem,
    ...authorizationFields(found.authorization),
    ...(found.username !== undefined ? { username: found.username, password: found.password } : {}),
    defaultNamespace: found.namespace,
    proxyUrl: found.proxyUrl,
    priority: PRIORITY_OF_CLIENT,
  });
}

/** A loaded configuration, with its credentials' current material, as a ConnectionInfo. */
async function fromClusterConfig(
  config: ClusterConfig,
  priority: number,
  helper: string,
): Promise<ConnectionInfo> {
  if (config.tls.tlsServerName) {
    throw cannotCarry(helper, `the cluster has tls-server-name ${config.tls.tlsServerName}`);
  }
  const material: AuthMaterial = await config.credentials.get();
  let authorization: string | undefined;
  for (const [name, value] of material.headers) {
    if (name.toLowerCase() === "authorization") authorization = value;
    else throw cannotCarry(helper, `the user's credentials send ${name}: ${value}`);
  }
  const fields: ConnectionInfoFields = {
    server: config.server,
    caData: config.tls.caPem,
    insecure: config.tls.insecureSkipTlsVerify,
    certificateData: material.certPem ?? config.tls.certPem,
    privateKeyData: material.keyPem ?? config.tls.keyPem,
    ...authorizationFields(authorization),
    defaultNamespace: config.namespace,
    proxyUrl: config.tls.proxyUrl,
    priority,
  };
  if (material.expiresAt !== undefined) fields.expiration = new Date(material.expiresAt);
  return new ConnectionInfo(fields);
}

/** An `Authorization` header as ConnectionInfo fields: Basic → username/password, else a token. */
function authorizationFields(
  header: string | undefined,
): Pick<ConnectionInfoFields, "scheme" | "token" | "username" | "password"> {
  if (!header) return {};
  // RFC 7235: `<scheme> <credentials>`; a lone value is a token (as Kopf splits it).
  const space = header.indexOf(" ");
  if (space < 0) return { token: header };
  const scheme = header.slice(0, space);
  const value = header.slice(space + 1);
  if (scheme.toLowerCase() === "basic") {
    const decoded = new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
    const colon = decoded.indexOf(":");
    return colon < 0
      ? { username: decoded, password: "" }
      : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { scheme, token: value };
}

function cannotCarry(helper: string, what: string): PermanentError {
  return new PermanentError(
    `kopf.${helper}(): ${what}, which a ConnectionInfo cannot carry; run without a login ` +
      `handler to use the configuration as it is`,
  );
}

function serviceAccountPresent(): boolean {
  try {
    if (!Deno.env.get("KUBERNETES_SERVICE_HOST") || !Deno.env.get("KUBERNETES_SERVICE_PORT")) {
      return false;
    }
    return Deno.statSync("/var/run/secrets/kubernetes.io/serviceaccount/token").isFile;
  } catch {
    return false; // absent, or not readable here: not in a pod as far as this process may know
  }
}
