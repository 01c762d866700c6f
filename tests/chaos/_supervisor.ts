/**
 * The operator under test, as the chaos suite runs it: the real CLI (`deno run -A cli.ts run
 * --standalone …`) on a fixture, with the journal granted (`--allow-write`, `--allow-env`). The
 * supervisor keeps every run (pid, start, kill, exit), kills with SIGKILL on demand, restarts at
 * once, and notices a run that ends on its own (an unexpected exit, restarted when asked to).
 *
 * `kopf run` replaces itself with the operator (execve), so a run's pid is the pid that the
 * handlers journal, and a SIGKILL to it leaves no launcher behind.
 *
 * @module
 */
import { OperatorProcess } from "../support/operator_process.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;

/** One operator process, from its start to its end. */
export interface OperatorRun {
  pid: number;
  /** When it was spawned (ms since the epoch). */
  startedAt: number;
  /** When the suite sent it SIGKILL. */
  killedAt?: number;
  /** When the suite asked it to stop gracefully (SIGTERM). */
  stoppedAt?: number;
  /** When it ended. */
  endedAt?: number;
  /** Its exit, once it ended. */
  status?: Deno.CommandStatus;
  /** It ended without being killed or stopped by the suite. */
  unexpected: boolean;
  /** The process, for its output. */
  process: OperatorProcess;
}

/** How to run the operator. */
export interface SupervisorOptions {
  /** The handler file (absolute path). */
  fixture: string;
  namespace: string;
  kubeconfig: string;
  /** The journal file the handlers append to. */
  journal: string;
  /** Where each run's output goes (`operator-<n>.log`). */
  logDir: string;
  /** Start a new run when one ends on its own (it still counts as an unexpected exit). */
  restartOnExit?: boolean;
}

/** Starts, kills, restarts and stops the operator under test; remembers every run. */
export class OperatorSupervisor {
  /** Every run, in start order. */
  readonly runs: OperatorRun[] = [];
  readonly #options: SupervisorOptions;
  #closing = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  /** The latest run. */
  get current(): OperatorRun {
    const run = this.runs.at(-1);
    if (!run) throw new Error("the operator was never started");
    return run;
  }

  /** Runs that the suite killed. */
  get kills(): number {
    return this.runs.filter((r) => r.killedAt !== undefined).length;
  }

  /** Runs that ended without being killed or stopped. */
  get unexpectedExits(): number {
    return this.runs.filter((r) => r.unexpected).length;
  }

  /** The run with this pid. */
  runOf(pid: number): OperatorRun | undefined {
    return this.runs.find((r) => r.pid === pid);
  }

  /** The output of every run, in order. */
  output(): string {
    return this.runs.map((r) => r.process.output()).join("");
  }

  /** Starts a new run. */
  start(): OperatorRun {
    const o = this.#options;
    const process = OperatorProcess.start({
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        CLI,
        "run",
        "--standalone",
        "-n",
        o.namespace,
        "--kubeconfig",
        o.kubeconfig,
        "--log-format",
        "json",
        // KOPF_CHAOS_VERBOSE=1: the operator's debug lines too, to follow a failure.
        ...(Deno.env.get("KOPF_CHAOS_VERBOSE") ? ["-v"] : []),
        "--allow-env=CHAOS_JOURNAL",
        `--allow-write=${o.journal}`,
        o.fixture,
      ],
      env: { CHAOS_JOURNAL: o.journal, NO_COLOR: "1" },
      cwd: ROOT,
      logFile: `${o.logDir}/operator-${this.runs.length + 1}.log`,
    });
    const run: OperatorRun = {
      pid: process.pid,
      startedAt: process.startedAt,
      unexpected: false,
      process,
    };
    this.runs.push(run);
    process.status.then((status) => {
      run.endedAt = Date.now();
      run.status = status;
      if (run.killedAt === undefined && run.stoppedAt === undefined) {
        run.unexpected = true;
        if (o.restartOnExit && !this.#closing) this.start();
      }
    });
    return run;
  }

  /** SIGKILLs the current run and waits until it is gone; returns the kill time. */
  async kill(): Promise<number> {
    const run = this.current;
    const at = Date.now();
    if (run.endedAt === undefined) {
      run.killedAt = at;
      run.process.kill("SIGKILL");
    }
    await run.process.status;
    return at;
  }

  /** Whether the current run is still running. */
  get running(): boolean {
    return this.runs.length > 0 && this.current.endedAt === undefined;
  }

  /**
   * Stops the current run gracefully (SIGTERM, SIGKILL after `graceSeconds`) and starts no more;
   * resolves with its exit status.
   */
  async stop(graceSeconds = 30): Promise<Deno.CommandStatus> {
    this.#closing = true;
    const run = this.current;
    if (run.endedAt === undefined) run.stoppedAt = Date.now();
    return await run.process.stop(graceSeconds);
  }
}
