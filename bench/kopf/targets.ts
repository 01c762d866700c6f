/**
 * The operators the benchmark measures, handler for handler the same: Python Kopf with its
 * defaults, Python Kopf with its best throughput settings (labelled so), ours, and the floor.
 *
 * @module
 */
import { OperatorProcess } from "../../tests/support/operator_process.ts";
import { kopfRunArgs, type PythonKopf, runPythonKopf } from "../../tests/support/python_kopf.ts";
import type { HandledCriteria } from "./observer.ts";
import type { Target } from "./scenario.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("../..", import.meta.url).pathname;

/** `single`: one handler per cause; `three`: three create handlers (plus update and delete). */
export type Variant = "single" | "three";

/** What counts as handled for each variant (status keys as Kopf names them). */
export function criteriaOf(variant: Variant): HandledCriteria {
  return {
    createKeys: variant === "three" ? ["create_fn_1", "create_fn_2", "create_fn_3"] : ["create_fn"],
    updatePrefix: "update_fn",
  };
}

/** Python Kopf with its defaults (`best`: uvloop, `--quiet`, no events, no scanning). */
export function kopfTarget(kopf: PythonKopf, variant: Variant, best = false): Target {
  const file = `${HERE}operators/${best ? "kopf_best" : `kopf_${variant}`}.py`;
  const extra = best ? ["--quiet"] : [];
  return {
    id: best ? "kopf-best" : "kopf",
    label: `Kopf ${kopf.version}${best ? " (best settings)" : ""}`,
    variant,
    criteria: criteriaOf(variant),
    command: [
      kopf.kopf,
      ...kopfRunArgs(file, { kubeconfig: "", namespaces: ["<ns>"], args: extra }),
    ],
    start: ({ plane, namespace, logFile }) =>
      runPythonKopf(kopf, file, {
        kubeconfig: plane.operator.kubeconfig,
        namespaces: [namespace],
        args: extra,
        logFile,
      }),
  };
}

/** The bare-client floor (bench/kopf/floor.ts) in its own Deno process. */
export function floorTarget(variant: Variant): Target {
  const criteria = criteriaOf(variant);
  const args = (path: string) => [
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    `${HERE}floor.ts`,
    "--path",
    path,
    "--create-keys",
    criteria.createKeys.join(","),
  ];
  return {
    id: "floor",
    label: "floor (bare client)",
    variant,
    criteria,
    command: [Deno.execPath(), ...args("<collection>")],
    start: ({ plane, collectionPath, logFile }) =>
      OperatorProcess.start({
        command: Deno.execPath(),
        args: args(collectionPath),
        cwd: ROOT,
        env: {
          BENCH_SERVER: plane.endpoint.server,
          BENCH_CA_FILE: plane.caFile,
          BENCH_CERT_FILE: plane.operator.certFile,
          BENCH_KEY_FILE: plane.operator.keyFile,
        },
        logFile,
      }),
  };
}
