/**
 * The route table: feeds RTT samples into our Vivaldi coordinate, gossips the
 * coordinate and our measured links (when a link changes beyond its noise, or
 * every 30 s; never per measurement), keeps what others gossip for 75 s, and
 * chooses a path per destination with the pure
 * path selector (measured links first, Vivaldi estimates where nothing is
 * measured). `routeTo` tells the forwarder which relay to use.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { silentLogger } from '../log.ts'
import { announcementChanged, decodeAnnouncement, encodeAnnouncement } from './announcement.ts'
import { ROUTING_GOSSIP_INTERVAL_MS, ROUTING_MAX_CLOCK_SKEW_MS, ROUTING_MAX_LINKS, ROUTING_REFRESH_MS, ROUTING_STALE_MS, ROUTING_TOPIC, VIVALDI_UPDATE_INTERVAL_MS } from './constants.ts'
import { linkTable, selectRoutes } from './path-selection.ts'
import { DEFAULT_VIVALDI_CONFIG, VivaldiClient, distanceMs } from './vivaldi.ts'
import type { Announcement } from './announcement.ts'
import type { Link, PathSelectionConfig, Route } from './path-selection.ts'
import type { Coordinate } from './vivaldi.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId, Stream } from '@libp2p/interface'

export interface RouterInit {
  /** Milliseconds between checks whether to announce (on a material change, see announcementChanged). @default 10000 */
  gossipIntervalMs?: number
  /** Milliseconds after which an unchanged state is announced again. @default 30000 */
  gossipRefreshMs?: number
  /** Milliseconds between Vivaldi updates from RTT samples. @default 1000 */
  updateIntervalMs?: number
  /** Path selection tuning. @default { maxHops: 1 } (the forwarder follows one-hop detours only) */
  pathSelection?: Partial<PathSelectionConfig>
  log?: Logger
  now?(): number
}

interface Heard {
  announcement: Announcement
  receivedAtMs: number
}

export class Router {
  private readonly node: LeptonNode
  private readonly vivaldi = new VivaldiClient()
  private readonly heard = new Map<string, Heard>()
  private current = new Map<string, Route>()
  private readonly init: RouterInit
  private readonly log: Logger
  private readonly now: () => number
  private timers: Array<ReturnType<typeof setInterval>> = []
  /** What we last announced (and published without error). */
  private announced?: Announcement
  /** Announcements published and skipped as unchanged. */
  readonly announcements = { sent: 0, skipped: 0 }

  constructor (node: LeptonNode, init: RouterInit = {}) {
    this.node = node
    this.init = init
    this.log = init.log ?? silentLogger
    this.now = init.now ?? Date.now
    this.onMessage = this.onMessage.bind(this)
  }

  start (): void {
    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.set(ROUTING_TOPIC, (_peer, msg) => this.validate(msg))
    pubsub.subscribe(ROUTING_TOPIC)
    pubsub.addEventListener('message', this.onMessage)
    this.timers.push(setInterval(() => {
      this.feedVivaldi()
      try {
        this.routes() // keeps the table fresh for routeTo()
      } catch (err) {
        this.log.debug('route computation failed', { err })
      }
    }, this.init.updateIntervalMs ?? VIVALDI_UPDATE_INTERVAL_MS))
    this.timers.push(setInterval(() => { this.announce() }, this.init.gossipIntervalMs ?? ROUTING_GOSSIP_INTERVAL_MS))
    for (const t of this.timers) t.unref()
  }

  stop (): void {
    for (const t of this.timers) clearInterval(t)
    this.timers = []
    const pubsub = this.node.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.topicValidators.delete(ROUTING_TOPIC)
    try {
      pubsub.unsubscribe(ROUTING_TOPIC)
    } catch {}
  }

  coordinate (): Coordinate {
    return this.vivaldi.coordinate()
  }

  /** Gossip validation: size, schema, ranges and freshness before anyone sees it. */
  private validate (msg: Message): TopicValidatorResult {
    if (msg.type !== 'signed') return TopicValidatorResult.Reject
    let a: Announcement
    try {
      a = decodeAnnouncement(msg.data, DEFAULT_VIVALDI_CONFIG.dimensionality)
    } catch {
      return TopicValidatorResult.Reject
    }
    if (Math.abs(a.timestampMs - this.now()) > ROUTING_MAX_CLOCK_SKEW_MS) return TopicValidatorResult.Ignore
    const previous = this.heard.get(msg.from.toString())
    if (previous != null && previous.announcement.timestampMs >= a.timestampMs) return TopicValidatorResult.Ignore // replay or reorder
    return TopicValidatorResult.Accept
  }

  private onMessage (evt: CustomEvent<Message>): void {
    const msg = evt.detail
    if (msg.topic !== ROUTING_TOPIC || msg.type !== 'signed') return
    try {
      const announcement = decodeAnnouncement(msg.data, DEFAULT_VIVALDI_CONFIG.dimensionality)
      this.heard.set(msg.from.toString(), { announcement, receivedAtMs: this.now() })
    } catch {}
  }

  private fresh (peerId: string): Announcement | undefined {
    const h = this.heard.get(peerId)
    if (h == null) return undefined
    if (this.now() - h.receivedAtMs > ROUTING_STALE_MS) {
      this.heard.delete(peerId)
      return undefined
    }
    return h.announcement
  }

