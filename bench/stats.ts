/** Latency summary in milliseconds. */
export interface Latency {
  n: number
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

export function summarize(values: ArrayLike<number>): Latency {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  }
}

export function median(values: number[]): number {
  const s = Float64Array.from(values).sort()
  const mid = s.length >> 1
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** A ratio rounded for display, or NaN when it cannot be computed. */
export const ratio = (project: number, baseline: number): number => (baseline > 0 && Number.isFinite(project) ? project / baseline : NaN)

/** Growable sample buffer: recording a latency must not allocate per request. */
export class Samples {
  private buf = new Float64Array(1 << 16)
  length = 0

  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2)
      next.set(this.buf)
      this.buf = next
    }
    this.buf[this.length++] = v
  }

  values(): Float64Array {
    return this.buf.subarray(0, this.length)
  }
}
