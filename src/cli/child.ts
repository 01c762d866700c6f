/**
 * The operator process: configures logging, imports the handler files (which register their
 * handlers), checks that the cluster it is about to use is the one the launcher granted, and runs
 * the operator until a signal stops it.
 *
 * `kopf run` replaces itself with a `deno run` of this module with scoped permissions (or starts
 * one as its child) and passes a {@linkcode ChildSpec} as its only argument; `--no-sandbox` calls {@linkcode runOperator} in the
 * launcher's own process; bundled and compiled operators call it from their generated entry.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { EXIT_FAILURE, EXIT_USAGE, printError, reportException, UsageError } from "./errors.ts";
import { configureLogging, type LoggingOptions } from "../actions/logging.ts";
import type { OperatorOptions } from "./options.ts";
import type { RbacOptions, RbacResource } from "./rbac.ts";

const logger = getLogger(["kopf", "cli"]);

/** Starts the line with the handler ids that `listIds` prints. */
export const IDS_MARKER = "kopf-handler-ids: ";

/** What the launcher tells the operator process. */
export interface ChildSpec {
  /** Handler files and modules to import, as URLs or import specifiers, in order. */
  imports: string[];
  /** How to show them in messages (the paths the user typed), by index of `imports`. */
  labels?: string[];
  /** Options of the operator loop. */
  operator: OperatorOptions;
  /** Logging configuration. */
  logging: LoggingOptions;
  /**
   * The API server the launcher granted network access to; the operator refuses to start if its
   * client resolves another one (e.g. a silent fallback to `localhost:8080`).
   */
  expectedServer?: string;
  /**
   * Stop when stdin reaches end-of-file: when the operator runs as the launcher's child, the
   * launcher holds the other end of the pipe, so this happens when the launcher dies without
   * forwarding a signal. Off when the launcher became the operator: stdin is then the user's.
   */
  watchStdin?: boolean;
  /**
   * `"rbac"`: instead of running, print the RBAC manifests the registered handlers need
   * (`kopf rbac`), with these options.
   */
  rbac?: RbacOptions;
  /** Print the registered handler ids as a JSON array instead of running (for `kopf bundle`). */
  listIds?: boolean;
  /**
   * The environment variable that holds the kubeconfig of the operator's one context (`kopf run`
   * with a kubeconfig). It is read and removed from the environment before any handler module is
   * imported, and the client uses it instead of kubeconfig files, `--kubeconfig` and `--context`;
   * handlers get it from `kopf.sandboxKubeconfig()` for clients of their own.
   */
  kubeconfigVariable?: string;
  /** Deno runs with `--unstable-worker-options`: handlers may give Workers permissions. */
  workerOptions?: boolean;
  /** Report the exception the operator fails with on stderr, for `KopfRunner.exception`. */
  reportException?: boolean;
}

/** How {@linkcode runOperator} gets the framework; replaceable for tests and embedding. */
export interface OperatorApi {
  /** Runs the operator loop until `signal` aborts; rejects when the operator fails. */
  run(options: OperatorOptions & { signal?: AbortSignal }): Promise<void>;
  /** How many handlers the imported files registered (in the default registry). */
  countHandlers(): number;
  /** The ids of the registered handlers. */
  handlerIds?(): string[];
  /** The API server the client will use for these options. */
  resolveServer(options: OperatorOptions): Promise<string>;
  /** Whether admission handlers (`on.validate`/`on.mutate`) are registered. */
  hasWebhooks?(): boolean;
  /** The resources the registered handlers serve, resolved by the cluster's discovery. */
  rbacResources?(options: OperatorOptions): Promise<RbacResource[]>;
}

/** Extra knobs for {@linkcode runOperator}. */
export interface RunOperatorOptions {
  /**
   * Load the handlers with these instead of importing `spec.imports` (bundled and compiled
   * operators, whose handlers are built in); labels still come from the spec.
   */
  loaders?: (() => Promise<unknown>)[];
  /** Stops the operator, in addition to SIGINT and SIGTERM. */
  signal?: AbortSignal;
  /** Listen to SIGINT and SIGTERM (default true). */
  handleSignals?: boolean;
  /** The framework's API; defaults to the one in `mod.ts`. */
  api?: OperatorApi;
}

