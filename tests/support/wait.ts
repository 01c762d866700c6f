/**
 * Polling helpers for tests. Timeouts here are generous upper bounds so a hang fails the test
 * with a message; they never assert how fast something happened.
 *
 * @module
 */

/** Options for {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this many seconds (default 60). */
  timeout?: number;
  /** Poll every this many milliseconds (default 100). */
  interval?: number;
  /** Said in the error when the condition never holds. */
  message?: string;
}

/**
 * Polls `probe` until it returns a value other than `undefined`, `null` or `false`, and returns
 * that value. Errors thrown by the probe count as "not yet" and are reported on timeout.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<Exclude<T, undefined | null | false>> {
  const { timeout = 60, interval = 100, message = "condition" } = options;
  const deadline = Date.now() + timeout * 1000;
  let lastError: unknown;
  while (true) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) {
        return value as Exclude<T, undefined | null | false>;
      }
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeout}s waiting for ${message}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
