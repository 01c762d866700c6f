/**
 * The options of an operator run (Kopf's `kopf run` flags) as commander definitions, and their
 * checked form. Shared by `kopf run` and by the entry of bundled and compiled operators, so that a
 * single-file operator takes the same flags.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { UsageError } from "./errors.ts";
import {
  LOG_FORMATS,
  type LogFormat,
  type LoggingOptions,
  type Verbosity,
} from "../actions/log_options.ts";
import { listenAddressOf, webhookListenAddressOf } from "./permissions.ts";

/** What the operator loop is started with (the CLI's part of `kopf.run()`'s options). */
export interface OperatorOptions {
  /** Namespace patterns (globs, `!` negation); absent when serving the whole cluster. */
  namespaces?: string[];
  /** Serve all namespaces (`-A`). */
  clusterwide?: boolean;
  /** Kubeconfig context (`--context`). */
  context?: string;
  /** Kubeconfig path or `:`-separated list (`--kubeconfig`). */
  kubeconfig?: string;
  /** Liveness endpoint URL, e.g. `http://0.0.0.0:8080/healthz`. */
  liveness?: string;
  /** Serve admission webhooks at this URL (`--webhook-server`), e.g. `https://127.0.0.1:9443`. */
  webhookServer?: string;
  /** Manage the webhook configurations of this name (`--webhook-managed`). */
  webhookManaged?: string;
  /** Prometheus metrics endpoint URL, e.g. `http://0.0.0.0:9090/metrics`. */
  metrics?: string;
  /** Run without peering. */
  standalone?: boolean;
  /** Peering priority (`--dev` is 666). */
  priority?: number;
  /** Kopf's peering object name (`--peering`): peering is then mandatory. */
  peering?: string;
  /** One replica handles objects at a time, elected with a Lease (`--leader-election`). */
  leaderElection?: boolean;
  /** The Lease's namespace (`--lease-namespace`). */
  leaseNamespace?: string;
  /** Shard objects across the live replicas (`--shards auto`). */
  shards?: "auto";
}