async function defaultApi(): Promise<OperatorApi> {
  // Imported only after the handler files so that a handler that fails to load is reported
  // before the Kubernetes client is even loaded.
  const [kopf, config] = await Promise.all([
    import("../../mod.ts"),
    import("../kube/config/mod.ts"),
  ]);
  return {
    // Signals are this process's: runOperator turns them into `signal`.
    run: async ({ webhookServer, webhookManaged, ...options }) => {
      // --webhook-server/--webhook-managed are settings the startup handlers may still change.
      const settings = new kopf.Settings();
      if (webhookServer) {
        const { serverFromUrl } = await import("../webhooks/servers.ts");
        settings.admission.server = serverFromUrl(webhookServer);
      }
      if (webhookManaged) settings.admission.managed = webhookManaged;
      return await kopf.run({ ...options, settings, handleSignals: false });
    },
    countHandlers: () => kopf.defaultRegistry().handlers.length,
    handlerIds: () => kopf.defaultRegistry().handlers.map((h) => h.id),
    hasWebhooks: () => kopf.defaultRegistry().webhookHandlers().length > 0,
    resolveServer: async (options) =>
      (await config.loadConfig({ kubeconfig: options.kubeconfig, context: options.context }))
        .server,
    rbacResources: async (options) => {
      const [{ KubeClient }, { Discovery }] = await Promise.all([
        import("../kube/client.ts"),
        import("../kube/discovery.ts"),
      ]);
      const client = await KubeClient.connect({
        kubeconfig: options.kubeconfig,
        context: options.context,
      });
      try {
        const discovery = new Discovery(client);
        const registry = kopf.defaultRegistry();
        const out: RbacResource[] = [];
        for (const selector of registry.selectors()) {
          for (const resource of await discovery.resolve(selector)) {
            out.push({
              group: resource.group,
              plural: resource.plural,
              namespaced: resource.namespaced,
              patch: registry.needsPatching(resource),
              status: resource.subresources.includes("status"),
            });
          }
        }
        return out;
      } finally {
        client.close();
      }
    },
  };
}

/** Whether an error is Deno's "permission not granted" (NotCapable, or PermissionDenied before 2.0). */
export function isPermissionError(error: unknown): boolean {
  return error instanceof Deno.errors.NotCapable ||
    (error instanceof Error && /^Requires \w+ access to/.test(error.message));
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n").find((line) => line.trim())?.trim() ?? String(error);
}

/**
 * Where in the user's files a compile error is, as `file:line:column` (the handler file as the
 * user typed it): Deno puts it on an `at` line of the message, which the one-line reason would
 * otherwise drop. Frames of the framework itself are skipped.
 */
function sourceLocation(error: unknown, label: string, url: string): string | undefined {
  const text = error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error);
  const framework = new URL("../../", import.meta.url).href;
  for (const match of text.matchAll(/^\s*at (?:.*\()?(\S+?):(\d+):(\d+)\)?$/gm)) {
    const [, file, line, column] = match;
    if (file.startsWith(framework) || file.startsWith("ext:")) continue;
    const shown = file === url
      ? label
      : file.startsWith("file://")
      ? decodeURIComponent(new URL(file).pathname)
      : file;
    return `${shown}:${line}:${column}`;
  }
  return undefined;
}

/** Turns a failure to import a handler file into a one-line reason. */
function importFailure(label: string, url: string, error: unknown): UsageError {
  const message = firstLine(error);
  if (isPermissionError(error)) {
    // Not in the module graph the launcher found (a computed import): grant that file itself.
    const path = message.match(/access to "([^"]+)"/)?.[1];
    const hint = path ? `; grant it with --allow-read=${path}` : "";
    return new UsageError(`${label} cannot be loaded in the sandbox: ${message}${hint}`);
  }
  if (/Module not found|Cannot find module|No such file/i.test(message)) {
    const missing = message.match(/"([^"]+)"/)?.[1];
    return new UsageError(
      missing && !url.endsWith(missing) && missing !== url
        ? `${label} imports a module that does not exist: ${missing}`
        : `${label}: handler file not found`,
    );
  }
  if (error instanceof SyntaxError || /SyntaxError|Expected|Unexpected/.test(message)) {
    const where = sourceLocation(error, label, url);
    return new UsageError(`${where ?? label} failed to compile: ${message}`);
  }
  return new UsageError(`${label} failed while being imported: ${message}`);
}

