import { RTT_EWMA_ALPHA, RTT_WINDOW } from './constants.ts'

export interface RttStats {
  /** Filtered estimate: EWMA over the median of the last samples. */
  rttMs: number
  /**
   * Smoothed absolute difference between consecutive samples (RFC 3550's
   * interarrival jitter), starting from half the first sample as RFC 6298
   * starts RTTVAR: a link is noisy until its samples show otherwise.
   */
  jitterMs: number
  /** Share of probes lost, smoothed over roughly the last 20. */
  lossRate: number
  lastMs: number
  samples: number
}

/**
 * Turns raw RTT samples into a stable estimate. A median window throws out
 * single outliers (a GC pause, a busy event loop); the EWMA on top smooths what
 * is left. Pure: no clock, no I/O.
 */
export class RttEstimator {
  private readonly window: number[] = []
  private readonly windowSize: number
  private readonly alpha: number
  private smoothed?: number
  private jitter = 0
  private loss = 0
  private last?: number
  private count = 0

  constructor (windowSize = RTT_WINDOW, alpha = RTT_EWMA_ALPHA) {
    this.windowSize = windowSize
    this.alpha = alpha
  }

  addSample (rttMs: number): void {
    if (!Number.isFinite(rttMs) || rttMs < 0) return
    if (this.last !== undefined) this.jitter += (Math.abs(rttMs - this.last) - this.jitter) / 8
    else this.jitter = rttMs / 2
    this.last = rttMs
    this.count++
    this.loss -= this.loss / 20
    this.window.push(rttMs)
    if (this.window.length > this.windowSize) this.window.shift()
    const median = medianOf(this.window)
    this.smoothed = this.smoothed === undefined ? median : this.smoothed + this.alpha * (median - this.smoothed)
  }

  addLoss (): void {
    this.loss += (1 - this.loss) / 20
  }

  stats (): RttStats | undefined {
    if (this.smoothed === undefined || this.last === undefined) return undefined
    return { rttMs: this.smoothed, jitterMs: this.jitter, lossRate: this.loss, lastMs: this.last, samples: this.count }
  }
}

export function medianOf (values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
