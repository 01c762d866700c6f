/**
 * The launcher of `kopf run`: works out what the operator needs (the API server, the kubeconfig
 * of its one context, the files of its module graph, the addresses it listens on) and starts the
 * operator in a `deno run` with only those permissions — by replacing this process with it
 * (`execve`) where it can, else as a child whose signals it forwards and whose exit code it
 * returns. The kubeconfig goes to the operator in an environment variable, never as a file it
 * could read (see `context_kubeconfig.ts`).
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { type ApiTarget, resolveApiTarget, resolvePath } from "./api_target.ts";
import type { ChildSpec } from "./child.ts";
import {
  type ContextKubeconfig,
  contextKubeconfig,
  KUBECONFIG_VARIABLE,
} from "./context_kubeconfig.ts";
import { EXIT_USAGE, reportException, reportRequested, UsageError } from "./errors.ts";
import { writeLine } from "../actions/stderr.ts";
import { replaceProcess } from "./exec.ts";
import type { LoggingOptions } from "../actions/log_options.ts";
import { type ModuleGraph, moduleGraph } from "./module_graph.ts";
import { resolveModules } from "./modules.ts";
import type { OperatorOptions } from "./options.ts";
import type { RbacOptions } from "./rbac.ts";
import {
  listenAddresses,
  operatorPermissions,
  type Permissions,
  shellQuote,
  webhookListenAddressOf,
} from "./permissions.ts";
import { typeCheck, TypeCheckError } from "./type_check.ts";

/** Everything `kopf run` was asked to do. */
export interface LaunchOptions {
  /** Handler files (paths or URLs) as typed. */
  files: string[];
  /**
   * Handler modules (`-m`): names resolved as Kopf's `-m` — through the operator's import map, then
   * as module files under the working directory (see `modules.ts`).
   */
  modules?: string[];
  /** The operator loop's options. */
  operator: OperatorOptions;
  /** Logging. */
  logging: LoggingOptions;
  /** User additions to the grants: `--allow-*` and other Deno flags. */
  denoFlags?: string[];
  /** Run in this process with its permissions (`--no-sandbox`). */
  sandbox?: boolean;
  /**
   * Type-check the handler files with `deno check` before starting (default `true`; `--no-check`
   * turns it off). Not for `kopf rbac`, which only reads what the handlers register.
   */
  check?: boolean;
  /** Print the child command before starting it. */
  printCommand?: boolean;
  /**
   * Become the operator: replace this process with the sandboxed `deno run` (`execve`) instead of
   * starting it as a child, so that `kopf run` is one process and no launcher stays resident.
   * Falls back to a child process where that cannot be done (see {@linkcode launch}). Default
   * `false`, because then {@linkcode launch} never returns; the `kopf` command turns it on, and
   * the variable `KOPF_LAUNCHER=spawn` turns it off again.
   */
  exec?: boolean;
  /** Print the RBAC manifests the handlers need instead of running (`kopf rbac`). */
  rbac?: RbacOptions;
  /** For tests: the environment and the service-account directory. */
  env?: (name: string) => string | undefined;
  serviceAccountDir?: string;
  cwd?: string;
}

/** The handler sources of a run, checked and resolved. */
export interface ResolvedHandlers {
  /** URLs (or specifiers for `jsr:`/`npm:`) to import, in order. */
  imports: string[];
  /** What the user typed, for messages. */
  labels: string[];
  /** Local files among them (absolute paths). */
  localFiles: string[];
  /** Remote URLs among them. */
  remote: string[];
}

const REMOTE = /^(https?):\/\//;
const REGISTRY = /^(jsr|npm):/;

/**
 * Checks the handler files and modules and turns them into what the operator process imports.
 * Throws {@linkcode UsageError} for a missing file, a directory, or a module that does not resolve.
 * `denoFlags` are the operator's: a `--config` among them is the import map `-m` names go through.
 */