function sameServer(a: string, b: string): boolean {
  const norm = (s: string) => {
    try {
      const url = new URL(s);
      const port = url.port || (url.protocol === "https:" ? "443" : "80");
      return `${url.protocol}//${url.hostname}:${port}${url.pathname.replace(/\/+$/, "")}`;
    } catch {
      return s.replace(/\/+$/, "");
    }
  };
  return norm(a) === norm(b);
}

/**
 * Runs an operator as `kopf run` does once the process has its permissions, and returns the exit
 * code: 0 after a clean stop, 2 for bad input (a handler file that cannot be loaded or registers
 * nothing, a cluster other than the granted one), 1 when the operator fails. Never throws.
 *
 * @example
 * ```ts
 * import { runOperator } from "./child.ts";
 * const code = await runOperator({
 *   imports: [new URL("./handlers.ts", import.meta.url).href],
 *   operator: { namespaces: ["default"] },
 *   logging: { format: "plain" },
 * });
 * Deno.exit(code);
 * ```
 */
export async function runOperator(
  spec: ChildSpec,
  options: RunOperatorOptions = {},
): Promise<number> {
  configureLogging(spec.logging);
  const controller = new AbortController();
  const stop = () => controller.abort();
  options.signal?.addEventListener("abort", stop, { once: true });
  const signals: Deno.Signal[] = (options.handleSignals ?? true) ? ["SIGINT", "SIGTERM"] : [];
  let received = 0;
  const onSignal = (name: Deno.Signal) => () => {
    received += 1;
    if (received > 1) {
      // The second signal means "now": do not wait for handlers to finish.
      logger.warn("Signal {signal} is received again. Exiting without a graceful stop.", {
        signal: name,
      });
      Deno.exit(name === "SIGINT" ? 130 : 143);
    }
    logger.info("Signal {signal} is received. Operator is stopping.", { signal: name });
    stop();
  };
  const listeners = signals.map((name) => [name, onSignal(name)] as const);
  for (const [name, listener] of listeners) Deno.addSignalListener(name, listener);
  if (spec.watchStdin) watchLauncher(stop);
  try {
    // Before any handler code runs: afterwards, no code in this process finds it in the
    // environment, and no program it starts inherits it.
    if (spec.kubeconfigVariable) {
      const kubeconfig = takeVariable(spec.kubeconfigVariable);
      // The launcher resolved the files, the variables and the context into this document. It is
      // installed before the handlers load, so that their own clients can use it at import time
      // (kopf.sandboxKubeconfig()).
      const { useKubeconfigDocument } = await import("../kube/config/mod.ts");
      useKubeconfigDocument(kubeconfig, `$${spec.kubeconfigVariable} (from kopf run)`);
      const { kubeconfig: _files, context: _context, ...rest } = spec.operator;
      spec = { ...spec, operator: rest };
    }
    if (spec.workerOptions) {
      const { containmentDefaults } = await import("../actions/containment.ts");
      containmentDefaults.workerOptions = true;
    }
    const loaders = options.loaders ?? spec.imports.map((url) => () => import(url));
    for (const [i, load] of loaders.entries()) {
      const url = spec.imports[i] ?? "";
      const label = spec.labels?.[i] ?? url;
      logger.debug("Importing {label}.", { label });
      try {
        await load();
      } catch (error) {
        logger.debug("Import of {label} failed: {stack}", { label, stack: stackOf(error) });
        throw importFailure(label, url, error);
      }
    }
    let api: OperatorApi;
    try {
      api = options.api ?? await defaultApi();
    } catch (error) {
      logger.debug("Loading the framework failed: {stack}", { stack: stackOf(error) });
      throw new Error(`the framework failed to load: ${firstLine(error)}`);
    }
    if (api.countHandlers() === 0) {
      const what = spec.labels?.length ? spec.labels.join(", ") : "the handler files";
      throw new UsageError(`no handlers were registered by ${what}`);
    }
    if (spec.listIds) {
      // Marked, since handler files may print at import time too.
      const ids = api.handlerIds?.() ?? [];
      Deno.stdout.writeSync(new TextEncoder().encode(`${IDS_MARKER}${JSON.stringify(ids)}\n`));
      return 0;
    }
    await verifyServer(api, spec);
    if (spec.rbac) {
      const { rbacManifests, toYamlStream } = await import("./rbac.ts");
      if (!api.rbacResources) throw new Error("this framework cannot describe its resources");
      const resources = await api.rbacResources(spec.operator);
      const docs = rbacManifests(resources, {
        ...spec.rbac,
        namespaces: spec.operator.namespaces,
        webhooks: api.hasWebhooks?.() ?? false,
      });
      Deno.stdout.writeSync(new TextEncoder().encode(toYamlStream(docs)));
      return 0;
    }
    if (controller.signal.aborted) return 0;
    let operator = spec.operator;
    if (!operator.namespaces?.length && !operator.clusterwide) {
      // The library's own warning names kopf.run()'s options; a command line user types flags.
      logger.warn(
        "No --namespace or --all-namespaces is given: serving the whole cluster. " +
          "Pass -A/--all-namespaces to make it explicit, or -n NAMESPACE to serve one.",
      );
      operator = { ...operator, clusterwide: true };
    }
    await api.run({ ...operator, signal: controller.signal });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      printError(error.message);
      if (spec.reportException) reportException(error);
      return EXIT_USAGE;
    }
    if (controller.signal.aborted && isAbort(error)) return 0;
    logger.debug("The operator failed: {stack}", { stack: stackOf(error) });
    printError(
      isPermissionError(error)
        ? `the operator needs a permission it was not granted: ${firstLine(error)} ` +
          `(grant it with --allow-… or --deno-flag)`
        : `the operator failed: ${firstLine(error)}`,
    );
    if (spec.reportException) reportException(error);
    return EXIT_FAILURE;
  } finally {
    for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
    options.signal?.removeEventListener("abort", stop);
  }
}

