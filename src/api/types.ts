/** JSON shapes of the control API, shared by the daemon and the client. */
import type { JobsService } from '../jobs/index.ts'
import type { Store } from '../store/index.ts'

export interface IdInfo {
  peerId: string
  /** Full dialable multiaddrs, each ending in /p2p/<peerId>. */
  addresses: string[]
}

export interface PeerInfo {
  peerId: string
  addresses: string[]
  /** Filtered RTT from the RTT monitor; null until the first echo. */
  rttMs: number | null
}

export interface StatusInfo {
  peerId: string
  version: string
  uptimeMs: number
  peerCount: number
  listenAddresses: string[]
  repo: string
  api: string
  /** The mesh is private: this daemon has a swarm key and talks only to peers holding it. */
  private: boolean
}

export interface RttReport {
  peerId: string
  /** Probes sent just now, in ms, in order. */
  samplesMs: number[]
  medianMs: number
  /** The monitor's filtered estimate (median window + EWMA), including the new samples. */
  filteredRttMs: number | null
  jitterMs: number | null
  lossRate: number | null
}

/** One destination in `lepton routes`. */
export interface RouteInfo {
  peerId: string
  /** Measured (or, failing that, estimated) RTT of the direct link; null if unknown. */
  directRttMs: number | null
  /** Peers from the next hop to the destination: direct is [peerId]. */
  path: string[]
  /** RTT of the chosen path. */
  rttMs: number
  /** The seed's metric E = (T0 - T) / T0, T0 the direct RTT, T the chosen path's. */
  improvement: number
}

/** What the daemon implements for the API server. */
export interface ApiBackend {
  id(): IdInfo
  peers(): Promise<PeerInfo[]>
  /** The route to every reachable peer, chosen from measured RTTs and coordinates. */
  routes(): RouteInfo[]
  /** Measures the RTT to a connected peer now (`count` probes). */
  rtt(peerId: string, count: number): Promise<RttReport>
  status(): StatusInfo
  /** Shuts down cleanly. */
  stop(): Promise<void>
  store: Store
  jobs: JobsService
}
