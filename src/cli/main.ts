/**
 * The `kopf` command line: `kopf run`, `kopf rbac`, `kopf freeze`, `kopf resume`, `kopf bundle`,
 * `kopf compile`, `kopf init`. Parses the arguments with
 * commander, turns every bad input into one line on stderr and exit code 2, and returns the exit
 * code instead of exiting, so that it can be called from tests and other programs.
 *
 * @module
 */
import { Command, Option } from "commander";
import denoJson from "../../deno.json" with { type: "json" };
import { UsageError, usageExitCode } from "./errors.ts";
import {
  addLoggingOptions,
  addOperatorOptions,
  loggingOptionsOf,
  operatorOptionsOf,
  type RawOperatorFlags,
} from "./options.ts";

/**
 * The version of Kopf for Deno, from `deno.json`.
 *
 * @example
 * ```ts
 * import { VERSION } from "@kopf/kopf/cli";
 *
 * console.log(`Kopf for Deno ${VERSION}`);
 * ```
 */
export const VERSION: string = denoJson.version;

interface RunFlags extends RawOperatorFlags {
  module?: string[];
  allowNet?: string[];
  allowRead?: string[];
  allowWrite?: string[];
  allowEnv?: string[];
  denoFlag?: string[];
  sandbox?: boolean;
  check?: boolean;
}

interface InitFlags {
  framework?: string;
  name?: string;
  group?: string;
  force?: boolean;
}

interface FreezeFlags {
  namespace?: string[];
  allNamespaces?: boolean;
  id?: string;
  peering?: string;
  lifetime?: string;
  priority?: string;
  dev?: boolean;
  message?: string;
  context?: string;
  kubeconfig?: string;
}

interface RbacFlags {
  name?: string;
  serviceAccountNamespace?: string;
  metrics?: string;
}

interface ArtifactFlags extends RawOperatorFlags {
  module?: string[];
  output?: string;
  allowNet?: string[];
  allowRead?: string[];
  allowWrite?: string[];
  allowEnv?: string[];
  denoFlag?: string[];
  server?: string;
  inCluster?: boolean;
  target?: string;
  sourcemap?: true | "inline" | "linked" | "external";
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function addGrantOptions(command: Command): Command {
  return command
    .optionsGroup("Permissions of the operator (beyond what it needs to reach the cluster):")
    .option("--allow-net <hosts>", "hosts the handlers may connect to, comma-separated", collect)
    .option("--allow-read <paths>", "paths the handlers may read, comma-separated", collect)
    .option("--allow-write <paths>", "paths the handlers may write, comma-separated", collect)
    .option("--allow-env <names>", "variables the handlers may read, comma-separated", collect)
    .option(
      "--deno-flag <flag>",
      "pass a flag to deno as is, e.g. --deno-flag=--allow-sys=hostname or " +
        "--deno-flag=--config=deno.json; repeatable",
      collect,
    );
}

function grantFlags(flags: RunFlags | ArtifactFlags): string[] {
  return [
    ...(flags.allowNet ?? []).map((v) => `--allow-net=${v}`),
    ...(flags.allowRead ?? []).map((v) => `--allow-read=${v}`),
    ...(flags.allowWrite ?? []).map((v) => `--allow-write=${v}`),
    ...(flags.allowEnv ?? []).map((v) => `--allow-env=${v}`),
    ...(flags.denoFlag ?? []),
  ];
}

const RUN_HELP = `
This process becomes the operator (or, without --allow-ffi or with KOPF_LAUNCHER=spawn, starts it
as a child): a \`deno run\` that may only reach the API server (from --kubeconfig, $KUBECONFIG,
the in-cluster service account, or ~/.kube/config, in that order), listen on the liveness and
metrics addresses, read the files of the handlers' module graph one by one (and the context's token
file), and run the context's exec credential plugin. It gets the kubeconfig of its one context in memory, not the
kubeconfig files. Anything else a handler tries (another host, another file, another user's
credentials) fails with NotCapable. Grant more with
--allow-net, --allow-read, --allow-write, --allow-env or --deno-flag. Before starting, the handler
files are type-checked with \`deno check\` (each error one line with file:line:column, exit 2);
--no-check skips it.

Examples:
  kopf run handlers.ts -n default
  kopf run handlers.ts -A --liveness http://0.0.0.0:8080/healthz
  kopf run handlers.ts -A --liveness http://0.0.0.0:8080/healthz --metrics http://0.0.0.0:8080/metrics
  kopf run handlers.ts -n 'team-*' -n '!team-x' --allow-net=api.example.com
  kopf run -m my-handlers -A --log-format json -v

Exit codes: 0 after a clean stop (SIGINT/SIGTERM), 1 when the operator fails, 2 for bad input.`;

const ARTIFACT_HELP = (verb: string) => `
The ${verb} includes the handler files and the framework, and runs with the same scoped
permissions as \`kopf run\`: the API server (from --server, the kubeconfig, or the in-cluster
environment at build time), the kubeconfig files, the liveness and metrics addresses, and your
--allow-* additions. For a pod, use --in-cluster: the API address is then read from
KUBERNETES_SERVICE_HOST/PORT when building (or given with --server 10.96.0.1:443), and the
service-account directory is readable.`;

/**
 * Builds the commander program. `onRun` and friends receive checked options; the returned promise
 * of {@linkcode main} resolves to their exit code.
 */
function program(result: { code?: number }, options: MainOptions): Command {
  const root = new Command("kopf")
    .description(
      "Kubernetes operators in TypeScript with Kopf's ergonomics.\n" +
        "Handlers are registered with kopf.on.*; `kopf run` starts them with least privilege.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
      writeErr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
      // Errors are printed by main() as one line, with the exit code 2.
      outputError: () => {},
    });

