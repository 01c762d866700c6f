/**
 * What `-m MODULE` names, resolved as Kopf's `-m` resolves a module — a name importable from where
 * the operator runs — in Deno's terms:
 *
 * 1. `jsr:`, `npm:`, `https:`, `http:` and `file:` specifiers are taken as they are.
 * 2. A bare name (`handlers`, `@acme/ops`, `ops/handlers.ts`) that the operator's import map
 *    maps: the `deno.json` the operator process runs with (the one `deno run` finds above the
 *    operator's entry, or `--deno-flag=--config=…`). Deno itself resolves it (`deno eval` with the
 *    same resolution flags), so scopes, workspaces and `deno.jsonc` behave as in the operator.
 * 3. Otherwise a module file under the working directory, as Python finds `-m pkg.mod` on its path
 *    (`kopf run` is started from the project's directory): the name as a path (`handlers.ts`,
 *    `./ops/handlers.ts`), with an extension added (`handlers` → `handlers.ts`, `.js`, …), as a
 *    directory's `mod.ts`/`index.ts`, and a dotted name as a package path (`ops.handlers` →
 *    `ops/handlers.ts`). Paths starting with `./`, `../` or `/` go straight to this step.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { resolvePath } from "./api_target.ts";
import { UsageError } from "./errors.ts";
import { resolutionFlags } from "./module_graph.ts";

/** One `-m` module, resolved. */
export interface ResolvedModule {
  /** What the operator process imports: the specifier as typed, or a `file:` URL. */
  specifier: string;
  /** The local file it loads, absolute (for the sandbox's grants and module graph). */
  localFile?: string;
  /** The remote URL it loads. */
  remote?: string;
}

/** How to resolve `-m` modules. */
export interface ModuleResolutionOptions {
  /** The working directory: where module files are looked for. */
  cwd: string;
  /** The operator process's entry module: its `deno.json` holds the import map. */
  entry: string;
  /** The operator's Deno flags: `--config`, `--import-map` and friends change the import map. */
  denoFlags?: readonly string[];
  /** The `deno` executable (default: this one). */
  deno?: string;
}

const REGISTRY = /^(jsr|npm):/;
const URL_SCHEME = /^(https?|file):/;
const PATH = /^(\.{1,2}\/|\/)/;
const EXTENSIONS = [".ts", ".tsx", ".mts", ".js", ".jsx", ".mjs"];
const INDEXES = ["mod.ts", "index.ts", "mod.js", "index.js"];
// npm packages load from Deno's cache or node_modules: not module files of the project.
const NPM_CACHE = /\/(node_modules|npm\/registry\.npmjs\.org)\//;

/**
 * Resolves the `-m` modules of a run, in order. Throws {@linkcode UsageError} — one line naming
 * the module and where it was looked for — when one resolves to nothing.
 *
 * @example
 * ```ts ignore
 * import { resolveModules } from "./modules.ts";
 * const [mod] = resolveModules(["ops.handlers"], { cwd: "/app", entry: "file:///kopf/src/cli/child.ts" });
 * mod.specifier; // "file:///app/ops/handlers.ts"
 * ```
 */
export function resolveModules(
  modules: readonly string[],
  options: ModuleResolutionOptions,
): ResolvedModule[] {
  const bare = modules.filter((m) => !REGISTRY.test(m) && !URL_SCHEME.test(m) && !PATH.test(m));
  const mapped = bare.length ? importMapResolutions(bare, options) : new Map<string, string>();
  return modules.map((module) => resolveOne(module, mapped.get(module), options));
}

