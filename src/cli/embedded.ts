/**
 * The command line of a bundled or compiled operator: its handler files are built in (the
 * generated entry passes a loader for each), so it only takes the operator's options
 * (namespaces, liveness, logging) and runs. Its permissions come from the `deno run` command (bundle) or were baked in (compile).
 *
 * @module
 */
import { Command } from "commander";
import { runOperator } from "./child.ts";
import { usageExitCode } from "./errors.ts";
import {
  addLoggingOptions,
  addOperatorOptions,
  loggingOptionsOf,
  operatorOptionsOf,
  type RawOperatorFlags,
} from "./options.ts";

/** What the generated entry knows about itself. */
export interface EmbeddedInfo {
  /** The program name shown in the help (the output file's name). */
  name: string;
  /** The handler files it was built from, for messages. */
  labels: string[];
}

/**
 * Parses `args` as an operator's options and runs it; returns the exit code (2 for bad input).
 *
 * @example
 * ```ts
 * import { embeddedMain } from "./embedded.ts";
 * const info = { name: "my-operator", labels: ["handlers.ts"] };
 * Deno.exit(await embeddedMain(Deno.args, info, [() => import("./handlers.ts")]));
 * ```
 */
export async function embeddedMain(
  args: string[],
  info: EmbeddedInfo,
  loaders: (() => Promise<unknown>)[] = [],
): Promise<number> {
  let flags: RawOperatorFlags | undefined;
  const command = new Command(info.name)
    .description(`A Kopf operator built from ${info.labels.join(", ")}.`)
    .helpOption("-h, --help", "show help")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
      writeErr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
      outputError: () => {},
    })
    .action((options: RawOperatorFlags) => {
      flags = options;
    });
  addOperatorOptions(command);
  addLoggingOptions(command);
  try {
    command.parse(args, { from: "user" });
    if (!flags) return 0;
    const operator = operatorOptionsOf(flags);
    const logging = loggingOptionsOf(flags);
    return await runOperator({ imports: [], labels: info.labels, operator, logging }, { loaders });
  } catch (error) {
    return usageExitCode(error);
  }
}