/** The raw values commander collects for the operator options. */
export interface RawOperatorFlags {
  namespace?: string[];
  allNamespaces?: boolean;
  context?: string;
  kubeconfig?: string;
  liveness?: string;
  webhookServer?: string;
  webhookManaged?: string;
  metrics?: string;
  standalone?: boolean;
  priority?: string;
  dev?: boolean;
  peering?: string;
  leaderElection?: boolean;
  leaseNamespace?: string;
  shards?: string;
  verbose?: boolean;
  debug?: boolean;
  quiet?: boolean;
  logFormat?: string;
  logPrefix?: boolean;
  logRefkey?: string;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Adds Kopf's logging flags (`-v`, `-d`, `-q`, `--log-format`, …) to a command. */
export function addLoggingOptions(command: Command): Command {
  return command
    .optionsGroup("Logging:")
    .option(
      "-v, --verbose",
      "show debug messages of handlers and the framework (not its internals)",
    )
    .option("-d, --debug", "show all debug messages, including the API client, watches and queues")
    .option("-q, --quiet", "show only warnings and errors")
    .addOption(
      new Option("--log-format <format>", "how log lines look")
        .choices([...LOG_FORMATS])
        .default("full")
        .env("KOPF_LOG_FORMAT"),
    )
    .option("--log-prefix", "prefix object messages with [namespace/name] (default for text)")
    .option("--no-log-prefix", "do not prefix object messages (default for json)")
    .option("--log-refkey <key>", "JSON key for the object reference", "object");
}

/**
 * Adds the operator's own flags (namespaces, cluster access, peering, liveness, metrics) to a
 * command.
 */
export function addOperatorOptions(command: Command): Command {
  return command
    .optionsGroup("Scope and cluster:")
    .option(
      "-n, --namespace <pattern>",
      "serve this namespace; repeatable; globs (*, ?) and !negation, e.g. -n 'app-*' -n '!app-x'",
      collect,
    )
    .option("-A, --all-namespaces", "serve all namespaces (cluster-wide)")
    .option("--context <name>", "kubeconfig context to use instead of the current one")
    .option("--kubeconfig <path>", "kubeconfig file(s), ':'-separated; default $KUBECONFIG")
    .optionsGroup("Operator:")
    .addOption(
      new Option("-L, --liveness <url>", "serve a liveness probe, e.g. http://0.0.0.0:8080/healthz")
        .env("KOPF_RUN_LIVENESS"),
    )
    .addOption(
      new Option(
        "--webhook-server <url>",
        "serve admission webhooks (kopf.on.validate/mutate) at https://ADDR:PORT[/PATH], " +
          "self-signed; http:// for plain HTTP",
      ).env("KOPF_RUN_WEBHOOK_SERVER"),
    )
    .addOption(
      new Option(
        "--webhook-managed <name>",
        "create and keep the webhook configurations of this name, e.g. auto.kopf.dev",
      ).env("KOPF_RUN_WEBHOOK_MANAGED"),
    )
    .addOption(
      new Option(
        "--metrics <url>",
        "serve Prometheus metrics, e.g. http://0.0.0.0:9090/metrics (may share --liveness's port)",
      ).env("KOPF_RUN_METRICS"),
    )
    .addOption(
      new Option("--standalone", "run without peering with other operators")
        .env("KOPF_RUN_STANDALONE"),
    )
    .addOption(
      new Option("-P, --peering <name>", "Kopf's peering object to use (then mandatory)")
        .env("KOPF_RUN_PEERING"),
    )
    .addOption(
      new Option("-p, --priority <int>", "peering priority").env("KOPF_RUN_PRIORITY"),
    )
    .option("--dev", "development mode: the same as --priority 666")
    .addOption(
      new Option(
        "--leader-election",
        "several replicas: one at a time handles objects, elected with a Lease",
      ).env("KOPF_RUN_LEADER_ELECTION"),
    )
    .addOption(
      new Option(
        "--lease-namespace <ns>",
        "namespace of the Lease (default: the pod's, else the first served, else default)",
      ).env("KOPF_RUN_LEASE_NAMESPACE"),
    )
    .addOption(
      new Option(
        "--shards <mode>",
        "several replicas: each handles a share of the objects (auto: by their shard Leases)",
      ).env("KOPF_RUN_SHARDS"),
    );
}

/** Checks the operator flags and returns the options of the operator loop. */
export function operatorOptionsOf(flags: RawOperatorFlags): OperatorOptions {
  const options: OperatorOptions = {};
  if (flags.namespace?.length && flags.allNamespaces) {
    throw new UsageError("--namespace and --all-namespaces cannot be used together");
  }
  if (flags.namespace?.length) {
    for (const pattern of flags.namespace) {
      if (!pattern.trim()) throw new UsageError("--namespace needs a non-empty pattern");
    }
    options.namespaces = [...flags.namespace];
  }
  if (flags.allNamespaces) options.clusterwide = true;
  if (flags.context !== undefined) {
    if (!flags.context) throw new UsageError("--context needs a name");
    options.context = flags.context;
  }
  if (flags.kubeconfig !== undefined) {
    if (!flags.kubeconfig) throw new UsageError("--kubeconfig needs a path");
    options.kubeconfig = flags.kubeconfig;
  }
  if (flags.liveness !== undefined) {
    listenAddressOf(flags.liveness); // throws a UsageError for anything but http://host:port/…
    options.liveness = flags.liveness;
  }
  if (flags.webhookServer !== undefined) {
    webhookListenAddressOf(flags.webhookServer); // a UsageError for a bad URL
    options.webhookServer = flags.webhookServer;
  }
  if (flags.webhookManaged !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(flags.webhookManaged)) {
      throw new UsageError(
        `--webhook-managed must be a DNS subdomain (e.g. auto.kopf.dev), not "${flags.webhookManaged}"`,
      );
    }
    if (flags.webhookServer === undefined) {
      throw new UsageError("--webhook-managed needs --webhook-server");
    }
    options.webhookManaged = flags.webhookManaged;
  }
  if (flags.metrics !== undefined) {
    listenAddressOf(flags.metrics); // throws a UsageError for anything but http://host:port/…
    options.metrics = flags.metrics;
  }
  if (flags.standalone) options.standalone = true;
  if (flags.priority !== undefined) {
    if (!/^-?\d+$/.test(flags.priority.trim())) {
      throw new UsageError(`--priority must be an integer, not "${flags.priority}"`);
    }
    options.priority = Number(flags.priority);
  }
  if (flags.dev) {
    if (flags.priority !== undefined) {
      throw new UsageError("--dev and --priority cannot be used together");
    }
    options.priority = 666;
  }
  if (flags.peering !== undefined) {
    if (!/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(flags.peering)) {
      throw new UsageError(`--peering must be an object name, not "${flags.peering}"`);
    }
    if (flags.standalone) {
      throw new UsageError("--peering and --standalone cannot be used together");
    }
    options.peering = flags.peering;
  }
  if (flags.leaderElection) options.leaderElection = true;
  if (flags.shards !== undefined) {
    if (flags.shards !== "auto") {
      throw new UsageError(`--shards must be "auto", not "${flags.shards}"`);
    }
    if (flags.leaderElection) {
      throw new UsageError("--shards and --leader-election cannot be used together");
    }
    options.shards = "auto";
  }
  if (flags.leaseNamespace !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(flags.leaseNamespace)) {
      throw new UsageError(
        `--lease-namespace must be a namespace name, not "${flags.leaseNamespace}"`,
      );
    }
    options.leaseNamespace = flags.leaseNamespace;
  }
  return options;
}

/** Checks the logging flags and returns the logging configuration. */
export function loggingOptionsOf(flags: RawOperatorFlags): LoggingOptions {
  const loud = [flags.quiet && "--quiet", flags.verbose && "--verbose", flags.debug && "--debug"]
    .filter(Boolean);
  if (flags.quiet && (flags.verbose || flags.debug)) {
    throw new UsageError(`${loud.join(" and ")} cannot be used together`);
  }
  const verbosity: Verbosity = flags.debug
    ? "debug"
    : flags.verbose
    ? "verbose"
    : flags.quiet
    ? "quiet"
    : "normal";
  const format = (flags.logFormat ?? "full") as LogFormat;
  if (!LOG_FORMATS.includes(format)) {
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(", ")}`);
  }
  const options: LoggingOptions = { format, verbosity };
  if (flags.logPrefix !== undefined) options.prefix = flags.logPrefix;
  if (flags.logRefkey) options.refKey = flags.logRefkey;
  return options;
}
