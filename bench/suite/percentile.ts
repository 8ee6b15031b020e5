// The p-th percentile of latencies sorted ascending (nearest rank): with few runs, p99 is the slowest run.
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