  const run = root.command("run")
    .summary("run an operator from handler files")
    .description(
      "Import the handler files (TypeScript or JavaScript, paths or URLs) and the -m modules, " +
        "which register handlers with kopf.on.*, and run the operator until SIGINT or SIGTERM.",
    )
    .argument("[files...]", "handler files: local paths or https:// URLs")
    .option(
      "-m, --module <name>",
      "import a module: a name in the import map, a module file under the working directory " +
        "(pkg.mod, pkg/mod.ts, ./mod.ts), or a jsr:/npm:/https: specifier",
      collect,
    );
  addOperatorOptions(run);
  addLoggingOptions(run);
  addGrantOptions(run);
  run.option(
    "--no-check",
    "do not type-check the handler files with `deno check` before starting (as deno test)",
  );
  run.optionsGroup("Debugging:")
    .option("--no-sandbox", "run in this process with its permissions, not in a scoped child")
    .addHelpText("after", RUN_HELP)
    .action(async (files: string[], flags: RunFlags) => {
      const { launch } = await import("./run.ts");
      const logging = loggingOptionsOf(flags);
      result.code = await launch({
        files,
        modules: flags.module,
        operator: operatorOptionsOf(flags),
        logging,
        denoFlags: grantFlags(flags),
        sandbox: flags.sandbox !== false,
        check: flags.check !== false,
        printCommand: logging.verbosity === "verbose" || logging.verbosity === "debug",
        exec: options.exec,
      });
    });

  const rbac = root.command("rbac")
    .summary("print the RBAC manifests the handlers need")
    .description(
      "Import the handler files (in the same sandbox as `kopf run`), resolve the resources they " +
        "serve with the cluster's discovery, and print a ServiceAccount with the least Role or " +
        "ClusterRole and binding they need: list/watch on served resources, patch where handlers " +
        "keep state, events create/patch, CRDs list/watch, namespaces list/watch for patterns.",
    )
    .argument("[files...]", "handler files: local paths or https:// URLs")
    .option(
      "-m, --module <name>",
      "import a module: a name in the import map, a module file under the working directory " +
        "(pkg.mod, pkg/mod.ts, ./mod.ts), or a jsr:/npm:/https: specifier",
      collect,
    )
    .option("-n, --namespace <pattern>", "namespaces the operator will serve; repeatable", collect)
    .option("-A, --all-namespaces", "the operator will serve all namespaces (the default)")
    .option("--name <name>", "name of the ServiceAccount, roles and bindings", "kopf-operator")
    .option("--service-account-namespace <ns>", "namespace of the ServiceAccount")
    .option(
      "--metrics <url>",
      "the operator's --metrics URL: add a Service for it with prometheus.io annotations",
    )
    .option("--leader-election", "the operator runs with --leader-election: grant its Lease")
    .option("--shards <mode>", "the operator runs with --shards: grant its shard Leases")
    .option("--peering", "the operator peers (Kopf's KopfPeering objects): grant them")
    .option("--lease-namespace <ns>", "namespace of the Lease (default: the ServiceAccount's)")
    .option("--context <name>", "kubeconfig context for discovery")
    .option("--kubeconfig <path>", "kubeconfig file(s) for discovery");
  addLoggingOptions(rbac);
  addGrantOptions(rbac);
  rbac.addHelpText(
    "after",
    "\nExamples:\n  kopf rbac handlers.ts -n default | kubectl apply -f -\n" +
      "  kopf rbac handlers.ts -A --metrics http://0.0.0.0:9090/metrics | kubectl apply -f -",
  ).action(async (files: string[], flags: RunFlags & RbacFlags) => {
    const { launch } = await import("./run.ts");
    const operator = operatorOptionsOf({
      namespace: flags.namespace,
      allNamespaces: flags.allNamespaces,
      context: flags.context,
      kubeconfig: flags.kubeconfig,
      metrics: flags.metrics,
    });
    result.code = await launch({
      files,
      modules: flags.module,
      operator,
      logging: loggingOptionsOf(flags),
      denoFlags: grantFlags(flags),
      rbac: {
        name: flags.name,
        serviceAccountNamespace: flags.serviceAccountNamespace,
        metrics: operator.metrics,
        peering: flags.peering !== undefined,
        leases: flags.leaderElection || flags.shards || flags.leaseNamespace
          ? { namespace: flags.leaseNamespace }
          : undefined,
      },
      exec: options.exec,
    });
  });

