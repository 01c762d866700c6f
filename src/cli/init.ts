/**
 * `kopf init [dir]`: scaffolds a user's operator project — an import map naming the framework,
 * typed handlers, a CRD and an object, a test with `KopfRunner`, a Dockerfile built from the
 * project's own lockfile, a Deployment, a README. The framework comes from JSR by default, or
 * from a checkout or mirror with `--framework` (what the tests use offline).
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import { dirname, resolvePath } from "./api_target.ts";
import {
  crdYaml,
  denoJson,
  deploymentYaml,
  dockerfile,
  exampleYaml,
  handlersTestTs,
  handlersTs,
  type ProjectParams,
  readme,
} from "./init_templates.ts";

/** What `kopf init` was asked for. */
export interface InitOptions {
  /** The project directory (created if missing); default: the working directory. */
  dir?: string;
  /**
   * The framework: a checkout's directory, a URL of a mirror (with `deno.json` and `mod.ts` at
   * its root), or a `jsr:` specifier; default `jsr:@kopf/kopf@^<this version>`.
   */
  framework?: string;
  /** The project's name (a DNS label); default: the directory's name. */
  name?: string;
  /** The API group of the generated custom resource; default `example.com`. */
  group?: string;
  /** Overwrite files that exist. */
  force?: boolean;
  /** This framework's version, for the default JSR specifier. */
  version: string;
  cwd?: string;
  /** Where messages go (default stderr). */
  log?: (line: string) => void;
}

/** The Deno version of the generated Dockerfile's base image: the one the framework is tested on. */
export const IMAGE_DENO_VERSION = "2.9.6";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;

/** A DNS label made of a directory's name: `My_Operator` → `my-operator`. */
export function nameOf(dir: string): string {
  const base = dir.replace(/\/+$/, "").split("/").pop() ?? "";
  const name = base.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "")
    .slice(0, 63).replace(/-+$/, "");
  return name || "operator";
}

/** Where the framework is: its import map entries and its command line's specifier. */
export async function frameworkOf(
  framework: string | undefined,
  version: string,
  cwd: string,
): Promise<Pick<ProjectParams, "frameworkImports" | "cli" | "fromJsr">> {
  const spec = framework ?? `jsr:@kopf/kopf@^${version}`;
  if (spec.startsWith("jsr:")) {
    // Deno maps the package's subpaths (@kopf/kopf/testing) from this one entry.
    return { frameworkImports: { "@kopf/kopf": spec }, cli: `${spec}/cli`, fromJsr: true };
  }
  const remote = /^https?:\/\//.test(spec);
  const root = remote
    ? spec.replace(/\/*$/, "/")
    : resolvePath(cwd, spec.startsWith("file://") ? new URL(spec).pathname : spec).replace(
      /\/*$/,
      "/",
    );
  let text: string;
  try {
    text = remote
      ? await fetch(`${root}deno.json`).then((r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return r.text();
      })
      : await Deno.readTextFile(`${root}deno.json`);
  } catch (error) {
    throw new UsageError(
      `--framework ${spec}: cannot read its deno.json (${firstLine(error)}); give a checkout ` +
        "of Kopf for Deno, a URL of a mirror of one, or a jsr: specifier",
    );
  }
  let own: { name?: string; imports?: Record<string, string> };
  try {
    own = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--framework ${spec}: its deno.json is not JSON: ${firstLine(error)}`);
  }
  if (own.name !== "@kopf/kopf") {
    throw new UsageError(
      `--framework ${spec}: its deno.json names ${JSON.stringify(own.name)}, not @kopf/kopf`,
    );
  }
  return {
    frameworkImports: {
      "@kopf/kopf": `${root}mod.ts`,
      "@kopf/kopf/testing": `${root}testing.ts`,
      "@kopf/kopf/cli": `${root}cli.ts`,
      // The framework's own dependencies, by the bare names its modules import them with: a
      // project's import map is the one that resolves them when the framework is not a package.
      ...Object.fromEntries(
        Object.entries(own.imports ?? {}).filter(([name]) => !name.startsWith("@kopf/kopf")),
      ),
    },
    cli: `${root}cli.ts`,
    fromJsr: false,
  };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** The files of a project, by their path in it. */
export function projectFiles(params: ProjectParams): Record<string, string> {
  return {
    "deno.json": denoJson(params),
    "handlers.ts": handlersTs(params),
    "handlers_test.ts": handlersTestTs(params),
    "crd.yaml": crdYaml(params),
    "example.yaml": exampleYaml(params),
    "Dockerfile": dockerfile(params),
    "deploy/deployment.yaml": deploymentYaml(params),
    "README.md": readme(params),
  };
}

/** Runs `kopf init`; returns the exit code (0, or 2 for bad input, thrown as UsageError). */
export async function init(options: InitOptions): Promise<number> {
  const log = options.log ??
    ((line: string) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n")));
  const cwd = options.cwd ?? Deno.cwd();
  const dir = resolvePath(cwd, options.dir ?? ".");
  const name = options.name ?? nameOf(dir);
  if (!DNS_LABEL.test(name)) {
    throw new UsageError(`--name ${name}: must be a DNS label (a-z, 0-9, "-"; up to 63)`);
  }
  const group = options.group ?? "example.com";
  if (!DNS_NAME.test(group)) {
    throw new UsageError(`--group ${group}: must be a DNS name with a dot, e.g. example.com`);
  }
  const framework = await frameworkOf(options.framework, options.version, cwd);
  const files = projectFiles({ name, group, ...framework, denoVersion: IMAGE_DENO_VERSION });
  if (!options.force) {
    const existing = Object.keys(files).filter((path) => exists(`${dir}/${path}`));
    if (existing.length > 0) {
      throw new UsageError(
        `${dir} already has ${existing.join(", ")}; pass --force to overwrite them`,
      );
    }
  }
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(`${dir}/${path}`), { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
  log(`kopf: wrote an operator project to ${dir}: ${Object.keys(files).join(", ")}`);
  log(`kopf: next: cd ${dir} && deno task check && deno task run -n default (see README.md)`);
  return 0;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
