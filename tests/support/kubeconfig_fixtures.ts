/**
 * Fixtures for the tests of `src/kube/config/`: kubeconfig files in temporary directories, the
 * environment variables loading reads, one-line ConfigErrors, and the exec credential plugin
 * (`exec_plugin.ts`) as a kubeconfig user.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/kube/errors.ts";

/** A PEM certificate that passes the PEM check (its body is not a real certificate). */
export const CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
/** A PEM private key that passes the PEM check. */
export const KEY = "-----BEGIN PRIVATE KEY-----\nMIIBfake\n-----END PRIVATE KEY-----\n";

const PLUGIN = new URL("./exec_plugin.ts", import.meta.url).pathname;

/** A fresh temporary directory. */
export async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "kopf-config-test-" });
}

/** Writes `text` to `dir/name`; returns the path. */
export async function write(dir: string, name: string, text: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

/**
 * A minimal valid kubeconfig: cluster `local`, user `admin` (a token), context `main` in namespace
 * `team-a`; `user` and `cluster` replace the entries' YAML lines, `current: null` unsets the
 * current context.
 */
export function kubeconfig(options: {
  user?: string;
  cluster?: string;
  current?: string | null;
  contexts?: string;
} = {}): string {
  const current = options.current === null ? "" : `current-context: ${options.current ?? "main"}`;
  return `
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
${options.cluster ?? "    server: https://127.0.0.1:6443/"}
users:
- name: admin
  user:
${options.user ?? "    token: t0k3n"}
contexts:
${options.contexts ?? "- name: main\n  context: {cluster: local, user: admin, namespace: team-a}"}
${current}
`;
}

/** The ConfigError `promise` rejects with, checked to be one line; fails if it resolves. */
export async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${error}`);
    assert.ok(!error.message.includes("\n"), `not one line: ${error.message}`);
    return error;
  }
  assert.fail("no error was thrown");
}

const ENV_KEYS = ["KUBECONFIG", "HOME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"];

/** Runs `fn` with the variables loading reads set as `env` says (`undefined`: unset), then back. */
export async function withEnv<T>(
  env: Record<string, string | undefined>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, Deno.env.get(k)]));
  try {
    for (const key of ENV_KEYS) {
      const value = key in env ? env[key] : saved[key];
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
    return await fn();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  }
}

/** The `Authorization` header a configuration's credentials give now. */
export async function authHeader(
  config: { credentials: { get(): Promise<{ headers: readonly (readonly [string, string])[] }> } },
): Promise<string | undefined> {
  const { headers } = await config.credentials.get();
  return headers.find(([k]) => k === "Authorization")?.[1];
}

/**
 * The YAML lines of a kubeconfig user (under `user:`) whose credentials come from the test exec
 * plugin keeping its state in `stateDir`; `extra` lines are added to the `exec` stanza.
 */
export function execPluginUser(stateDir: string, extra?: string): string {
  return `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${Deno.execPath()}
      args: [run, --quiet, --allow-read, --allow-write, --allow-env, ${PLUGIN}, ${stateDir}]
      interactiveMode: Never${extra ? `\n${extra}` : ""}`;
}

/** How many times the test exec plugin with state in `stateDir` has run. */
export async function execPluginRuns(stateDir: string): Promise<number> {
  try {
    return (await Deno.readTextFile(`${stateDir}/runs`)).trim().split("\n").length;
  } catch {
    return 0;
  }
}
