/**
 * The reference Python Kopf for the benchmark and the interop tests: installed from PyPI into a
 * virtualenv outside the repo by `python_kopf.sh` (reused when present), and run against the local
 * control plane with `kopf run`.
 *
 * @module
 */
import { OperatorProcess } from "./operator_process.ts";

const SCRIPT = new URL("./python_kopf.sh", import.meta.url).pathname;

/** An installed Python Kopf. */
export interface PythonKopf {
  /** The virtualenv directory. */
  venv: string;
  /** `<venv>/bin/kopf`. */
  kopf: string;
  /** `<venv>/bin/python`. */
  python: string;
  /** The installed Kopf version, e.g. `1.45.2`. */
  version: string;
  /** Whether uvloop is installed (Kopf's CLI then runs its loop on it). */
  uvloop: boolean;
}

const installs = new Map<boolean, Promise<PythonKopf>>();

/**
 * Ensures Python Kopf 1.45.x is installed (once per process) and returns where.
 * `uvloop: true` uses a separate venv with `kopf[uvloop]`, since Kopf's CLI picks uvloop up
 * whenever it is importable.
 */
export function pythonKopf(options: { uvloop?: boolean } = {}): Promise<PythonKopf> {
  const uvloop = options.uvloop ?? false;
  let install = installs.get(uvloop);
  if (!install) {
    install = installPythonKopf(uvloop);
    installs.set(uvloop, install);
  }
  return install;
}

async function installPythonKopf(uvloop: boolean): Promise<PythonKopf> {
  const out = await new Deno.Command("bash", {
    args: [SCRIPT, ...(uvloop ? ["--uvloop"] : [])],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const last = stdout.split("\n").at(-1) ?? "";
  if (!out.success || !last.startsWith("KOPF_VENV=")) {
    throw new Error(
      `python_kopf.sh failed:\n${new TextDecoder().decode(out.stderr)}\n${stdout}`,
    );
  }
  const venv = last.slice("KOPF_VENV=".length);
  const python = `${venv}/bin/python`;
  const probe = await new Deno.Command(python, {
    args: [
      "-c",
      "import importlib.metadata as m, importlib.util as u; " +
      "print(m.version('kopf')); print(bool(u.find_spec('uvloop')))",
    ],
    stdout: "piped",
  }).output();
  const [version, hasUvloop] = new TextDecoder().decode(probe.stdout).trim().split("\n");
  return { venv, kopf: `${venv}/bin/kopf`, python, version, uvloop: hasUvloop === "True" };
}

/** How to run a Kopf operator file. */
export interface KopfRunOptions {
  /** The kubeconfig to use (the test cluster's). */
  kubeconfig: string;
  /** Namespaces to serve (`-n`, repeatable); none means `--all-namespaces`. */
  namespaces?: string[];
  /** `--standalone` (no peering); default true. */
  standalone?: boolean;
  /** More `kopf run` arguments, e.g. `["--verbose"]`. */
  args?: string[];
  /** Extra environment. */
  env?: Record<string, string>;
  /** Also write the output here. */
  logFile?: string;
}

/** The `kopf run` arguments for an operator file (exported for the benchmark's records). */
export function kopfRunArgs(file: string, options: KopfRunOptions): string[] {
  const scope = options.namespaces?.length
    ? options.namespaces.flatMap((ns) => ["-n", ns])
    : ["--all-namespaces"];
  return [
    "run",
    ...(options.standalone ?? true ? ["--standalone"] : []),
    ...scope,
    ...(options.args ?? []),
    file,
  ];
}

/**
 * Starts `kopf run <file>` against the given kubeconfig.
 *
 * @example
 * ```ts ignore
 * const kopf = await pythonKopf();
 * const op = runPythonKopf(kopf, "operator.py", { kubeconfig: c.kubeconfig, namespaces: [ns] });
 * await op.waitForLog(/Handler 'create_fn' succeeded/);
 * await op.stop();
 * ```
 */
export function runPythonKopf(
  kopf: PythonKopf,
  file: string,
  options: KopfRunOptions,
): OperatorProcess {
  return OperatorProcess.start({
    command: kopf.kopf,
    args: kopfRunArgs(file, options),
    // Unbuffered, so the log (and waitForLog) sees lines as Kopf writes them.
    env: { KUBECONFIG: options.kubeconfig, PYTHONUNBUFFERED: "1", ...options.env },
    logFile: options.logFile,
  });
}
