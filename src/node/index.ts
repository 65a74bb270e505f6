/**
 * libp2p assembly: tcp + noise + yamux (behind the pnet protector when the mesh
 * has a swarm key), identify, ping, a private Kademlia DHT
 * in server mode (LAN and loopback addresses kept), gossipsub, and our own RTT
 * monitor. The daemon and the multi-node tests build nodes only through here.
 */
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { peerConnector, rttMonitor } from '../routing/index.ts'
import { relayConfig } from '../routing/forwarder.ts'
import { PeerBans } from './bans.ts'
import { DHT_INITIAL_QUERY_SELF_MS, DHT_PROTOCOL, DHT_QUERY_SELF_MS, LOOPBACK_ALLOW } from './constants.ts'
import type { PeerConnector, PeerConnectorInit, RttMonitor, RttMonitorInit } from '../routing/index.ts'
import type { Forwarder } from '../routing/forwarder.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, Libp2p, PeerDiscovery, PeerId, PeerInfo, PrivateKey, Startable, Transport } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Datastore } from 'interface-datastore'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import { OFFERS_TOPIC } from '../market/constants.ts'
import { PRUNE_MIN_SAMPLES, ROUTING_TOPIC } from '../routing/constants.ts'
import { gossipFastMessageId } from './gossip-id.ts'
import { deferYamuxWindowUpdates } from './yamux-window.ts'

/**
 * Peer scoring on our topics: every message a validator rejects (malformed,
 * oversized, future-dated, a flood) costs its sender 10 x count² points, so a
 * few put it under the graylist threshold (-80) and its gossip is ignored
 * until the penalty decays. Delivery-rate penalties stay off: our topics are
 * quiet by design and an honest peer may publish nothing for minutes.
 */
const quietTopic = createTopicScoreParams({ topicWeight: 1, timeInMeshWeight: 0.01, timeInMeshQuantum: 1000, timeInMeshCap: 100, firstMessageDeliveriesWeight: 0, meshMessageDeliveriesWeight: 0, meshFailurePenaltyWeight: 0, invalidMessageDeliveriesWeight: -10, invalidMessageDeliveriesDecay: 0.9 })
const GOSSIP_OPTIONS = {
  scoreParams: {
    topics: { [OFFERS_TOPIC]: quietTopic, [ROUTING_TOPIC]: quietTopic },
    // gossipsub penalises more than 10 peers behind one IP (a Sybil defence for public
    // networks); daemons sharing a host on loopback are not that: without this, 11+ local
    // daemons graylist each other and no offer or announcement gets through
    IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1'])
  },
  scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80 },
  // a copy of a message already verified is dropped before its signature is checked again
  fastMsgIdFn: gossipFastMessageId
}

export * from './constants.ts'
export { PeerBans } from './bans.ts'
export type { PeerBan } from './bans.ts'

export type LeptonServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  rtt: RttMonitor
  connector: PeerConnector
  bans: PeerBans
  /** Open once every service has started (see StartGate). */
  startGate: { open: boolean }
  /** Present when the node was built with `relay: true`. */
  forwarder?: Forwarder
  relay?: unknown
}

export type LeptonNode = Libp2p<LeptonServices>

export interface NodeInit {
  privateKey?: PrivateKey
  /** Persists the peer store (and DHT records) across restarts. */
  datastore?: Datastore
  /** Multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Hard cap on open connections. @default 128 */
  maxConnections?: number
  /** Also discover peers on the LAN by multicast DNS. @default false */
  mdns?: boolean
  rtt?: RttMonitorInit
  connector?: PeerConnectorInit
  /**
   * Serve as a circuit relay for mesh members and add the forwarder service, so
   * traffic can follow detours (routing/forwarder.ts). The daemon turns it on
   * unless the config says `"relay": false`; bare nodes leave it off.
   * @default false
   */
  relay?: boolean
  /**
   * Swarm key of a private mesh (the v1 text, as in swarm.key; validate it with
   * the repo's parseSwarmKey). Every connection is then wrapped in libp2p's
   * pre-shared-key protector (XSalsa20) before noise: peers without the same
   * key fail the handshake and never become peers. @default an open mesh
   */
  swarmKey?: string | Uint8Array
  /** Start the node before returning it. @default true */
  start?: boolean
  /** The transport; tests pass a delay-injecting TCP. @default tcp() */
  transport?: (components: any) => Transport
}

