/**
 * Memory and CPU of a process tree, read from Linux `/proc` (the operator under test and any child
 * it spawns, so a launcher that forks the real operator — `kopf run` with `KOPF_LAUNCHER=spawn` —
 * is measured whole).
 *
 * @module
 */

/** One reading of a process tree. */
export interface ProcSample {
  /** Milliseconds since the epoch when the sample was taken. */
  at: number;
  /** Sum of `VmRSS` over the live processes of the tree, in bytes. */
  rssBytes: number;
  /** Sum of `VmHWM` (each process's own peak RSS) over the live processes, in bytes. */
  hwmBytes: number;
  /** User + system CPU seconds of the tree, including children it has already reaped. */
  cpuSeconds: number;
  /** Pids seen in the tree. */
  pids: number[];
  /** Each live process of the tree: its command name and its own RSS and peak RSS. */
  processes: { pid: number; name: string; rssBytes: number; hwmBytes: number }[];
}

/** The fields of `/proc/<pid>/stat` that the benchmark needs. */
export interface StatFields {
  ppid: number;
  /** In clock ticks. */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ; 100 on every Linux ABI Deno runs on). */
export const CLOCK_TICKS = 100;

/**
 * Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses, so the
 * fields are counted from the last `)`.
 */
export function parseStat(text: string): StatFields {
  const rest = text.slice(text.lastIndexOf(")") + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); field k is rest[k - 3].
  const field = (k: number): number => Number(rest[k - 3]);
  return {
    ppid: field(4),
    utime: field(14),
    stime: field(15),
    cutime: field(16),
    cstime: field(17),
  };
}

/** Reads a `kB` line such as `VmRSS:  1234 kB` from `/proc/<pid>/status`, in bytes (0 if absent). */
export function parseStatusKb(text: string, key: string): number {
  const match = text.match(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, "m"));
  return match ? Number(match[1]) * 1024 : 0;
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/** Pids of `root` and all its live descendants (scans `/proc/<pid>/stat` for parent links). */
export async function processTree(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await readOrUndefined(`/proc/${entry.name}/stat`);
    if (stat) parents.set(Number(entry.name), parseStat(stat).ppid);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/** Samples the memory and CPU of `root`'s process tree; `undefined` once `root` has exited. */
export async function sampleTree(root: number): Promise<ProcSample | undefined> {
  const at = Date.now();
  const pids = await processTree(root);
  let rssBytes = 0, hwmBytes = 0, ticks = 0, seenRoot = false;
  const processes: ProcSample["processes"] = [];
  for (const pid of pids) {
    const [stat, status] = await Promise.all([
      readOrUndefined(`/proc/${pid}/stat`),
      readOrUndefined(`/proc/${pid}/status`),
    ]);
    if (!stat || !status) continue;
    const s = parseStat(stat);
    ticks += s.utime + s.stime;
    // Reaped children are folded into the root's counters; counting them for every process
    // would count grandchildren twice.
    if (pid === root) {
      seenRoot = true;
      ticks += s.cutime + s.cstime;
    }
    const rss = parseStatusKb(status, "VmRSS"), hwm = parseStatusKb(status, "VmHWM");
    rssBytes += rss;
    hwmBytes += hwm;
    const name = status.match(/^Name:\s*(.*)$/m)?.[1] ?? "?";
    processes.push({ pid, name, rssBytes: rss, hwmBytes: hwm });
  }
  if (!seenRoot) return undefined;
  return { at, rssBytes, hwmBytes, cpuSeconds: ticks / CLOCK_TICKS, pids, processes };
}

/**
 * Samples a process tree on an interval until stopped, keeping every sample (a 1 s interval over
 * an hour is a few thousand small records).
 *
 * @example
 * ```ts
 * const sampler = new TreeSampler(pid, 1000);
 * sampler.start();
 * // … run the scenario …
 * const last = await sampler.sampleNow();
 * sampler.stop();
 * ```
 */
export class TreeSampler {
  readonly samples: ProcSample[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;

  constructor(readonly pid: number, readonly intervalMs = 1000) {}

  /** Starts sampling in the background. */
  start(): void {
    this.#timer ??= setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      this.sampleNow().finally(() => this.#busy = false);
    }, this.intervalMs);
  }

  /** Takes one sample right now (also recorded); `undefined` when the process has gone. */
  async sampleNow(): Promise<ProcSample | undefined> {
    const sample = await sampleTree(this.pid);
    if (sample) this.samples.push(sample);
    return sample;
  }

  /** Stops background sampling. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The highest RSS seen: the larger of the sampled RSS sums and the kernel's own peaks. */
  peakRssBytes(): number {
    let peak = 0;
    for (const s of this.samples) peak = Math.max(peak, s.rssBytes, s.hwmBytes);
    return peak;
  }

  /** The last sample at or before `at` (for per-phase CPU and steady RSS). */
  at(at: number): ProcSample | undefined {
    let found: ProcSample | undefined;
    for (const s of this.samples) {
      if (s.at <= at) found = s;
      else break;
    }
    return found;
  }
}
