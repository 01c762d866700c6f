/**
 * Replacing this process with another program: `execve(2)` through Deno's FFI. `kopf run` uses it
 * to become the sandboxed operator instead of staying resident next to it as a launcher.
 *
 * Nothing here logs: the caller decides what a failure is worth saying (the `kopf run` launcher
 * does not load LogTape).
 *
 * @module
 */

/** Why the process could not be replaced; the caller falls back to a child process. */
export interface ExecFailure {
  /** One line, for a debug message or a warning. */
  reason: string;
  /**
   * The failure is an ordinary condition (no FFI permission, an OS without `execve`) rather than
   * something broken (the C library cannot be opened, `execve` failed).
   */
  expected: boolean;
}

/** Options of {@linkcode replaceProcess}. */
export interface ExecOptions {
  /**
   * The new program's environment. Default: this process's environment exactly as the C library
   * holds it — all of it, whatever this process's `--allow-env` grants let it read (the new
   * program may need `HOME`, `DENO_DIR`, `PATH`… which its own flags scope again).
   */
  env?: Record<string, string>;
  /**
   * Variables to add to the inherited environment (when `env` is not given): set in this
   * process's C-library environment with `setenv(3)` just before `execv`, and removed again if
   * it fails. Unlike `Deno.env.set`, this needs no `--allow-env` grant, only the FFI one that
   * replacing the process needs anyway; `kopf run` hands the operator its kubeconfig this way.
   */
  addEnv?: Record<string, string>;
}

/** The C library to open, by OS, in the order tried. */
export function libcCandidates(os: typeof Deno.build.os = Deno.build.os): string[] {
  switch (os) {
    case "linux":
    case "android":
      // glibc, then musl (Alpine names it by architecture; a plain libc.so is musl's real file
      // but only a linker script on glibc, where it is never reached).
      return [
        "libc.so.6",
        `libc.musl-${Deno.build.arch}.so.1`,
        "libc.so",
      ];
    case "darwin":
      return ["/usr/lib/libSystem.B.dylib"];
    case "windows":
      return [];
    default:
      return ["libc.so.7", "libc.so"];
  }
}

/** `SIG_UNBLOCK` of `pthread_sigmask`, which differs between Linux and the BSDs. */
function sigUnblock(os: typeof Deno.build.os): number {
  return os === "linux" || os === "android" ? 1 : 2;
}

/** The symbol that returns the address of the calling thread's `errno`. */
function errnoSymbol(os: typeof Deno.build.os): string {
  if (os === "linux") return "__errno_location";
  if (os === "android") return "__errno";
  return "__error";
}

const SIGINT = 2;
const SIGTERM = 15;