export function resolveHandlers(
  files: string[],
  modules: string[] = [],
  cwd: string = Deno.cwd(),
  denoFlags: readonly string[] = [],
): ResolvedHandlers {
  const out: ResolvedHandlers = { imports: [], labels: [], localFiles: [], remote: [] };
  if (files.length === 0 && modules.length === 0) {
    throw new UsageError("no handler files given: kopf run HANDLERS.ts [...] or -m MODULE");
  }
  for (const file of files) {
    if (REMOTE.test(file)) {
      out.imports.push(file);
      out.remote.push(file);
    } else if (REGISTRY.test(file)) {
      out.imports.push(file);
    } else {
      const path = file.startsWith("file://")
        ? decodeURIComponent(new URL(file).pathname)
        : resolvePath(cwd, file);
      let info: Deno.FileInfo;
      try {
        info = Deno.statSync(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          throw new UsageError(`handler file not found: ${file}`);
        }
        throw new UsageError(`cannot read the handler file ${file}: ${(error as Error).message}`);
      }
      if (!info.isFile) throw new UsageError(`not a file: ${file}`);
      out.imports.push(pathToFileURL(path).href);
      out.localFiles.push(path);
    }
    out.labels.push(file);
  }
  const resolved = resolveModules(modules, { cwd, entry: childEntry(), denoFlags });
  for (const [i, module] of resolved.entries()) {
    out.imports.push(module.specifier);
    out.labels.push(modules[i]);
    if (module.localFile) out.localFiles.push(module.localFile);
    if (module.remote) out.remote.push(module.remote);
  }
  return out;
}

/** The launcher's plan: what the child gets. Separate from starting it, for tests and bundling. */
export interface LaunchPlan {
  target: ApiTarget;
  handlers: ResolvedHandlers;
  /** The local files and remote modules the handlers load (empty with `--no-sandbox`). */
  graph: ModuleGraph;
  /**
   * The kubeconfig of the one context the operator runs with, handed over in
   * {@linkcode KUBECONFIG_VARIABLE} (kubeconfig targets, sandboxed runs only).
   */
  handoff?: ContextKubeconfig;
  permissions: Permissions;
  spec: ChildSpec;
}

const NO_GRAPH: ModuleGraph = { files: [], remote: [], problems: [], millis: 0 };

/**
 * Works out the plan of a run without starting anything: resolves the handler files and the
 * cluster, lists the handlers' module graph (`deno info`), builds the context's kubeconfig, and
 * computes the grants. With `sandbox: false` there are no grants to compute: no graph, no handoff.
 */
export async function planLaunch(options: LaunchOptions): Promise<LaunchPlan> {
  const cwd = options.cwd ?? Deno.cwd();
  const handlers = resolveHandlers(options.files, options.modules, cwd, options.denoFlags);
  const target = resolveApiTarget({
    kubeconfig: options.operator.kubeconfig,
    context: options.operator.context,
    env: options.env,
    serviceAccountDir: options.serviceAccountDir,
    cwd,
  });
  const sandboxed = options.sandbox !== false;
  const handoff = sandboxed && target.source === "kubeconfig"
    ? contextKubeconfig(target)
    : undefined;
  const graph = sandboxed && handlers.localFiles.length > 0
    ? await moduleGraph(handlers.localFiles, {
      entry: childEntry(),
      denoFlags: options.denoFlags,
      cwd,
    })
    : NO_GRAPH;
  const listen = listenAddresses(options.operator.liveness, options.operator.metrics);
  if (options.operator.webhookServer) {
    listen.push(webhookListenAddressOf(options.operator.webhookServer));
  }
  const permissions = operatorPermissions({
    target,
    handoff,
    moduleFiles: graph.files,
    remoteModules: [...handlers.remote, ...graph.remote],
    listen,
    extraFlags: options.denoFlags,
  });
  const spec: ChildSpec = {
    imports: handlers.imports,
    labels: handlers.labels,
    operator: options.operator,
    logging: options.logging,
    expectedServer: target.server,
    watchStdin: true,
  };
  if (handoff) spec.kubeconfigVariable = KUBECONFIG_VARIABLE;
  // The operator cannot see its own command line; without this, it refuses Worker permissions.
  if (permissions.otherFlags.some((f) => f === "--unstable-worker-options" || f === "--unstable")) {
    spec.workerOptions = true;
  }
  if (options.rbac) spec.rbac = options.rbac;
  if (reportRequested(options.env)) spec.reportException = true;
  return { target, handlers, graph, handoff, permissions, spec };
}

