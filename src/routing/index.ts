/**
 * Routing: measured round-trip times. Today the RTT monitor; Vivaldi
 * coordinates, path selection and forwarding build on it. The rest of the
 * system asks this module for RTTs and never measures on its own.
 */
import { DefaultPeerConnector } from './peer-connector.ts'
import { DefaultRttMonitor } from './rtt-monitor.ts'
import type { Logger } from '../log.ts'
import type { RttStats } from './rtt-estimator.ts'
import type { AbortOptions, ComponentLogger, Libp2pEvents, PeerId, PeerInfo, PeerRouting, PeerStore, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

export * from './errors.ts'
export { RTT_PROTOCOL } from './constants.ts'
export { RttEstimator, medianOf } from './rtt-estimator.ts'
export type { RttStats } from './rtt-estimator.ts'

export interface RttMonitor {
  /** Filtered RTT to a peer in milliseconds, or undefined before the first echo. */
  rttMs(peer: PeerId): number | undefined
  stats(peer: PeerId): RttStats | undefined
  /** Sends one probe now and resolves with its RTT (also fed to the estimate). */
  measure(peer: PeerId, options?: AbortOptions): Promise<number>
}

export interface RttMonitorInit {
  /** Milliseconds between probes to each connected peer. @default 1000 */
  intervalMs?: number
  /** Milliseconds after which a probe counts as lost. @default 5000 */
  timeoutMs?: number
  /**
   * Test hook: hold each echo to `peer` this many ms, emulating a slower link
   * (the kernel here has no netem). Production leaves it unset.
   */
  echoDelayMs?(peer: PeerId): number
}

export interface RttMonitorComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export function rttMonitor (init: RttMonitorInit = {}): (components: RttMonitorComponents) => RttMonitor {
  return (components) => new DefaultRttMonitor(components, init)
}

export interface PeerConnector {
  /** Peers with at least one open connection. */
  connectedPeers(): PeerId[]
}

export interface PeerConnectorInit {
  /** Multiaddrs dialled at start (with /p2p/ID), retried with backoff until they answer. */
  bootstrap?: string[]
  /** Connections to keep open. @default 32 */
  targetConnections?: number
  /** Milliseconds between checks of the connection count. @default 2000 */
  intervalMs?: number
  /** Where bootstrap progress and failures are reported. */
  log?: Logger
  /**
   * Above this many connections, prune down to `targetConnections`, keeping the
   * nearest by RTT and a few random ones (see topology.ts). @default target + max(2, target / 4)
   */
  highWaterConnections?: number
  /** Lowest-RTT peers never pruned. @default 8 */
  keepNearest?: number
  /** Other peers kept at random when pruning. @default 4 */
  keepRandom?: number
  /** Filtered RTT of a peer (the RTT monitor's), used to choose what to prune. */
  rttMs?(peer: PeerId): number | undefined
  /**
   * Peers near `key` as a DHT lookup meets them, with the addresses the answers
   * carried. The node passes kad-dht's own lookup. @default libp2p's
   * peerRouting.getClosestPeers, which runs a whole findPeer lookup for every
   * peer that came without addresses (20 a minute per idle daemon, measured)
   */
  closestPeers?(key: Uint8Array, options: AbortOptions): AsyncIterable<PeerInfo>
}

export interface PeerConnectorComponents {
  peerId: PeerId
  peerStore: PeerStore
  peerRouting: PeerRouting
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
}

export function peerConnector (init: PeerConnectorInit = {}): (components: PeerConnectorComponents) => PeerConnector {
  return (components) => new DefaultPeerConnector(components, init)
}

export { bestPath, selectRoute, selectRoutes, linkTable, NoRouteError, DEFAULT_PATH_SELECTION } from './path-selection.ts'
export type { Link, LinkTable, Route, PathSelectionConfig } from './path-selection.ts'
export { VivaldiClient, newCoordinate, distanceMs, InvalidCoordinateError, DEFAULT_VIVALDI_CONFIG } from './vivaldi.ts'
export type { Coordinate, VivaldiConfig } from './vivaldi.ts'
export { Router } from './router.ts'
export type { RouterInit } from './router.ts'
export { ROUTING_TOPIC } from './constants.ts'
export { planPrune, DEFAULT_NEAREST, DEFAULT_RANDOM } from './topology.ts'
export type { ConnectedPeer, PrunePlan, TopologyConfig } from './topology.ts'
