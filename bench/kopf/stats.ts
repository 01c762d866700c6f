/**
 * Small statistics for the benchmark: percentiles and latency summaries.
 *
 * @module
 */

/** The nearest-rank percentile (`p` in 0–100) of unsorted values; `NaN` for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Latency figures of one phase, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Summarizes latencies (milliseconds); `null` when there are none. */
export function summarizeLatencies(values: number[]): LatencySummary | null {
  if (values.length === 0) return null;
  return {
    count: values.length,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

/**
 * Latencies from `start` to `end` for every key present in both (`end` may be missing for objects
 * never handled; those are not counted here but in the phase's handled count).
 */
export function latencies(start: Map<string, number>, end: Map<string, number>): number[] {
  const out: number[] = [];
  for (const [key, t0] of start) {
    const t1 = end.get(key);
    if (t1 !== undefined) out.push(t1 - t0);
  }
  return out;
}