  for (const verb of ["freeze", "resume"] as const) {
    const command = root.command(verb)
      .summary(
        verb === "freeze"
          ? "pause the operators of a Kopf peering object for a while"
          : "resume the operators paused by `kopf freeze`",
      )
      .option("-n, --namespace <name>", "the KopfPeering in this namespace; repeatable", collect)
      .option("-A, --all-namespaces", "the ClusterKopfPeering (the default)")
      .option("-i, --id <id>", "the identity of the record (default: user@host)")
      .option("-P, --peering <name>", "the peering object's name", "default")
      .option("--context <name>", "kubeconfig context")
      .option("--kubeconfig <path>", "kubeconfig file(s)");
    if (verb === "freeze") {
      command
        .requiredOption("-t, --lifetime <seconds>", "how long the freeze lasts")
        .option("-p, --priority <int>", "priority of the freeze", "100")
        .option("--dev", "the same as --priority 666")
        .option("-m, --message <text>", "a message kept in the record");
    }
    command.action(async (flags: FreezeFlags) => {
      if (flags.namespace?.length && flags.allNamespaces) {
        throw new UsageError("--namespace and --all-namespaces cannot be used together");
      }
      const integer = (flag: string, value: string | undefined) => {
        if (value === undefined) return undefined;
        if (!/^-?\d+$/.test(value.trim())) {
          throw new UsageError(`${flag} must be an integer, not "${value}"`);
        }
        return Number(value);
      };
      const { freezeCommand } = await import("./freeze.ts");
      result.code = await freezeCommand({
        command: verb,
        id: flags.id,
        peering: flags.peering,
        priority: flags.dev ? 666 : integer("--priority", flags.priority),
        lifetime: integer("--lifetime", flags.lifetime),
        message: flags.message,
        namespaces: flags.namespace,
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      });
    });
  }
  root.command("init")
    .summary("scaffold an operator project of your own")
    .description(
      "Write an operator project to DIR (default: here): deno.json with an import map naming " +
        "the framework, typed handlers.ts, a CRD and an object, a test with KopfRunner, a " +
        "Dockerfile built from the project's own lockfile, a Deployment, and a README.",
    )
    .argument("[dir]", "the project's directory, created if missing", ".")
    .option(
      "--framework <path|url>",
      "the framework: a checkout of Kopf for Deno, a URL of a mirror, or a jsr: specifier " +
        `(default: jsr:@kopf/kopf@^${VERSION})`,
    )
    .option("--name <name>", "the project's name: image, ServiceAccount, Deployment (default: DIR)")
    .option("--group <group>", "the API group of the generated resource", "example.com")
    .option("--force", "overwrite files that exist")
    .addHelpText(
      "after",
      "\nExamples:\n  kopf init my-operator\n  kopf init my-operator --framework ../kopf-deno",
    )
    .action(async (dir: string, flags: InitFlags) => {
      const { init } = await import("./init.ts");
      result.code = await init({ dir, ...flags, version: VERSION });
    });

