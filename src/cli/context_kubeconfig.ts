/**
 * The kubeconfig `kopf run` hands to the operator process instead of letting it read kubeconfig
 * files: one cluster, one user, one context — the context the operator runs with — and nothing
 * else. The CA, client certificate and client key files it names are read by the launcher and
 * inlined as `*-data`; a token file stays a file (it rotates: the client re-reads it every minute)
 * and so does an exec credential plugin (it runs whenever the credential expires), by absolute
 * path, so that the operator may read exactly that file and run exactly that program.
 *
 * The document travels in the environment variable {@linkcode KUBECONFIG_VARIABLE}, which the
 * operator process reads and removes from its environment before it imports any handler module
 * (see `child.ts`). The trade-off against a private temporary file is in docs/cli.md: nothing is
 * written to disk or left behind when the operator is killed, no write grant is needed to clean
 * up, and handlers, which run in the same process after it is gone, cannot read it back.
 *
 * @module
 */
import { type ApiTarget, dirname, type KubeconfigEntry, resolvePath } from "./api_target.ts";
import { UsageError } from "./errors.ts";
import { base64 } from "../kube/base64.ts";

/** The variable that carries the kubeconfig from the launcher to the operator process. */
export const KUBECONFIG_VARIABLE = "KOPF_SANDBOX_KUBECONFIG";

/**
 * The largest document handed over: Linux limits one environment string (`NAME=value`) to
 * 128 KiB (`MAX_ARG_STRLEN`); a context with an inlined CA, certificate and key takes about 6 KiB.
 */
export const MAX_DOCUMENT_BYTES = 128 * 1024 - KUBECONFIG_VARIABLE.length - 2;

/** The kubeconfig of one context, and what the operator still needs besides it. */
export interface ContextKubeconfig {
  /** The kubeconfig, as JSON (which is YAML too). */
  document: string;
  /** The context's name (the document's `current-context`). */
  context: string;
  /** Files the operator still reads: token files, by absolute path. */
  readPaths: string[];
  /** Files the launcher read and inlined (CA, client certificate, client key). */
  inlined: string[];
  /** Programs the operator runs: the exec credential plugin, by absolute path. */
  execCommands: string[];
}

// File fields of clusters and users, and where their content goes.
const INLINED: Record<string, Record<string, string>> = {
  cluster: { "certificate-authority": "certificate-authority-data" },
  user: { "client-certificate": "client-certificate-data", "client-key": "client-key-data" },
};

/** A copy of an entry's body with its file fields inlined; notes the files read. */
function inline(
  kind: "cluster" | "user",
  entry: KubeconfigEntry,
  inlined: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...entry.value };
  for (const [field, dataField] of Object.entries(INLINED[kind])) {
    const path = entry.value[field];
    if (typeof path !== "string" || !path) continue;
    const absolute = resolvePath(dirname(entry.file), path);
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(absolute);
    } catch (error) {
      throw new UsageError(
        `cannot read ${absolute}, the ${field} of ${kind} "${entry.name}" in ${entry.file}: ` +
          (error as Error).message.split("\n")[0],
      );
    }
    delete out[field];
    out[dataField] = base64(bytes);
    inlined.push(absolute);
  }
  return out;
}

/**
 * Builds the one-context kubeconfig of a kubeconfig-based target: reads and inlines the CA and
 * client certificate files, makes token-file paths and the exec plugin's command absolute, and
 * leaves out every other cluster, user and context. Throws {@linkcode UsageError} when a file it
 * names cannot be read, or the result is too large for the environment.
 *
 * @example
 * ```ts
 * import { resolveApiTarget } from "./api_target.ts";
 * import { contextKubeconfig } from "./context_kubeconfig.ts";
 * const handoff = contextKubeconfig(resolveApiTarget({ kubeconfig: "/home/me/.kube/config" }));
 * console.log(handoff.context, handoff.readPaths); // "dev" []
 * ```
 */
export function contextKubeconfig(target: ApiTarget): ContextKubeconfig {
  const selected = target.selected;
  if (target.source !== "kubeconfig" || !selected) {
    throw new Error("only a kubeconfig target has a context to hand over");
  }
  const inlined: string[] = [];
  const readPaths: string[] = [];
  const cluster = inline("cluster", selected.cluster, inlined);
  const context: Record<string, unknown> = { ...selected.context.value };
  const doc: Record<string, unknown> = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: selected.cluster.name, cluster }],
    users: [],
    contexts: [{ name: selected.context.name, context }],
    "current-context": selected.context.name,
  };
  if (selected.user) {
    const entry = selected.user;
    const user = inline("user", entry, inlined);
    // client-go spells it `tokenFile`, client-node `token-file`; the operator's client reads both.
    for (const key of ["tokenFile", "token-file"]) {
      const path = entry.value[key];
      if (typeof path === "string" && path) {
        user[key] = resolvePath(dirname(entry.file), path);
        readPaths.push(user[key] as string);
      }
    }
    const provider = entry.value["auth-provider"];
    const providerTokenFile = provider?.config?.tokenFile;
    if (typeof providerTokenFile === "string" && providerTokenFile) {
      const path = resolvePath(dirname(entry.file), providerTokenFile);
      user["auth-provider"] = { ...provider, config: { ...provider.config, tokenFile: path } };
      readPaths.push(path);
    }
    if (user.exec && typeof user.exec === "object" && target.execCommands.length > 0) {
      user.exec = { ...user.exec, command: target.execCommands[0] };
    }
    doc.users = [{ name: entry.name, user }];
  }
  const document = JSON.stringify(doc);
  const bytes = new TextEncoder().encode(document).length;
  if (bytes > MAX_DOCUMENT_BYTES) {
    throw new UsageError(
      `the kubeconfig of context "${selected.context.name}" takes ${bytes} bytes with its files ` +
        `inlined, more than the ${MAX_DOCUMENT_BYTES} an environment variable may hold; ` +
        `run with --no-sandbox`,
    );
  }
  return {
    document,
    context: selected.context.name,
    readPaths,
    inlined,
    execCommands: [...target.execCommands],
  };
}
