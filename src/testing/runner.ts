/**
 * {@linkcode KopfRunner}: an operator running in the background of a test, through the real
 * `kopf run` command line in a child process.
 *
 * A child process rather than the same process: the handler files register into a fresh registry
 * every time (modules are imported once per process, so a second run in-process would register
 * nothing), the operator gets the same scoped permissions as in production, and a stuck operator
 * can always be killed. What a Python test gets from Kopf's `KopfRunner` thread — logs, the exit
 * code, the exception — comes from the process's output and status, and the exception from a line
 * the failing process writes for the runner (`reporting.ts`).
 *
 * @module
 */
import { parseExceptionLine, REPORT_VARIABLE } from "./reporting.ts";

/**
 * Options of {@linkcode KopfRunner}.
 *
 * @example
 * ```ts
 * import { KopfRunner } from "@kopf/kopf/testing";
 * const runner = new KopfRunner(["run", "-A", "handlers.ts"], {
 *   env: { KUBECONFIG: "/tmp/test-cluster/kubeconfig" },
 *   timeout: 10,
 *   echo: true,
 * });
 * ```
 */
export interface KopfRunnerOptions {
  /**
   * Seconds to wait for the operator to exit after SIGTERM before it is killed with SIGKILL
   * (default 30).
   */
  timeout?: number;
  /**
   * Throw a {@linkcode KopfRunnerError} when the runner is disposed (`await using`) and the
   * operator exited with a non-zero code or had to be killed (default `true`, as Kopf's
   * `reraise`). {@linkcode KopfRunner.stop} never throws.
   */
  reraise?: boolean;
  /** Start the operator in the constructor (default `true`); else call {@linkcode KopfRunner.start}. */
  autostart?: boolean;
  /** Extra environment variables for the operator (e.g. `KUBECONFIG`). */
  env?: Record<string, string>;
  /** Working directory of the operator process (default: this process's). */
  cwd?: string;
  /**
   * The command that runs the `kopf` command line, before the arguments. Default:
   * `deno run -A <this package's cli.ts>`; e.g. `["kopf"]` for an installed command.
   */
  command?: readonly string[];
  /** Also write the operator's output to this process's stderr as it comes (default `false`). */
  echo?: boolean;
  /** Called with every output line as it comes (e.g. to show it with a prefix). */
  onOutput?: (line: string, stream: "stdout" | "stderr") => void;
  /** Keep at most this many characters of output in memory (default 10,000,000). */
  maxOutputChars?: number;
}

/**
 * Options of {@linkcode KopfRunner.waitForOutput}.
 *
 * @example
 * ```ts
 * import { KopfRunner, type WaitForOutputOptions } from "@kopf/kopf/testing";
 *
 * const options: WaitForOutputOptions = { timeout: 30 };
 * await using runner = new KopfRunner(["run", "-A", "handlers.ts"]);
 * await runner.waitForOutput("Handler 'create_fn' succeeded", options);
 * ```
 */
export interface WaitForOutputOptions {
  /** Give up after this many seconds (default 60). */
  timeout?: number;
}

/**
 * The operator of a {@linkcode KopfRunner} failed: exited non-zero, or had to be killed. Thrown
 * when the runner is disposed (`await using`) unless `reraise` is `false`.
 *
 * @example
 * ```ts
 * import { KopfRunner, KopfRunnerError } from "@kopf/kopf/testing";
 * try {
 *   await using _runner = new KopfRunner(["run", "-A", "missing.ts"]);
 * } catch (error) {
 *   if (error instanceof KopfRunnerError) console.error(error.exitCode, error.output);
 * }
 * ```
 */
export class KopfRunnerError extends Error {
  /** The exit code (128 + signal number when it was killed). */
  readonly exitCode: number;
  /** Everything the operator wrote, stdout and stderr interleaved by line. */
  readonly output: string;