/** The URL of the operator process's entry module. */
export function childEntry(): string {
  return new URL("./child.ts", import.meta.url).href;
}

/**
 * V8 flags of the operator process unless the user passes their own `--v8-flags` (with
 * `--deno-flag=--v8-flags=…`, which replaces these).
 *
 * An operator's live heap is small (about 12 MiB with 1,000 objects) but its garbage — watch
 * events, patches, responses: short-lived JSON — is plenty, and with V8's defaults the young
 * generation and old space grow far beyond the live data before being collected.
 * `--optimize-for-size` keeps both small. Measured with 1,000 objects created, updated and
 * deleted at the default rate limit: operator peak RSS 178 → 87 MiB, steady 95 → 72 MiB, the
 * same throughput, CPU 7.1 → 9.1 s (on a loaded 2-core machine). `--max-semi-space-size=1`
 * alone reached only 116 MiB, and adding it to `--optimize-for-size` gained nothing.
 */
export const DEFAULT_V8_FLAGS: readonly string[] = ["--optimize-for-size"];

/** `flags` plus `--v8-flags` with {@linkcode DEFAULT_V8_FLAGS} unless they have their own. */
export function withDefaultV8Flags(flags: readonly string[]): string[] {
  return flags.some((flag) => flag.startsWith("--v8-flags"))
    ? [...flags]
    : [...flags, `--v8-flags=${DEFAULT_V8_FLAGS.join(",")}`];
}

/** Linux's limit on one argument or environment string (`MAX_ARG_STRLEN`). */
const MAX_ARG_BYTES = 128 * 1024;

/**
 * The `deno run` arguments (without the executable) that start the operator process. Throws
 * {@linkcode UsageError} when one is longer than an argument may be: a module graph of thousands
 * of local files, whose paths all go into `--allow-read`.
 */
export function childArgs(plan: LaunchPlan): string[] {
  const args = [
    "run",
    ...withDefaultV8Flags(plan.permissions.toFlags()),
    childEntry(),
    JSON.stringify(plan.spec),
  ];
  for (const arg of args) {
    const bytes = new TextEncoder().encode(arg).length;
    if (bytes >= MAX_ARG_BYTES) {
      throw new UsageError(
        `the operator's ${arg.startsWith("--") ? arg.split("=")[0] : "argument"} takes ` +
          `${bytes} bytes (${plan.graph.files.length} module files), more than one argument ` +
          `may hold (${MAX_ARG_BYTES}); bundle the operator with kopf bundle, or run with ` +
          `--no-sandbox`,
      );
    }
  }
  return args;
}

/** The variables the operator process gets besides the inherited ones: its kubeconfig. */
export function childEnv(plan: LaunchPlan): Record<string, string> {
  return plan.handoff ? { [KUBECONFIG_VARIABLE]: plan.handoff.document } : {};
}

/** The command line as `--print-command` shows it: the kubeconfig and the spec elided. */
export function printedCommand(plan: LaunchPlan): string {
  const words = [Deno.execPath(), ...childArgs(plan).slice(0, -1)];
  const env = plan.handoff
    ? `${KUBECONFIG_VARIABLE}='<kubeconfig of context ${plan.handoff.context}>' `
    : "";
  return `${env}${words.map(shellQuote).join(" ")} '<spec>'`;
}

const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** The values of `KOPF_LAUNCHER`: how `kopf run` starts the sandboxed operator. */
export type LauncherMode = "exec" | "spawn";

/** The launcher mode asked for by `KOPF_LAUNCHER` (unset or empty: `"exec"`). */
export function launcherMode(env: (name: string) => string | undefined): LauncherMode {
  let value: string | undefined;
  try {
    value = env("KOPF_LAUNCHER");
  } catch { /* not readable by this launcher: the default */ }
  if (!value || value === "exec") return "exec";
  if (value === "spawn") return "spawn";
  throw new UsageError(`KOPF_LAUNCHER must be "exec" or "spawn", not "${value}"`);
}

function say(line: string): void {
  writeLine(`kopf: ${line}`);
}

