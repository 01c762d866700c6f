/**
 * The operator's local module graph: the files the handler modules load, which are the only files
 * `kopf run` lets the operator process read (besides what the user grants and the credential files
 * the client re-reads). Found with `deno info --json`, run by the launcher for every local handler
 * module and for the operator process's own entry, in parallel: about 10–20 ms each for the
 * examples of this repository (2 CPU cores, warm cache), ~25 ms for the whole step.
 *
 * What Deno 2.9 checks against `--allow-read` when modules load (measured with deno 2.9.6 and
 * reproduced by `tests/integration/cli_sandbox_test.ts`):
 *
 * - The main module's graph — its static imports and its `import()`s of string literals — loads
 *   without any `--allow-read` check. A module already in that graph is not checked when a
 *   handler imports it later: the framework's own modules need no grant.
 * - A module loaded by an `import()` of a computed specifier — how the operator process loads the
 *   handler files — is checked, and so is every local module of its graph: static imports,
 *   `import()`s of literals, JSON modules. An import the graph does not contain (a computed
 *   `import()` of a neighbouring `secret.json`) fails with "Requires read access".
 * - Checks are made on the path as written: the file URL's path, with `.` and `..` resolved but
 *   symlinks not. A module imported through a symlink is checked on the symlink's own path (its
 *   target's path alone does not let it load), and `Deno.readTextFile()` of a symlink inside a
 *   granted directory reads wherever it points — why a directory grant leaks.
 *
 * Hence the grant: each local module of the graph by its own path, file by file, never a
 * directory; and where that path is not its real path (a symlink on the way), the real path too
 * (`Deno.realPathSync`), which is the same file. A symlink in the graph therefore reads the module
 * it points to; whoever could re-point it could as well change the handler code itself.
 *
 * Remote modules (`https:`, and `jsr:` as it resolves to `https://jsr.io/`) need no read grant;
 * their hosts are what `--allow-import` is about. `npm:` packages load from Deno's cache without a
 * grant.
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { dirname } from "./api_target.ts";

/** What the operator process loads besides the framework itself. */
export interface ModuleGraph {
  /**
   * Local files to grant read access to, absolute: each module's path as Deno checks it and, when
   * different, its real path. Sorted, without duplicates.
   */
  files: string[];
  /** Remote modules (URLs) of the graph, including redirect targets. */
  remote: string[];
  /** Why a root's graph could not be listed in full (the operator then reports the failure). */
  problems: string[];
  /** Wall-clock milliseconds the `deno info` runs took together. */
  millis: number;
}

/** How `deno info` must resolve modules to see the graph the operator process will load. */
export interface GraphOptions {
  /** The operator process's entry module (a URL); its own graph is left out of the grants. */
  entry: string;
  /** The Deno flags the operator process gets; the config-related ones are passed on. */
  denoFlags?: readonly string[];
  /** The working directory of the operator process. */
  cwd?: string;
  /** The `deno` executable; defaults to this one. */
  deno?: string;
}

// Flags that change how specifiers resolve (or whether remote and npm modules may be fetched).
const RESOLUTION_FLAGS =
  /^(--config|-c|--no-config|--import-map|--node-modules-dir|--vendor|--lock|--no-lock|--frozen|--cached-only|--no-remote|--no-npm|--reload|-r)(=|$)/;

/**
 * The flags `deno info` needs to resolve like `deno run` of `entry` will: the user's
 * resolution flags if they name a config (or none); otherwise the config that `deno run` finds
 * by itself, which it looks for from the main module's directory (not the working directory):
 * the first `deno.json(c)` above a local entry, none for a remote one.
 */
export function resolutionFlags(entry: string, denoFlags: readonly string[] = []): string[] {
  const passed = denoFlags.filter((flag) => RESOLUTION_FLAGS.test(flag));
  if (passed.some((flag) => /^(--config|-c|--no-config)(=|$)/.test(flag))) return passed;
  if (!entry.startsWith("file:")) return ["--no-config", ...passed];
  const found = findConfigAbove(dirname(fromFileUrl(entry)));
  return [found ? `--config=${found}` : "--no-config", ...passed];
}

