/** JSON shapes of the control API, shared by the daemon and the client. */
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
}

/** What the daemon implements for the API server. */
export interface ApiBackend {
  id(): IdInfo
  peers(): Promise<PeerInfo[]>
  status(): StatusInfo
  /** Shuts down cleanly. */
  stop(): Promise<void>
  store: Store
}