function resolveOne(
  module: string,
  mapped: string | undefined,
  options: ModuleResolutionOptions,
): ResolvedModule {
  if (REGISTRY.test(module)) return { specifier: module };
  if (/^https?:/.test(module)) return { specifier: module, remote: module };
  if (module.startsWith("file:")) {
    const path = decodeURIComponent(new URL(module).pathname);
    if (!isFile(path)) throw new UsageError(`-m ${module}: no such file: ${path}`);
    return { specifier: module, localFile: path };
  }
  if (mapped !== undefined) {
    // The operator resolves the specifier itself, with the same import map.
    if (mapped.startsWith("file:") && !NPM_CACHE.test(mapped)) {
      const path = decodeURIComponent(new URL(mapped).pathname);
      if (!isFile(path)) {
        throw new UsageError(`-m ${module}: the import map maps it to a missing file: ${path}`);
      }
      return { specifier: module, localFile: path };
    }
    if (/^https?:/.test(mapped)) return { specifier: module, remote: mapped };
    return { specifier: module };
  }
  const candidates = moduleFiles(module, options.cwd);
  const found = candidates.find(isFile);
  if (found) return { specifier: pathToFileURL(found).href, localFile: found };
  throw new UsageError(notFound(module, candidates, options));
}

/** The files a module name may be, under `cwd`, in the order they are tried. */
export function moduleFiles(module: string, cwd: string): string[] {
  const names = [module];
  // Kopf's `-m pkg.mod`: a dotted name without an extension is a package path.
  const dotted = /^[\w-]+(\.[\w-]+)+$/.test(module) &&
    !EXTENSIONS.some((ext) => module.endsWith(ext));
  if (dotted) names.push(module.replaceAll(".", "/"));
  const paths: string[] = [];
  for (const name of names) {
    const base = resolvePath(cwd, name);
    paths.push(base);
    if (!EXTENSIONS.some((ext) => base.endsWith(ext))) {
      for (const ext of EXTENSIONS) paths.push(base + ext);
    }
    for (const index of INDEXES) paths.push(`${base}/${index}`);
  }
  return [...new Set(paths)];
}

function notFound(module: string, candidates: string[], options: ModuleResolutionOptions): string {
  const flags = resolutionFlags(options.entry, options.denoFlags);
  const config = flags.find((f) => /^(--config|-c)=/.test(f))?.replace(/^(--config|-c)=/, "");
  const importMap = flags.find((f) => f.startsWith("--import-map="))?.slice(13);
  const where = PATH.test(module)
    ? ""
    : importMap
    ? `not in the import map ${importMap}, and `
    : config
    ? `not in the import map of ${config}, and `
    : "not in an import map (the operator runs with no deno.json), and ";
  const shown = candidates.slice(0, 4).map((p) => relative(options.cwd, p)).join(", ");
  const hint = !PATH.test(module) && !config && !importMap
    ? "; for a project's import map, pass --deno-flag=--config=deno.json"
    : "";
  return `-m ${module}: ${where}no module file matches it in ${options.cwd} ` +
    `(tried ${shown}, …)${hint}`;
}

function relative(cwd: string, path: string): string {
  return path.startsWith(`${cwd}/`) ? path.slice(cwd.length + 1) : path;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * What the operator's import map maps each bare name to (names it does not map are left out), as
 * Deno resolves them: one `deno eval` with the operator's resolution flags, about 40 ms.
 */
function importMapResolutions(
  names: readonly string[],
  options: ModuleResolutionOptions,
): Map<string, string> {
  const flags = resolutionFlags(options.entry, options.denoFlags);
  const script = `const out = {};
for (const name of ${JSON.stringify(names)}) {
  try { out[name] = import.meta.resolve(name); } catch { /* not mapped */ }
}
console.log(JSON.stringify(out));`;
  let output: Deno.CommandOutput;
  try {
    output = new Deno.Command(options.deno ?? Deno.execPath(), {
      args: ["eval", ...flags, script],
      cwd: options.cwd,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
  } catch (error) {
    throw new UsageError(`cannot resolve -m modules with deno: ${(error as Error).message}`);
  }
  if (!output.success) {
    const reason = new TextDecoder().decode(output.stderr).trim().split("\n")[0];
    throw new UsageError(`cannot resolve -m modules with the operator's import map: ${reason}`);
  }
  const resolved = JSON.parse(new TextDecoder().decode(output.stdout)) as Record<string, string>;
  return new Map(Object.entries(resolved));
}
