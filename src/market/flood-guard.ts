/**
 * Flood guard: a token bucket per peer. Messages beyond the rate are
 * throttled (dropped); a peer that keeps sending into an empty bucket is
 * reported for a ban. Pure: the caller passes the time.
 */

export interface FloodGuardConfig {
  /** Sustained messages per second allowed per peer. */
  ratePerS: number
  /** Messages allowed in a burst. */
  burst: number
  /** Throttled messages (without a refill in between) after which the verdict is 'ban'. */
  banAfter: number
}

export type FloodVerdict = 'ok' | 'throttle' | 'ban'

interface Bucket {
  tokens: number
  atMs: number
  strikes: number
}

/** Buckets kept at most (the oldest are forgotten first). */
const MAX_PEERS = 4096

export class FloodGuard {
  private readonly config: FloodGuardConfig
  private readonly buckets = new Map<string, Bucket>()

  constructor (config: FloodGuardConfig) {
    this.config = config
  }

  hit (peer: string, nowMs: number): FloodVerdict {
    const { ratePerS, burst, banAfter } = this.config
    let b = this.buckets.get(peer)
    if (b == null) {
      b = { tokens: burst, atMs: nowMs, strikes: 0 }
      this.buckets.set(peer, b)
      if (this.buckets.size > MAX_PEERS) this.buckets.delete(this.buckets.keys().next().value as string)
    }
    b.tokens = Math.min(burst, b.tokens + (nowMs - b.atMs) / 1000 * ratePerS)
    b.atMs = nowMs
    if (b.tokens >= 1) {
      b.tokens -= 1
      // a peer back under the rate starts over
      if (b.tokens >= burst / 2) b.strikes = 0
      return 'ok'
    }
    b.strikes++
    return b.strikes >= banAfter ? 'ban' : 'throttle'
  }

  forget (peer: string): void {
    this.buckets.delete(peer)
  }
}