const SYMBOLS = {
  execv: { parameters: ["buffer", "buffer"], result: "i32" },
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigaddset: { parameters: ["buffer", "i32"], result: "i32" },
  pthread_sigmask: { parameters: ["i32", "buffer", "pointer"], result: "i32" },
  setenv: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  unsetenv: { parameters: ["buffer"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

const encoder = new TextEncoder();

/** A NUL-terminated copy of `text`. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * `strings` as C's `argv` and `envp` are: a NULL-terminated array of pointers to NUL-terminated
 * strings. The strings live in the same buffer, after the pointers, so that holding the buffer
 * keeps them alive (a pointer does not keep its target from being collected).
 */
export function cStringArray(strings: string[]): Uint8Array<ArrayBuffer> {
  const encoded = strings.map(cString);
  const table = (strings.length + 1) * 8;
  const out = new Uint8Array(table + encoded.reduce((sum, s) => sum + s.length, 0));
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(out)));
  const pointers = new BigUint64Array(out.buffer, 0, strings.length + 1);
  let offset = table;
  encoded.forEach((s, i) => {
    out.set(s, offset);
    pointers[i] = base + BigInt(offset);
    offset += s.length;
  });
  return out;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  7: "E2BIG",
  8: "ENOEXEC",
  12: "ENOMEM",
  13: "EACCES",
};

interface OpenedLibc {
  lib: Libc;
  /** Reads the calling thread's `errno`, where the C library says where it is. */
  errno?: Deno.DynamicLibrary<Record<string, { parameters: []; result: "pointer" }>>;
}

function openLibc(os: typeof Deno.build.os): OpenedLibc | string {
  const errors: string[] = [];
  for (const path of libcCandidates(os)) {
    try {
      const lib = Deno.dlopen(path, SYMBOLS);
      let errno: OpenedLibc["errno"];
      try {
        errno = Deno.dlopen(path, { [errnoSymbol(os)]: { parameters: [], result: "pointer" } });
      } catch { /* reported without errno then */ }
      return { lib, errno };
    } catch (error) {
      errors.push(`${path}: ${(error as Error).message}`);
    }
  }
  return `cannot open the C library (${errors.join("; ")})`;
}

function readErrno(opened: OpenedLibc, os: typeof Deno.build.os): string {
  const pointer = opened.errno?.symbols[errnoSymbol(os)]();
  if (!pointer) return "";
  const code = new Deno.UnsafePointerView(pointer).getInt32();
  return `: ${ERRNO_NAMES[code] ?? `errno ${code}`}`;
}

/**
 * Replaces this process with `program` run with `args` (`argv[0]` is `program`): the same pid,
 * stdin/stdout/stderr and environment; every other descriptor Deno opens is close-on-exec. On
 * success it never returns. Otherwise it returns why, having changed nothing but the signal mask
 * of the calling thread: SIGINT and SIGTERM are unblocked first, because the mask survives
 * `execve` and a program that cannot receive them cannot be stopped gracefully.
 *
 * Needs the `ffi` permission (all of it: the C library is opened by name). Anything written to
 * stdout or stderr before must have been written synchronously, or it is lost.
 *
 * @example
 * ```ts
 * import { replaceProcess } from "./exec.ts";
 * const failure = replaceProcess(Deno.execPath(), ["run", "operator.ts"]);
 * // Still here: run it as a child process instead.
 * console.error(failure.reason);
 * ```
 */
export function replaceProcess(
  program: string,
  args: string[],
  options: ExecOptions = {},
): ExecFailure {
  const os = Deno.build.os;
  if (libcCandidates(os).length === 0) {
    return { reason: `${os} has no execve`, expected: true };
  }
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return { reason: "no --allow-ffi", expected: true };
  }
  const words = [
    program,
    ...args,
    ...Object.entries(options.env ?? {}).flat(),
    ...Object.entries(options.addEnv ?? {}).flat(),
  ];
  if (words.some((word) => word.includes("\0"))) {
    return { reason: "an argument or variable contains a NUL character", expected: false };
  }
  const opened = openLibc(os);
  if (typeof opened === "string") return { reason: opened, expected: false };
  const { symbols } = opened.lib;
  try {
    const set = new Uint8Array(128); // sigset_t is at most 128 bytes (glibc's)
    if (symbols.sigemptyset(set) === 0) {
      symbols.sigaddset(set, SIGINT);
      symbols.sigaddset(set, SIGTERM);
      symbols.pthread_sigmask(sigUnblock(os), set, null);
    }
    const path = cString(program);
    const argv = cStringArray([program, ...args]);
    const added = options.env ? [] : Object.entries(options.addEnv ?? {});
    if (options.env) {
      const envp = cStringArray(Object.entries(options.env).map(([k, v]) => `${k}=${v}`));
      symbols.execve(path, argv, envp);
    } else {
      for (const [name, value] of added) symbols.setenv(cString(name), cString(value), 1);
      // execv passes the C library's `environ`: the real environment, which Deno.env may not
      // show in full (--allow-env lists, --ignore-env).
      symbols.execv(path, argv);
    }
    // Read at once, before anything else can overwrite it.
    const error = readErrno(opened, os);
    for (const [name] of added) symbols.unsetenv(cString(name));
    return { reason: `execve ${program} failed${error}`, expected: false };
  } finally {
    opened.lib.close();
    opened.errno?.close();
  }
}