  for (const verb of ["bundle", "compile"] as const) {
    const command = root.command(verb)
      .summary(
        verb === "bundle"
          ? "bundle handler files and the framework into one JavaScript file"
          : "compile handler files and the framework into one executable (deno compile)",
      )
      .description(
        verb === "bundle"
          ? "Bundle the handler files, the framework and its npm dependencies into one file " +
            "(deno bundle) and print the `deno run` command, with scoped permissions, that runs it."
          : "Compile the handler files and the framework into a self-contained executable " +
            "(deno compile) with the scoped permissions baked in. The executable takes " +
            "the same options as `kopf run` (namespaces, liveness, logging).",
      )
      .argument("[files...]", "handler files")
      .option(
        "-m, --module <name>",
        "include a module: a name in the import map, a module file under the working " +
          "directory, or a jsr:/npm:/https: specifier",
        collect,
      )
      .requiredOption(
        "-o, --output <path>",
        verb === "bundle" ? "output .js file" : "output executable",
      )
      .optionsGroup("Cluster access baked into the permissions:")
      .option(
        "--server <host:port>",
        "the API server address to allow, instead of the kubeconfig's",
      )
      .option("--in-cluster", "for a pod: allow the service account and KUBERNETES_SERVICE_*")
      .option("--kubeconfig <path>", "kubeconfig to take the server and files from")
      .option("--context <name>", "kubeconfig context to take the server from")
      .option(
        "-L, --liveness <url>",
        "allow listening for a liveness probe, e.g. http://0.0.0.0:8080/healthz",
      )
      .option(
        "--webhook-server <url>",
        "allow listening for admission webhooks, e.g. https://0.0.0.0:9443",
      )
      .option(
        "--metrics <url>",
        "allow listening for Prometheus scrapes, e.g. http://0.0.0.0:9090/metrics",
      );
    if (verb === "compile") command.option("--target <triple>", "deno compile --target");
    if (verb === "bundle") {
      command.addOption(
        new Option(
          "--sourcemap [kind]",
          "add a source map for stack traces: inline (the default kind), linked or external",
        ).choices(["inline", "linked", "external"]),
      );
    }
    addGrantOptions(command);
    command.addHelpText("after", ARTIFACT_HELP(verb === "bundle" ? "bundle" : "executable"))
      .action(async (files: string[], flags: ArtifactFlags) => {
        const { buildArtifact } = await import("./artifact.ts");
        result.code = await buildArtifact({
          kind: verb,
          files,
          modules: flags.module,
          output: flags.output!,
          server: flags.server,
          inCluster: flags.inCluster,
          kubeconfig: flags.kubeconfig,
          context: flags.context,
          liveness: flags.liveness,
          webhookServer: flags.webhookServer,
          metrics: flags.metrics,
          denoFlags: grantFlags(flags),
          target: flags.target,
          sourcemap: flags.sourcemap === true ? "inline" : flags.sourcemap,
        });
      });
  }
  return root;
}

/**
 * Options of {@linkcode main}.
 *
 * @example
 * ```ts
 * import { main, type MainOptions } from "@kopf/kopf/cli";
 *
 * // A program that is the `kopf` command: `kopf run` then becomes the operator process.
 * const options: MainOptions = { exec: true };
 * if (import.meta.main) Deno.exit(await main(Deno.args, options));
 * ```
 */
export interface MainOptions {
  /**
   * Let `kopf run` and `kopf rbac` replace this process with the sandboxed operator (`execve`)
   * instead of running it as a child, when they can: then {@linkcode main} does not return for
   * them, and the process exits with the operator's code. For a program's entry point, as
   * `cli.ts`; default `false`. `KOPF_LAUNCHER=spawn` in the environment turns it off.
   */
  exec?: boolean;
}

/**
 * Runs the `kopf` command line with `args` (without the program name) and returns the exit code.
 * Bad input is reported as one line on stderr with exit code 2; it never throws.
 *
 * @example
 * ```ts
 * import { main } from "@kopf/kopf/cli";
 *
 * const code = await main(["run", "handlers.ts", "-n", "default"]); // returns when it stops
 * Deno.exit(code);
 * ```
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  const result: { code?: number } = {};
  try {
    await program(result, options).parseAsync(args, { from: "user" });
    return result.code ?? 0;
  } catch (error) {
    return usageExitCode(error);
  }
}
