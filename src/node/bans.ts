import type { PeerId } from '@libp2p/interface'

export interface PeerBan {
  peerId: string
  untilMs: number
  reason: string
}

/**
 * Peers we refuse to talk to for a while (e.g. one that served a forged block).
 * The node's connection gater consults it on every dial and every inbound
 * connection, so a banned peer is neither redialled nor let back in.
 */
export class PeerBans {
  private readonly bans = new Map<string, PeerBan>()
  private readonly now: () => number

  constructor (now: () => number = Date.now) {
    this.now = now
  }

  ban (peer: PeerId | string, durationMs: number, reason: string): void {
    const peerId = peer.toString()
    this.bans.set(peerId, { peerId, untilMs: this.now() + durationMs, reason })
  }

  isBanned (peer: PeerId | string): boolean {
    const ban = this.bans.get(peer.toString())
    if (ban == null) return false
    if (ban.untilMs > this.now()) return true
    this.bans.delete(ban.peerId)
    return false
  }

  list (): PeerBan[] {
    return [...this.bans.values()].filter(b => this.isBanned(b.peerId))
  }
}
