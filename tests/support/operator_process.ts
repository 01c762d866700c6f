/**
 * An operator running as a child process for a test or the benchmark: its output goes to a log
 * file and to a bounded in-memory tail that tests can wait on; stopping it sends SIGTERM and, if it
 * lingers, SIGKILL.
 *
 * @module
 */

/** How to start an operator process. */
export interface OperatorProcessOptions {
  /** The program and its arguments. */
  command: string;
  args: string[];
  /** Extra environment (added to this process's environment). */
  env?: Record<string, string>;
  cwd?: string;
  /** Write stdout and stderr here as well (created or truncated). */
  logFile?: string;
  /** Keep at most this many characters of output in memory (default 1,000,000). */
  tailChars?: number;
}

interface LogWaiter {
  pattern: RegExp;
  resolve: (line: string) => void;
}

/**
 * A started operator process.
 *
 * @example
 * ```ts ignore
 * const op = OperatorProcess.start({ command: "kopf", args: ["run", "--standalone", "op.py"] });
 * await op.waitForLog(/Handler 'create_fn' succeeded/, 60);
 * await op.stop();
 * ```
 */
export class OperatorProcess {
  /** Wall-clock milliseconds when the process was spawned. */
  readonly startedAt: number;
  readonly pid: number;
  /** Resolves with the exit status (also when stopped). */
  readonly status: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #tailChars: number;
  #tail = "";
  #waiters: LogWaiter[] = [];
  #pumps: Promise<void>;

  private constructor(options: OperatorProcessOptions) {
    this.#tailChars = options.tailChars ?? 1_000_000;
    this.startedAt = Date.now();
    this.#child = new Deno.Command(options.command, {
      args: options.args,
      env: options.env,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.status = this.#child.status;
    const file = options.logFile
      ? Deno.openSync(options.logFile, { write: true, create: true, truncate: true })
      : undefined;
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      let partial = "";
      for await (const chunk of stream) {
        file?.writeSync(chunk);
        const text = partial + decoder.decode(chunk, { stream: true });
        const lines = text.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) this.#line(line);
      }
      if (partial) this.#line(partial);
    };
    this.#pumps = Promise.all([pump(this.#child.stdout), pump(this.#child.stderr)]).then(
      () => file?.close(),
    );
  }

  /** Starts the process. */
  static start(options: OperatorProcessOptions): OperatorProcess {
    return new OperatorProcess(options);
  }

  #line(line: string): void {
    this.#tail += line + "\n";
    if (this.#tail.length > this.#tailChars) this.#tail = this.#tail.slice(-this.#tailChars);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pattern.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** The last part of the output (stdout and stderr interleaved by line). */
  output(): string {
    return this.#tail;
  }

  /**
   * Resolves with the first line (seen so far or later) that matches `pattern`; rejects after
   * `timeoutSeconds` or when the process exits first.
   */
  waitForLog(pattern: RegExp, timeoutSeconds = 60): Promise<string> {
    const seen = this.#tail.split("\n").find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const waiter: LogWaiter = {
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const fail = (why: string) => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        clearTimeout(timer);
        reject(
          new Error(
            `no log line matching ${pattern} (${why}); last output:\n${this.#tail.slice(-3000)}`,
          ),
        );
      };
      timer = setTimeout(() => fail(`within ${timeoutSeconds}s`), timeoutSeconds * 1000);
      this.#waiters.push(waiter);
      this.status.then(() => this.#pumps).then(() => {
        if (this.#waiters.includes(waiter)) fail("the process exited");
      });
    });
  }

  /** Sends a signal (ignored if the process has already exited). */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /**
   * SIGTERM, then SIGKILL if still running after `graceSeconds`; resolves with the exit status
   * once the output is drained.
   */
  async stop(graceSeconds = 20): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.kill("SIGKILL");
        resolve();
      }, graceSeconds * 1000);
    });
    await Promise.race([this.status, killed]);
    clearTimeout(timer);
    const status = await this.status;
    await this.#pumps;
    return status;
  }
}