/**
 * Reads a variable and removes it from this process's environment, so that neither code that
 * runs later nor the programs it starts (an exec credential plugin) see it.
 */
function takeVariable(name: string): string {
  let value: string | undefined;
  try {
    value = Deno.env.get(name);
    Deno.env.delete(name);
  } catch (error) {
    throw new UsageError(`cannot take the kubeconfig from $${name}: ${firstLine(error)}`);
  }
  if (value === undefined) {
    throw new UsageError(
      `the kubeconfig from the launcher is missing: $${name} is not set (this module is ` +
        `started by \`kopf run\`)`,
    );
  }
  return value;
}

/** Calls `stop` when stdin closes (the launcher is gone). */
function watchLauncher(stop: () => void): void {
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) { /* the launcher never writes */ }
    } catch { /* a broken pipe is an end too */ }
    logger.warn("The launcher is gone. Operator is stopping.");
    stop();
  })();
}

/**
 * Makes a wrong cluster loud: the client's server must be the one the launcher computed, and this
 * process must be allowed to reach it. Otherwise a missing permission could quietly send the client
 * elsewhere (client-node falls back to `localhost:8080`), or every request would fail later.
 */
async function verifyServer(api: OperatorApi, spec: ChildSpec): Promise<void> {
  let server: string;
  try {
    server = await api.resolveServer(spec.operator);
  } catch (error) {
    logger.debug("Loading the cluster configuration failed: {stack}", { stack: stackOf(error) });
    throw new UsageError(`cannot load the cluster configuration: ${firstLine(error)}`);
  }
  if (spec.expectedServer && !sameServer(server, spec.expectedServer)) {
    throw new UsageError(
      `the operator's client resolved the API server ${server}, but the launcher granted ` +
        `access to ${spec.expectedServer}; refusing to start`,
    );
  }
  let host: string;
  try {
    const url = new URL(server);
    host = `${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`;
  } catch {
    throw new UsageError(`the API server address is not a URL: ${server}`);
  }
  const { state } = Deno.permissions.querySync({ name: "net", host });
  if (state !== "granted") {
    throw new UsageError(
      `the API server ${server} is not among the hosts this operator may reach ` +
        `(run it with --allow-net=${host})`,
    );
  }
}

function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

function stackOf(error: unknown): string {
  return error instanceof Error ? error.stack ?? error.message : String(error);
}

/**
 * The entry of the operator process started by the launcher: the spec is the only argument, as
 * JSON.
 */
export async function childMain(args: string[] = Deno.args): Promise<number> {
  let spec: ChildSpec;
  try {
    spec = JSON.parse(args[0] ?? "");
  } catch {
    printError("this module is started by `kopf run`, not directly");
    return EXIT_USAGE;
  }
  return await runOperator(spec);
}

if (import.meta.main) Deno.exit(await childMain());