/** The first `deno.json(c)` in `start` or a directory above it (where `deno run` looks). */
export function findConfigAbove(start: string): string | undefined {
  let dir = start;
  while (true) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* keep looking */ }
    }
    if (dir === "/") return undefined;
    dir = dirname(dir);
  }
}

interface InfoModule {
  specifier: string;
  error?: string;
}

interface InfoOutput {
  modules?: InfoModule[];
  redirects?: Record<string, string>;
}

interface RootGraph {
  local: string[];
  remote: string[];
  problems: string[];
}

/** `deno info --json` of one root: its local module paths (as written) and remote URLs. */
async function infoOf(
  root: string,
  flags: string[],
  options: GraphOptions,
): Promise<RootGraph> {
  const out = await new Deno.Command(options.deno ?? Deno.execPath(), {
    args: ["info", "--json", ...flags, root],
    cwd: options.cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const reason = new TextDecoder().decode(out.stderr).trim();
    return { local: [], remote: [], problems: [`${root}: ${reason.split("\n")[0]}`] };
  }
  let info: InfoOutput;
  try {
    info = JSON.parse(new TextDecoder().decode(out.stdout));
  } catch (error) {
    return { local: [], remote: [], problems: [`${root}: deno info: ${(error as Error).message}`] };
  }
  const graph: RootGraph = { local: [], remote: [], problems: [] };
  for (const module of info.modules ?? []) {
    if (module.error) {
      graph.problems.push(`${module.specifier}: ${module.error.split("\n")[0]}`);
    } else if (module.specifier.startsWith("file:")) {
      graph.local.push(fromFileUrl(module.specifier));
    } else if (/^https?:/.test(module.specifier)) {
      graph.remote.push(module.specifier);
    }
  }
  for (const [from, to] of Object.entries(info.redirects ?? {})) {
    for (const url of [from, to]) if (/^https?:/.test(url)) graph.remote.push(url);
  }
  return graph;
}

/**
 * The local files and remote modules that loading `roots` (handler files as absolute paths or
 * URLs) brings in, minus what the operator process's own entry loads anyway (its graph is loaded
 * without checks). A root whose graph cannot be listed still has its own file granted, so that the
 * operator process reports what is wrong with it (a syntax error, a missing import) as it imports.
 *
 * @example
 * ```ts
 * import { moduleGraph } from "./module_graph.ts";
 * const graph = await moduleGraph(["/app/handlers.ts"], {
 *   entry: new URL("./child.ts", import.meta.url).href,
 * });
 * console.log(graph.files); // ["/app/handlers.ts", "/app/lib/util.ts"]
 * ```
 */
export async function moduleGraph(roots: string[], options: GraphOptions): Promise<ModuleGraph> {
  const started = performance.now();
  const flags = resolutionFlags(options.entry, options.denoFlags);
  const [own, ...graphs] = await Promise.all(
    [options.entry, ...roots].map((root) => infoOf(root, flags, options)),
  );
  const loaded = new Set([...own.local, ...own.remote]);
  const files = new Set<string>();
  const remote = new Set<string>();
  const problems: string[] = [];
  for (const [i, graph] of graphs.entries()) {
    problems.push(...graph.problems);
    const root = roots[i];
    const rootPath = root.startsWith("file:") ? fromFileUrl(root) : root;
    if (rootPath.startsWith("/") && !graph.local.includes(rootPath)) graph.local.push(rootPath);
    for (const path of graph.local) {
      if (loaded.has(path)) continue;
      let real: string;
      try {
        real = Deno.realPathSync(path);
        if (!Deno.statSync(real).isFile) continue;
      } catch {
        continue; // gone or unreadable: the import reports it
      }
      files.add(path);
      files.add(real);
    }
    for (const url of graph.remote) if (!loaded.has(url)) remote.add(url);
  }
  return {
    files: [...files].sort(),
    remote: [...remote].sort(),
    problems,
    millis: Math.round(performance.now() - started),
  };
}
