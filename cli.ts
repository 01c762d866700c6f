/**
 * The `kopf` command line.
 *
 * ```sh
 * deno run -A cli.ts run handlers.ts -n default
 * ```
 *
 * `kopf run` itself needs to read the kubeconfig and the handler files and to start `deno` (with
 * `--allow-ffi`, by replacing its own process); the operator it starts gets only what it needs
 * (see `kopf run --help`). Install it as a command with `deno install -g -A -n kopf cli.ts`.
 *
 * @example
 * ```ts
 * import { main } from "@kopf/kopf/cli";
 *
 * const code = await main(["rbac", "handlers.ts", "-n", "default"]); // prints the RBAC manifests
 * ```
 *
 * @module
 */
export { main, type MainOptions, VERSION } from "./src/cli/main.ts";
import { main } from "./src/cli/main.ts";

// The command itself: `kopf run` becomes the operator process instead of staying next to it.
if (import.meta.main) Deno.exit(await main(Deno.args, { exec: true }));