/**
 * Closed until every service of the node has started. libp2p starts its
 * services side by side, and meanwhile its connection manager re-dials the
 * peers kad-dht tagged keep-alive (the peer store is on disk, so a restarted
 * daemon has some): those connections were identified before gossipsub had
 * registered for new peers, gossipsub never learnt of them, and the restarted
 * daemon published into the void until some peer happened to reconnect (a
 * resumed job waited for workers for minutes). Nothing connects in or out
 * until the gate opens; libp2p calls the first afterStart() only once every
 * start() has resolved, so opening there is never early.
 */
class StartGate implements Startable {
  open = false
  readonly [Symbol.toStringTag] = 'lepton:start-gate'
  start (): void {}
  afterStart (): void { this.open = true }
  beforeStop (): void { this.open = false }
  stop (): void {}
}

export async function createNode (init: NodeInit = {}): Promise<LeptonNode> {
  const bans = new PeerBans()
  const gate = new StartGate()
  // the connector prunes by RTT, which the rtt service (built alongside it) measures;
  // it only asks once the node is running
  // what the connector prunes on: an estimate of PRUNE_MIN_SAMPLES probes or more (a peer with fewer counts as unmeasured and is kept)
  const rttMs = (peer: PeerId): number | undefined => {
    const stats = node.services.rtt.stats(peer)
    return stats != null && stats.samples >= PRUNE_MIN_SAMPLES ? stats.rttMs : undefined
  }
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  // loaded only when asked for: it is big, and most meshes do not use it
  if (init.mdns === true) peerDiscovery.push((await import('@libp2p/mdns')).mdns())
  const relay = init.relay === true ? relayConfig({ maxReservations: init.maxConnections ?? 128 }) : undefined
  deferYamuxWindowUpdates()
  const node: LeptonNode = await createLibp2p({
    start: init.start ?? true,
    privateKey: init.privateKey,
    datastore: init.datastore,
    addresses: {
      listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'],
      // Relay addresses (<relay>/p2p-circuit) stay private. A detour is dialled as
      // /p2p/C/p2p-circuit/p2p/B by name (routing/forwarder.ts), so nobody needs B's
      // list of relays; announced, they made every peer record ~20 addresses long in a
      // 20-daemon mesh (each daemon reserves on its neighbours), every reservation made or
      // lost was pushed to every peer, and decoding those records and the DHT answers
      // carrying them was a fifth of an idle daemon's CPU.
      announceFilter: (addrs) => addrs.filter(a => !a.toString().includes('/p2p-circuit'))
    },
    transports: [init.transport ?? tcp(), ...(relay?.transports ?? [])],
    ...(init.swarmKey != null ? { connectionProtector: preSharedKey({ psk: swarmKeyBytes(init.swarmKey) }) } : {}),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: {
      maxConnections: init.maxConnections ?? 128,
      allow: LOOPBACK_ALLOW
    },
    // libp2p's connection monitor is off: our RTT monitor measures every link on one
    // long-lived stream, while the monitor opened a new ping stream on every
    // connection every 10 s (each new stream is a peer-store update on both ends),
    // and under load a ping overlapped the next and it aborted healthy connections
    // ("Too many outbound protocol streams").
    connectionMonitor: { enabled: false },
    connectionGater: {
      denyDialMultiaddr: () => !gate.open,
      denyInboundConnection: () => !gate.open,
      denyDialPeer: (peer) => !gate.open || bans.isBanned(peer),
      denyInboundEncryptedConnection: (peer) => bans.isBanned(peer),
      denyOutboundEncryptedConnection: (peer) => bans.isBanned(peer)
    },
    services: {
      // first: libp2p calls afterStart() in this order, and the gate must open before the
      // connector's afterStart dials the bootstrap addresses
      startGate: () => gate,
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        initialQuerySelfInterval: DHT_INITIAL_QUERY_SELF_MS,
        querySelfInterval: DHT_QUERY_SELF_MS
      }),
      pubsub: gossipsub(GOSSIP_OPTIONS),
      rtt: rttMonitor(init.rtt),
      connector: peerConnector({ rttMs, closestPeers: (key, options) => closestFromDht(node.services.dht, key, options), ...init.connector }),
      bans: () => bans,
      ...(relay?.services ?? {})
    }
  }) as LeptonNode
  return node
}

/** The peers a kad-dht lookup meets: every answer's closer peers as they come, then the closest. */
async function * closestFromDht (dht: KadDHT, key: Uint8Array, options: AbortOptions): AsyncGenerator<PeerInfo> {
  for await (const event of dht.getClosestPeers(key, options)) {
    if (event.name === 'PEER_RESPONSE') yield * event.closer
    else if (event.name === 'FINAL_PEER') yield event.peer
  }
}

function swarmKeyBytes (key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? new TextEncoder().encode(key) : key
}
