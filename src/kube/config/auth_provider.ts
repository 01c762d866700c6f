/**
 * The bridge to `@kubernetes/client-node` for `auth-provider` users (OIDC, legacy GCP/Azure),
 * whose token refreshes it implements. It is imported on first use only: the import costs
 * 0.3–0.6 s and about 75 MiB of resident memory for the life of the process, which nobody else
 * should pay, and its dependencies enumerate the environment at import.
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
import { ConfigError } from "../errors.ts";
import type { AuthMaterial, Credentials } from "./credentials.ts";
import type { LoadedFile, MergedKubeconfig, User } from "./kubeconfig.ts";

/** client-node's `KubeConfig` class. */
export type KubeConfigClass = typeof KubeConfig;

let kubeConfigClass: Promise<KubeConfigClass> | undefined;

/**
 * The `KubeConfig` class, imported on first use only.
 *
 * By its full `npm:` specifier rather than the import map's name: `kopf bundle` keeps this one
 * import out of a bundle (`deno bundle --external`), which then loads client-node from Deno's
 * npm cache only for the users who need it, instead of carrying 18 MB of it in every bundle;
 * the map's bare name would not resolve in a bundle at run time. A literal, so that Deno still
 * locks and caches it with the rest of the module graph. Keep the version in step with
 * `deno.json`.
 */
export function importKubeConfig(): Promise<KubeConfigClass> {
  kubeConfigClass ??= import("npm:@kubernetes/client-node@^2.0.1").then(
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

/**
 * Delegates `auth-provider` users (OIDC, legacy GCP/Azure, legacy `exec` under auth-provider)
 * to client-node, which refreshes those tokens itself. Only these users keep client-node on
 * the request path.
 */
export async function authProviderCredentials(init: {
  user: User;
  file: LoadedFile;
  field: string;
  base: AuthMaterial;
  contextName: string;
  merged: MergedKubeconfig;
}): Promise<Credentials> {
  const KubeConfigCtor = await importKubeConfig();
  const kc = new KubeConfigCtor();
  const items = <T>(defined: Map<string, { item: T }>) => [...defined.values()].map((d) => d.item);
  // The shapes are client-node's own (see Cluster/User/Context in kubeconfig.ts).
  kc.loadFromOptions(
    {
      clusters: items(init.merged.clusters),
      users: items(init.merged.users),
      contexts: items(init.merged.contexts),
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