  /** One RTT sample per connected peer whose coordinate we know moves our coordinate. */
  private feedVivaldi (): void {
    for (const peer of this.node.getPeers()) {
      const remote = this.fresh(peer.toString())?.coordinate
      const sample = this.node.services.rtt.stats(peer)?.lastMs
      if (remote == null || sample == null || sample <= 0) continue
      try {
        this.vivaldi.update(peer.toString(), remote, sample)
      } catch (err) {
        this.log.debug('vivaldi update rejected', { peer: peer.toString(), err })
      }
    }
  }

  private measuredLinks (): Array<{ peerId: string, rttMs: number, jitterMs: number }> {
    const out: Array<{ peerId: string, rttMs: number, jitterMs: number }> = []
    for (const peer of this.node.getPeers()) {
      const stats = this.node.services.rtt.stats(peer)
      if (stats != null) out.push({ peerId: peer.toString(), rttMs: stats.rttMs, jitterMs: stats.jitterMs })
    }
    return out.sort((a, b) => a.rttMs - b.rttMs).slice(0, ROUTING_MAX_LINKS)
  }

  private announce (): void {
    const next: Announcement = { coordinate: this.vivaldi.coordinate(), links: this.measuredLinks(), timestampMs: this.now() }
    const last = this.announced
    // refresh half an interval early: timers drift, and a refresh one interval late is a third later
    const refreshMs = (this.init.gossipRefreshMs ?? ROUTING_REFRESH_MS) - (this.init.gossipIntervalMs ?? ROUTING_GOSSIP_INTERVAL_MS) / 2
    if (last != null && next.timestampMs - last.timestampMs < refreshMs && !announcementChanged(last, next)) {
      this.announcements.skipped++
      return
    }
    const data = encodeAnnouncement(next, peerIdFromString)
    this.node.services.pubsub.publish(ROUTING_TOPIC, data).then(() => {
      this.announced = next
      this.announcements.sent++
    }, (err: Error) => {
      // before the topic mesh forms there is nobody to publish to: not worth a log line
      if (err.name !== 'PublishError' && !err.message.includes('NoPeersSubscribedToTopic')) this.log.debug('routing gossip failed', { err })
    })
  }

  /**
   * The routing module's one entry point for traffic: a stream to `peer` along
   * the chosen route. A one-hop detour goes through the forwarder (circuit
   * relay) when the node has one; anything else, or a relay that fails, goes
   * direct. Two-hop detours go direct too: relay v2 cannot chain.
   */
  async openStream (peer: PeerId, protocol: string, signal?: AbortSignal): Promise<Stream> {
    const path = this.routeTo(peer.toString())?.path
    const forwarder = this.node.services.forwarder
    if (forwarder != null && path?.length === 2) {
      try {
        return await forwarder.openStream(peer, protocol, { via: peerIdFromString(path[0] as string), signal })
      } catch (err) {
        if (signal?.aborted === true) throw err
        this.log.debug('detour failed; going direct', { peer: peer.toString(), via: path[0], err })
      }
    }
    return await this.node.dialProtocol(peer, protocol, { signal })
  }

  /** The route last chosen to `peerId` (refreshed every update interval), if any. */
  routeTo (peerId: string): Route | undefined {
    return this.current.get(peerId)
  }

  /** Our route to every peer we can reach, chosen now (sticky against the previous choice). */
  routes (): Route[] {
    const self = this.node.peerId.toString()
    const connected = this.node.getPeers().map(p => p.toString())
    const links: Link[] = []
    const measured = new Set<string>()
    const key = (a: string, b: string): string => a < b ? `${a}|${b}` : `${b}|${a}`
    const add = (from: string, to: string, rttMs: number, isMeasured: boolean, jitterMs?: number): void => {
      links.push({ from, to, rttMs, measured: isMeasured, ...(jitterMs != null ? { jitterMs } : {}) })
      if (isMeasured) measured.add(key(from, to))
    }
    // links carry their jitter: path selection does not switch on a gain within the noise
    for (const l of this.measuredLinks()) add(self, l.peerId, l.rttMs, true, l.jitterMs)
    const coordinates = new Map<string, Coordinate>([[self, this.vivaldi.coordinate()]])
    for (const peerId of [...this.heard.keys()]) {
      const a = this.fresh(peerId)
      if (a == null) continue
      coordinates.set(peerId, a.coordinate)
      for (const l of a.links) if (l.peerId !== self || !measured.has(key(peerId, self))) add(peerId, l.peerId, l.rttMs, true, l.jitterMs)
    }
    // estimates only where nothing is measured
    const known = [...coordinates.keys()]
    for (let i = 0; i < known.length; i++) {
      for (let j = i + 1; j < known.length; j++) {
        const a = known[i] as string
        const b = known[j] as string
        if (measured.has(key(a, b))) continue
        add(a, b, distanceMs(coordinates.get(a) as Coordinate, coordinates.get(b) as Coordinate), false)
      }
    }
    const destinations = [...new Set([...connected, ...known.filter(p => p !== self)])]
    // one intermediate at most by default: relay v2 cannot chain, and a route we report must be one traffic follows
    this.current = selectRoutes(self, destinations, connected, linkTable(links), this.current, { maxHops: 1, ...this.init.pathSelection })
    return [...this.current.values()].sort((a, b) => a.destination.localeCompare(b.destination))
  }
}
