/**
 * Which connections to keep when there are too many: the k peers with the
 * lowest measured RTT (the paths worth routing over), a few random others (DHT
 * health, and a chance to discover a better path), and every peer not measured
 * yet (too young to judge). The rest go, slowest first. Pure: the caller passes
 * the randomness.
 */

export interface TopologyConfig {
  /** Lowest-RTT peers always kept. @default 8 */
  nearest: number
  /** Other peers kept at random. @default 4 */
  random: number
  /** Connections wanted after pruning. */
  target: number
}

export const DEFAULT_NEAREST = 8
export const DEFAULT_RANDOM = 4

export interface ConnectedPeer {
  peerId: string
  /** Filtered RTT; undefined until measured. */
  rttMs: number | undefined
}

export interface PrunePlan {
  keep: string[]
  /** Peers to disconnect, slowest first. */
  prune: string[]
}

export function planPrune (peers: ConnectedPeer[], config: TopologyConfig, random: () => number): PrunePlan {
  if (peers.length <= config.target) return { keep: peers.map(p => p.peerId), prune: [] }
  const measured = peers.filter(p => p.rttMs != null).sort((a, b) => (a.rttMs as number) - (b.rttMs as number) || a.peerId.localeCompare(b.peerId))
  const keep = new Set(peers.filter(p => p.rttMs == null).map(p => p.peerId))
  for (const p of measured.slice(0, config.nearest)) keep.add(p.peerId)
  // a seeded-by-caller shuffle of the rest picks the random ones
  const rest = measured.filter(p => !keep.has(p.peerId))
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const tmp = rest[i] as ConnectedPeer
    rest[i] = rest[j] as ConnectedPeer
    rest[j] = tmp
  }
  for (const p of rest.slice(0, config.random)) keep.add(p.peerId)
  // fill up to the target with the fastest of what is left; prune the others, slowest first
  const leftover = measured.filter(p => !keep.has(p.peerId))
  while (keep.size < config.target && leftover.length > 0) keep.add((leftover.shift() as ConnectedPeer).peerId)
  return { keep: [...keep], prune: leftover.reverse().map(p => p.peerId) }
}