  /**
   * Creates the error.
   *
   * @param message What went wrong.
   * @param exitCode The operator's exit code.
   * @param output The operator's output.
   * @param cause The exception the operator reported, if it did (`error.cause`).
   */
  constructor(message: string, exitCode: number, output: string, cause?: Error) {
    super(message, cause ? { cause } : undefined);
    this.name = "KopfRunnerError";
    this.exitCode = exitCode;
    this.output = output;
  }
}

interface Waiter {
  pattern: RegExp;
  resolve: (line: string) => void;
}

const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
};

function defaultCommand(): string[] {
  return [Deno.execPath(), "run", "-A", new URL("../../cli.ts", import.meta.url).href];
}

function toPattern(pattern: string | RegExp): RegExp {
  if (pattern instanceof RegExp) return pattern;
  return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

/**
 * Runs an operator in the background — `kopf run` with the given arguments — collects what it
 * writes, and stops it with SIGTERM (then SIGKILL after the timeout). Like Kopf's
 * `kopf.testing.KopfRunner`, for a user's own `Deno.test`.
 *
 * The operator's log lines go to stderr; {@linkcode KopfRunner.output} has stdout and stderr
 * interleaved by line, which is what Kopf's `runner.output` shows. The test process needs
 * `--allow-run` (and `-A` or the permissions `kopf run` needs to read the kubeconfig).
 *
 * @example Scoped: the operator is stopped when the block ends
 * ```ts
 * import { KopfRunner } from "@kopf/kopf/testing";
 * import assert from "node:assert/strict";
 *
 * Deno.test("the operator handles an object", async () => {
 *   {
 *     await using runner = new KopfRunner(["run", "-n", "default", "--standalone", "handlers.ts"]);
 *     await runner.waitForOutput("Handler 'create_fn' succeeded", { timeout: 60 });
 *   }
 *   // Disposed: stopped, and it would have thrown if the operator had failed.
 * });
 * ```
 *
 * @example Explicit start and stop
 * ```ts
 * import { KopfRunner } from "@kopf/kopf/testing";
 * import assert from "node:assert/strict";
 *
 * const runner = new KopfRunner(["run", "-A", "handlers.ts"], { autostart: false });
 * runner.start();
 * // … create objects, wait for their status …
 * const code = await runner.stop();
 * assert.equal(code, 0);
 * assert.match(runner.output, /Creation is in progress/);
 * ```
 */
export class KopfRunner implements AsyncDisposable {
  /** The `kopf` arguments, e.g. `["run", "-n", "default", "handlers.ts"]`. */
  readonly args: readonly string[];
  readonly #options: KopfRunnerOptions;
  readonly #maxChars: number;
  #child?: Deno.ChildProcess;
  #status?: Promise<Deno.CommandStatus>;
  #pumps?: Promise<void>;
  #exit?: Deno.CommandStatus;
  #killed = false;
  #output = "";
  #runOutput = "";
  #stdout = "";
  #stderr = "";
  #waiters: Waiter[] = [];
  #stopping?: Promise<number>;
  #reported?: Error;

  /**
   * Prepares the runner and, unless `autostart` is `false`, starts the operator.
   *
   * @param args The `kopf` command line without the program name, e.g.
   *   `["run", "--standalone", "-n", "default", "handlers.ts"]`.
   * @param options How to run it.
   */
  constructor(args: readonly string[], options: KopfRunnerOptions = {}) {
    this.args = [...args];
    this.#options = options;
    this.#maxChars = options.maxOutputChars ?? 10_000_000;
    if (options.autostart ?? true) this.start();
  }

  /**
   * Starts the operator, unless it is running already. After {@linkcode KopfRunner.stop} it
   * starts again (e.g. to test what a restarted operator does); the output accumulates.
   *
   * @returns The runner itself.
   */
  start(): this {
    if (this.running) return this;
    const [program, ...prefix] = this.#options.command ?? defaultCommand();
    this.#exit = undefined;
    this.#killed = false;
    this.#stopping = undefined;
    this.#reported = undefined;
    this.#runOutput = "";
    const child = new Deno.Command(program, {
      args: [...prefix, ...this.args],
      env: { ...this.#options.env, [REPORT_VARIABLE]: "1" },
      cwd: this.#options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#status = child.status.then((status) => {
      this.#exit = status;
      return status;
    });
    this.#pumps = Promise.all([
      this.#pump(child.stdout, "stdout"),
      this.#pump(child.stderr, "stderr"),
    ]).then(() => {});
    return this;
  }

  async #pump(stream: ReadableStream<Uint8Array>, which: "stdout" | "stderr"): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of stream) {
        const text = partial + decoder.decode(chunk, { stream: true });
        const lines = text.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) this.#line(line, which);
      }
    } catch { /* the stream broke with the process: keep what arrived */ }
    partial += decoder.decode();
    if (partial) this.#line(partial, which);
  }

  #line(line: string, which: "stdout" | "stderr"): void {
    const reported = which === "stderr" ? parseExceptionLine(line) : undefined;
    if (reported) {
      // For the runner only: not the operator's output.
      this.#reported = reported;
      return;
    }
    if (this.#options.echo) Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
    const trim = (text: string) =>
      text.length > this.#maxChars ? text.slice(text.length - this.#maxChars) : text;
    this.#output = trim(this.#output + line + "\n");
    this.#runOutput = trim(this.#runOutput + line + "\n");
    if (which === "stdout") this.#stdout = trim(this.#stdout + line + "\n");
    else this.#stderr = trim(this.#stderr + line + "\n");
    this.#options.onOutput?.(line, which);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.pattern.test(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }

  /** Whether the operator process is running. */
  get running(): boolean {
    return this.#child !== undefined && this.#exit === undefined;
  }

  /** The process id of the running (or last) operator process, or `undefined` before the start. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Everything the operator wrote so far, stdout and stderr interleaved by line. */
  get output(): string {
    return this.#output;
  }

  /** What the operator wrote to stdout. */
  get stdout(): string {
    return this.#stdout;
  }

  /** What the operator wrote to stderr (its log lines). */
  get stderr(): string {
    return this.#stderr;
  }

  /**
   * The exit code of the last run, or `null` while running or before the start. A process ended
   * by a signal has 128 + the signal number (143 for SIGTERM, 137 for SIGKILL).
   */
  get exitCode(): number | null {
    const exit = this.#exit;
    if (!exit) return null;
    return exit.signal ? 128 + (SIGNAL_NUMBERS[exit.signal] ?? 0) : exit.code;
  }

  /** Whether the last run had to be killed with SIGKILL after the timeout. */
  get killed(): boolean {
    return this.#killed;
  }

  /**
   * The exception the operator failed with (Kopf's `runner.exception`), or `null` while it runs,
   * before the start, and after a clean exit (code 0). A failed operator reports its exception to
   * the runner: an `Error` with the operator's class `name` (e.g. `ActivityError`, `UsageError`
   * for bad input), `message` and `stack` — the same text, not the same object, since the
   * operator ran in another process. When it exited non-zero without a report (killed, crashed),
   * a {@linkcode KopfRunnerError} with the exit code and the output.
   *
   * @example
   * ```ts ignore
   * import { KopfRunner } from "jsr:@kopf/kopf/testing";
   * import assert from "node:assert/strict";
   * const runner = new KopfRunner(["run", "-A", "handlers.ts"], { reraise: false });
   * // … the operator runs …
   * await runner.stop();
   * assert.equal(runner.exitCode, 0);
   * assert.equal(runner.exception, null);
   * ```
   */
  get exception(): Error | null {
    const code = this.exitCode;
    if (code === null || code === 0) return null;
    if (this.#reported) return this.#reported;
    return new KopfRunnerError(
      this.#killed
        ? `The operator did not stop within ${this.#options.timeout ?? 30}s and was killed.`
        : `The operator exited with code ${code}.`,
      code,
      this.#output,
    );
  }

  /**
   * Resolves with the first output line of the current run (seen so far or later) that contains
   * `pattern` (a string) or matches it (a RegExp). Rejects when the timeout passes or the operator exits first, with
   * the last output in the message.
   *
   * @param pattern A substring or a regular expression.
   * @param options The timeout.
   * @returns The matching line.
   *
   * @example
   * ```ts
   * import { KopfRunner } from "@kopf/kopf/testing";
   * await using runner = new KopfRunner(["run", "-A", "handlers.ts"]);
   * const line = await runner.waitForOutput(/Handler '.+' succeeded/, { timeout: 30 });
   * ```
   */
  waitForOutput(pattern: string | RegExp, options: WaitForOutputOptions = {}): Promise<string> {
    const regexp = toPattern(pattern);
    const seen = this.#runOutput.split("\n").find((line) => regexp.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    const timeout = options.timeout ?? 60;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pattern: regexp,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const fail = (why: string) => {
        if (!this.#waiters.includes(waiter)) return;
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        clearTimeout(timer);
        reject(
          new Error(
            `no output line matching ${regexp} (${why}); the last output:\n` +
              this.#output.slice(-3000),
          ),
        );
      };
      this.#waiters.push(waiter);
      const timer = setTimeout(() => fail(`within ${timeout}s`), timeout * 1000);
      if (!this.#status) fail("the operator is not started");
      else this.#status.then(() => this.#pumps).then(() => fail("the operator exited"));
    });
  }

  /**
   * Waits until the operator exits by itself (without stopping it) and all its output is
   * collected; resolves with the exit code. For operators expected to fail, e.g. on bad input.
   *
   * @returns The exit code.
   *
   * @example
   * ```ts
   * import { KopfRunner } from "@kopf/kopf/testing";
   * const runner = new KopfRunner(["run", "-A", "missing.ts"]);
   * console.log(await runner.wait()); // 2
   * ```
   */
  async wait(): Promise<number> {
    if (!this.#status) throw new Error("the operator is not started");
    await this.#status;
    await this.#pumps;
    return this.exitCode ?? 0;
  }

  /**
   * Stops the operator: SIGTERM, then SIGKILL if it is still running after the timeout. Resolves
   * with the exit code once all its output is collected; never throws. Calling it again (or on
   * a runner that has exited) returns the same code.
   *
   * @returns The exit code (0 after a clean stop).
   */
  stop(): Promise<number> {
    if (!this.#child || !this.#status) return Promise.resolve(this.exitCode ?? 0);
    this.#stopping ??= this.#stop(this.#child, this.#status);
    return this.#stopping;
  }

  async #stop(child: Deno.ChildProcess, status: Promise<Deno.CommandStatus>): Promise<number> {
    const signal = (name: Deno.Signal) => {
      try {
        child.kill(name);
      } catch { /* it has exited */ }
    };
    if (this.#exit === undefined) signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const overdue = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.#exit === undefined) {
          this.#killed = true;
          signal("SIGKILL");
        }
        resolve();
      }, (this.#options.timeout ?? 30) * 1000);
    });
    await Promise.race([status, overdue]);
    clearTimeout(timer);
    await status;
    await this.#pumps;
    return this.exitCode ?? 0;
  }

  /**
   * Stops the operator (see {@linkcode KopfRunner.stop}); then, unless `reraise` is `false`,
   * throws a {@linkcode KopfRunnerError} if it exited non-zero or had to be killed.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    const code = await this.stop();
    if (this.#options.reraise === false || !this.#child) return;
    if (this.#killed) {
      throw new KopfRunnerError(
        `The operator did not stop within ${this.#options.timeout ?? 30}s after SIGTERM ` +
          `and was killed.`,
        code,
        this.#output,
      );
    }
    if (code !== 0) {
      const last = this.#output.trimEnd().split("\n").slice(-5).join("\n");
      throw new KopfRunnerError(
        `The operator exited with code ${code}:\n${last}`,
        code,
        this.#output,
        this.#reported,
      );
    }
  }
}
