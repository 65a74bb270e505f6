import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { silentLogger } from '../log.ts'
import {
  BOOTSTRAP_BACKOFF_MAX_MS, BOOTSTRAP_BACKOFF_MIN_MS, CONNECTOR_INTERVAL_MS, CONNECTOR_PARALLEL_DIALS,
  CANDIDATES_MAX_AGE_MS, CANDIDATES_MIN_AGE_MS, DIAL_TIMEOUT_MS, PEER_BACKOFF_MAX_MS, PEER_BACKOFF_MIN_MS, PRUNED_BACKOFF_MS,
  RANDOM_WALK_FIRST_INTERVAL_MS, RANDOM_WALK_INTERVAL_MS, RANDOM_WALK_JOIN_COUNT, RANDOM_WALK_MAX_INTERVAL_MS
} from './constants.ts'
import { DEFAULT_NEAREST, DEFAULT_RANDOM, planPrune } from './topology.ts'
import type { PeerConnector, PeerConnectorComponents, PeerConnectorInit } from './index.ts'
import type { Logger } from '../log.ts'
import type { AbortOptions, PeerId, PeerInfo, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

interface Backoff { until: number, delayMs: number }

/**
 * libp2p 3 has no auto-dialer. This keeps `target` connections open: it dials
 * the bootstrap addresses (retrying with backoff while they are unreachable),
 * then whatever peers the peer store knows (learned through the DHT and kept in
 * the datastore, so a restarted daemon rejoins without a bootstrap address), and
 * walks the DHT for more while it is short.
 */
export class DefaultPeerConnector implements PeerConnector, Startable {
  private readonly components: PeerConnectorComponents
  private readonly bootstrap: Multiaddr[]
  private readonly target: number
  private readonly highWater: number
  private readonly keepNearest: number
  private readonly keepRandom: number
  private readonly rttMs: (peer: PeerId) => number | undefined
  private readonly intervalMs: number
  private readonly log: Logger
  private readonly closestPeers: (key: Uint8Array, options: AbortOptions) => AsyncIterable<PeerInfo>
  private readonly backoff = new Map<string, Backoff>()
  private shutdown = new AbortController()
  private timer?: ReturnType<typeof setInterval>
  private maintaining = false
  private again = false
  private lastWalk = 0
  /** 1 s for the first walks after joining, then doubles after every walk: up to 15 s while walks find new peers, up to 5 min while they find nobody new. */
  private walkIntervalMs = RANDOM_WALK_FIRST_INTERVAL_MS
  /** Walks done since start (the join lookup included). */
  private walks = 0
  private walkTimer?: ReturnType<typeof setTimeout>
  /** Dial candidates read from the peer store (every read is a file per peer on disk). */
  private candidates: { atMs: number, peers: Array<{ id: PeerId, addresses: unknown[] }> } = { atMs: 0, peers: [] }
  /** A peer was discovered since the candidates were read. */
  private discovered = false

  constructor (components: PeerConnectorComponents, init: PeerConnectorInit) {
    this.components = components
    this.bootstrap = (init.bootstrap ?? []).map(a => multiaddr(a))
    this.target = init.targetConnections ?? 32
    this.highWater = init.highWaterConnections ?? this.target + Math.max(2, Math.floor(this.target / 4))
    this.keepNearest = init.keepNearest ?? DEFAULT_NEAREST
    this.keepRandom = init.keepRandom ?? DEFAULT_RANDOM
    this.rttMs = init.rttMs ?? (() => undefined)
    this.intervalMs = init.intervalMs ?? CONNECTOR_INTERVAL_MS
    this.log = init.log ?? silentLogger
    this.closestPeers = init.closestPeers ?? ((key, options) => this.components.peerRouting.getClosestPeers(key, options))
    this.schedule = this.schedule.bind(this)
    this.onDiscovery = this.onDiscovery.bind(this)
  }

  readonly [Symbol.toStringTag] = 'lepton:peer-connector'

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    this.walkIntervalMs = RANDOM_WALK_FIRST_INTERVAL_MS
    this.walks = 0
    this.components.events.addEventListener('peer:discovery', this.onDiscovery)
    this.components.events.addEventListener('peer:disconnect', this.schedule)
    this.timer = setInterval(this.schedule, this.intervalMs)
    this.timer.unref()
  }

  /** Runs after every service has started, so dials can use the DHT and identify. */
  afterStart (): void {
    for (const addr of this.bootstrap) {
      this.joinVia(addr).catch(err => { if (!this.shutdown.signal.aborted) this.log.warn('bootstrap failed', { addr: addr.toString(), err }) })
    }
    this.schedule()
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
    clearInterval(this.timer)
    clearTimeout(this.walkTimer)
    this.components.events.removeEventListener('peer:discovery', this.onDiscovery)
    this.components.events.removeEventListener('peer:disconnect', this.schedule)
  }

  connectedPeers (): PeerId[] {
    const peers = new Map<string, PeerId>()
    for (const conn of this.components.connectionManager.getConnections()) peers.set(conn.remotePeer.toString(), conn.remotePeer)
    return [...peers.values()]
  }

  private onDiscovery (): void {
    this.discovered = true
    this.schedule()
  }

  private schedule (): void {
    if (this.shutdown.signal.aborted) return
    if (this.maintaining) {
      this.again = true
      return
    }
    this.maintaining = true
    this.maintain()
      .catch(err => { this.log.debug('maintenance failed', { err }) })
      .finally(() => {
        this.maintaining = false
        if (this.again) {
          this.again = false
          setTimeout(this.schedule, 50).unref()
        }
      })
  }

  /** Dials a bootstrap address until it answers, then asks the DHT for our neighbours. */
  private async joinVia (addr: Multiaddr): Promise<void> {
    let delayMs = BOOTSTRAP_BACKOFF_MIN_MS
    const signal = this.shutdown.signal
    while (!signal.aborted) {
      try {
        const conn = await this.components.connectionManager.openConnection(addr, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)])
        })
        this.log.info('connected to bootstrap', { peer: conn.remotePeer.toString(), addr: addr.toString() })
        await this.walk(this.components.peerId.toMultihash().bytes)
        return
      } catch (err) {
        if (signal.aborted) return
        this.log.warn('bootstrap unreachable', { addr: addr.toString(), err, retryInS: delayMs / 1000 })
        await sleep(delayMs, undefined, { signal }).catch(() => {})
        delayMs = Math.min(delayMs * 2, BOOTSTRAP_BACKOFF_MAX_MS)
      }
    }
  }

  /** A DHT lookup; every peer it meets lands in the peer store, then we dial. */
  private async walk (key: Uint8Array): Promise<void> {
    this.lastWalk = Date.now()
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)])
    let found = 0
    let fresh = 0
    const connected = new Set(this.connectedPeers().map(p => p.toString()))
    try {
      for await (const peer of this.closestPeers(key, { signal })) {
        if (peer.id.equals(this.components.peerId)) continue
        found++
        // peers we are connected to are known already: no peer store merge (each takes the peer's lock)
        if (connected.has(peer.id.toString())) continue
        fresh++
        if (peer.multiaddrs.length > 0) await this.components.peerStore.merge(peer.id, { multiaddrs: peer.multiaddrs })
      }
    } catch (err) {
      this.log.debug('DHT lookup ended early', { err })
    }
    // a walk a second just after joining, then doubling waits: capped at 15 s after a walk that met someone new, at 5 min otherwise
    this.walks++
    this.walkIntervalMs = this.walks <= RANDOM_WALK_JOIN_COUNT
      ? RANDOM_WALK_FIRST_INTERVAL_MS
      : Math.min(this.walkIntervalMs * 2, fresh > 0 ? RANDOM_WALK_INTERVAL_MS : RANDOM_WALK_MAX_INTERVAL_MS)
    // checks run every intervalMs (2 s): come back when the next walk is due, not at the next check
    clearTimeout(this.walkTimer)
    if (!this.shutdown.signal.aborted) {
      this.walkTimer = setTimeout(this.schedule, this.walkIntervalMs + 10)
      this.walkTimer.unref()
    }
    if (fresh > 0) this.discovered = true
    this.log.debug('DHT lookup done', { found, fresh })
    this.schedule()
  }

  private async maintain (): Promise<void> {
    const peers = this.connectedPeers()
    if (peers.length > this.highWater) {
      await this.prune(peers)
      return
    }
    const connected = new Set(peers.map(p => p.toString()))
    if (connected.size >= this.target) return
    const now = Date.now()
    const self = this.components.peerId.toString()
    // the peer store is read again only when something was discovered (at most twice a second) or every 30 s
    const age = now - this.candidates.atMs
    if ((this.discovered && age > CANDIDATES_MIN_AGE_MS) || age > CANDIDATES_MAX_AGE_MS) {
      this.discovered = false
      this.candidates = { atMs: now, peers: (await this.components.peerStore.all()).map(p => ({ id: p.id, addresses: p.addresses })) }
    }
    const candidates = this.candidates.peers
      .filter(p => {
        const id = p.id.toString()
        return id !== self && !connected.has(id) && p.addresses.length > 0 && (this.backoff.get(id)?.until ?? 0) <= now
      })
      .slice(0, this.target - connected.size)
    for (let i = 0; i < candidates.length; i += CONNECTOR_PARALLEL_DIALS) {
      await Promise.all(candidates.slice(i, i + CONNECTOR_PARALLEL_DIALS).map(async (peer) => await this.dial(peer.id)))
    }
    if (connected.size > 0 && this.connectedPeers().length < this.target && now - this.lastWalk > this.walkIntervalMs) {
      await this.walk(randomBytes(32))
    }
  }

  /** Over the high-water mark: back down to the target, measured links deciding who goes. */
  private async prune (peers: PeerId[]): Promise<void> {
    const byId = new Map(peers.map(p => [p.toString(), p]))
    const plan = planPrune(peers.map(p => ({ peerId: p.toString(), rttMs: this.rttMs(p) })),
      { nearest: this.keepNearest, random: this.keepRandom, target: this.target }, Math.random)
    for (const id of plan.prune) {
      const peer = byId.get(id)
      if (peer == null) continue
      // do not dial it straight back in
      this.backoff.set(id, { until: Date.now() + PRUNED_BACKOFF_MS, delayMs: PEER_BACKOFF_MIN_MS })
      await this.components.connectionManager.closeConnections(peer).catch(() => {})
    }
    if (plan.prune.length > 0) this.log.debug('pruned connections', { count: plan.prune.length, kept: plan.keep.length })
  }

  private async dial (peer: PeerId): Promise<void> {
    const id = peer.toString()
    try {
      await this.components.connectionManager.openConnection(peer, {
        signal: AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)])
      })
      this.backoff.delete(id)
      this.log.info('connected', { peer: id })
    } catch (err) {
      const previous = this.backoff.get(id)
      const delayMs = Math.min(previous == null ? PEER_BACKOFF_MIN_MS : previous.delayMs * 2, PEER_BACKOFF_MAX_MS)
      this.backoff.set(id, { until: Date.now() + delayMs, delayMs })
      this.log.debug('dial failed', { peer: id, err, retryInS: delayMs / 1000 })
    }
  }
}