/**
 * Runs `kopf run`: plans, then starts the operator sandboxed and returns its exit code — or, with
 * `sandbox: false`, runs it in this process.
 *
 * With `exec: true` this process becomes the operator: `execve` through Deno's FFI replaces it
 * with the sandboxed `deno run` (same pid, stdio and environment), and this function never
 * returns. Idle with one handler, `kopf run` then takes about 65 MiB of RSS instead of about
 * 120 MiB (a 55 MiB launcher + a 65 MiB operator); through 1,000 objects, a 107 instead of a
 * 149 MiB peak. Where that cannot be done, it runs the operator as a child, forwards SIGINT and
 * SIGTERM to it, and returns its exit code: without the `ffi` permission or on Windows (said with
 * `-d`), when `KOPF_LAUNCHER=spawn` is set, or when the C library cannot be opened or `execve`
 * fails (said as a warning).
 */
export async function launch(options: LaunchOptions): Promise<number> {
  const plan = await planLaunch(options);
  for (const warning of plan.target.warnings) say(`warning: ${warning}`);
  if (options.check !== false && !options.rbac) {
    try {
      const millis = await typeCheck({
        roots: [...plan.handlers.localFiles, ...plan.handlers.remote],
        entry: childEntry(),
        denoFlags: options.denoFlags,
        cwd: options.cwd,
      });
      if (options.logging.verbosity === "debug") say(`type-checked in ${millis} ms (deno check)`);
    } catch (error) {
      if (!(error instanceof TypeCheckError)) throw error;
      // One line per problem, each with its file:line:column, as an editor would list them.
      say(`error: ${error.message.split("\n")[0]}`);
      for (const line of error.lines) say(`error: ${line}`);
      if (reportRequested(options.env)) reportException(error);
      return EXIT_USAGE;
    }
  }
  if (options.sandbox === false) {
    const { runOperator } = await import("./child.ts");
    return await runOperator({ ...plan.spec, expectedServer: undefined, watchStdin: false });
  }
  if (options.logging.verbosity === "debug") {
    say(
      `the handlers' module graph: ${plan.graph.files.length} local files, ` +
        `${plan.graph.remote.length} remote modules (deno info: ${plan.graph.millis} ms)`,
    );
    for (const problem of plan.graph.problems) say(`module graph: ${problem}`);
  }
  if (options.printCommand) say(printedCommand(plan));
  const handedOver = childEnv(plan);
  if (options.exec) {
    const env = options.env ?? ((name: string) => Deno.env.get(name));
    if (launcherMode(env) === "spawn") {
      if (options.logging.verbosity === "debug") {
        say("KOPF_LAUNCHER=spawn: the operator runs in a child process");
      }
    } else {
      // No launcher holds a pipe to the operator: it is this process.
      const args = childArgs({ ...plan, spec: { ...plan.spec, watchStdin: false } });
      const failure = replaceProcess(Deno.execPath(), args, { addEnv: handedOver });
      // Still here: the operator runs as a child instead.
      if (!failure.expected) {
        say(`warning: the operator runs in a child process (${failure.reason})`);
      } else if (options.logging.verbosity === "debug") {
        say(`the operator runs in a child process: ${failure.reason}`);
      }
    }
  }
  return await spawnOperator(childArgs(plan), handedOver);
}

/**
 * Runs the operator as a child process with `env` added to this one's environment (which needs
 * no `--allow-env`), forwarding signals to it; returns its exit code.
 */
async function spawnOperator(args: string[], env: Record<string, string>): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    // The child's stdin is a pipe that only this process holds: if the launcher dies without
    // forwarding a signal (SIGKILL), the child sees end-of-file and stops instead of lingering.
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
    // Its own process group: a terminal's Ctrl-C reaches the launcher only, which forwards it
    // once; otherwise the child would get two SIGINTs and skip its graceful stop.
    detached: true,
  }).spawn();
  const forwarders = FORWARDED.map((signal) => {
    const forward = () => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    };
    Deno.addSignalListener(signal, forward);
    return [signal, forward] as const;
  });
  try {
    const status = await child.status;
    return status.signal ? 128 + signalNumber(status.signal) : status.code;
  } finally {
    for (const [signal, forward] of forwarders) Deno.removeSignalListener(signal, forward);
    try {
      await child.stdin.close();
    } catch { /* closed with the child */ }
  }
}

function signalNumber(signal: Deno.Signal): number {
  const numbers: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return numbers[signal] ?? 0;
}
