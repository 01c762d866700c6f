/**
 * controller-runtime in the benchmark: the Go operator in bench/controller-runtime/ (same
 * semantics as the other operators, single variant), built on first use into
 * `~/.cache/kopf-bench/` and rebuilt when its sources change, started as its own process with
 * `--workers 1` (controller-runtime's default MaxConcurrentReconciles) or `--workers 10`.
 *
 * @module
 */
import { OperatorProcess } from "../../tests/support/operator_process.ts";
import type { Target } from "./scenario.ts";
import { criteriaOf, type Variant } from "./targets.ts";

const SOURCE = new URL("../controller-runtime/", import.meta.url).pathname;
/** The files whose content decides whether the cached binary is current. */
const INPUTS = ["main.go", "go.mod", "go.sum"];
const BINARY = "kopf-bench-ctrlrt";

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/kopf-bench`;
}

async function sourceHash(): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const name of INPUTS) {
    parts.push(new TextEncoder().encode(`${name}\n`), await Deno.readFile(`${SOURCE}${name}`));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, at), at += p.length;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return fallback;
  }
}

/**
 * The path of the built operator, building it when the cached one is missing or was built from
 * other sources; or one line saying why it cannot be built.
 */
export async function buildCtrlrt(log: (line: string) => void = () => {}): Promise<string> {
  const dir = cacheDir();
  const binary = `${dir}/${BINARY}`;
  const stamp = `${binary}.sha256`;
  let hash: string;
  try {
    hash = await sourceHash();
  } catch (error) {
    throw new Error(`controller-runtime operator: cannot read its sources in ${SOURCE}: ${error}`);
  }
  const built = await Deno.stat(binary).then(() => true, () => false);
  if (built && await readOr(stamp, "") === hash) return binary;
  await Deno.mkdir(dir, { recursive: true });
  log(`building the controller-runtime operator into ${binary} (first build takes minutes)`);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("go", {
      args: ["build", "-o", binary, "."],
      cwd: SOURCE,
      // -mod=mod: go.sum is committed, the module cache is filled from the Go proxy on demand.
      env: { GOFLAGS: "-mod=mod -buildvcs=false" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(
      `controller-runtime operator: cannot run \`go build\` (is Go installed?): ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
  if (!out.success) {
    const said = new TextDecoder().decode(out.stderr).trim().split("\n");
    // The first line naming a file or a module says what broke; the rest is context.
    const first = said.find((l) => !l.startsWith("#") && l.trim()) ?? "(no output)";
    throw new Error(`controller-runtime operator: go build in ${SOURCE} failed: ${first}`);
  }
  await Deno.writeTextFile(stamp, hash + "\n");
  return binary;
}

/**
 * The controller-runtime operator with `workers` reconcilers (id `ctrlrt` for 1, controller-
 * runtime's default; `ctrlrt-10` for 10), or why it cannot run: single variant only.
 */
export function ctrlrtTarget(
  binary: string,
  variant: Variant,
  workers: 1 | 10,
): Target | string {
  if (variant !== "single") {
    return "run for the single variant only (the Go operator has one create handler)";
  }
  const args = (kubeconfig: string, namespace: string) => [
    "--kubeconfig",
    kubeconfig,
    "--namespace",
    namespace,
    "--workers",
    String(workers),
  ];
  return {
    id: workers === 1 ? "ctrlrt" : "ctrlrt-10",
    label: workers === 1
      ? "controller-runtime 0.25 (default)"
      : "controller-runtime 0.25 (10 workers)",
    variant,
    criteria: criteriaOf(variant),
    command: [BINARY, ...args("<kubeconfig>", "<ns>")],
    start: ({ plane, namespace, logFile }) =>
      OperatorProcess.start({
        command: binary,
        args: args(plane.operator.kubeconfig, namespace),
        logFile,
      }),
  };
}
