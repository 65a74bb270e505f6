/**
 * Content-addressed storage across the mesh: UnixFS import/export with IPFS's
 * CIDs, a verified on-disk blockstore, our block exchange, pins, gc and
 * replication.
 */
import { DefaultStore } from './store.ts'
import type { DiskBlockstore } from './blockstore.ts'
import type { BlockSource } from './exchange.ts'
import type { FetchProgress, FetchResult } from './fetcher.ts'
import type { PinInfo } from './pins.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export * from './errors.ts'
export { parseCid, describeRoot } from './store.ts'
export { DiskBlockstore, verifyBlock, encodeStored, decodeStored } from './blockstore.ts'
export type { StoredBlock } from './blockstore.ts'
export type { BlockSource } from './exchange.ts'
export type { FetchProgress, FetchResult } from './fetcher.ts'
export type { PinInfo } from './pins.ts'
export { planRepair, pickCandidates, holdersToProbe } from './replicas.ts'
export type { ReplicaRecord, RepairPlan } from './replicas.ts'
export { BLOCKS_PROTOCOL, PIN_PROTOCOL, CHUNK_BYTES } from './constants.ts'

export interface AddOptions extends FetchOptions {
  /** Copies wanted in the mesh, this peer's included. @default 1 */
  replicas?: number
  onProgress?(progress: { bytes: number }): void
  /**
   * Announce the root on the DHT. Off for what only this daemon's own job
   * needs (its partitions: workers ask the submitter first, and connected
   * peers before the DHT). @default true
   */
  provide?: boolean
  /**
   * Pin the root. Off for data kept only while something uses it (a job's
   * input and partitions): pass `hold` instead, or nothing, and `gc` may
   * remove it. @default true
   */
  pin?: boolean
  /** Keep the root from `gc` until `AddResult.release` is called (held before the add resolves). */
  hold?: boolean
}

export interface AddResult {
  cid: string
  size: number
  replicas?: ReplicaResult
  /** With `hold`: ends the hold. Idempotent. */
  release?(): void
}

export interface ReplicaResult {
  /** Peers holding a pinned copy, this one first. */
  holders: string[]
  refused: Array<{ peerId: string, error: string }>
}

export interface FetchOptions {
  /** Time allowed to find providers. @default 30000 */
  timeoutMs?: number
  /**
   * Peers believed to hold the whole DAG (e.g. the submitter of a task, for its
   * code and input): fetched from first, without asking around; if they fail,
   * the usual search follows.
   */
  holders?: PeerId[]
  signal?: AbortSignal
  onProgress?(progress: FetchProgress): void
}

export interface StatResult {
  cid: string
  type: string
  /** File size in bytes (null if nobody in reach could say). */
  size: number | null
  /** Blocks in the DAG (null unless the whole DAG is local). */
  blocks: number | null
  localBlocks: number
  /** The whole DAG is on this peer's disk. */
  local: boolean
  pinned: boolean
  /** Peers known to hold it (this one included when local). */
  holders: string[]
}

export interface GcResult {
  removed: number
  freedBytes: number
}

export interface Store {
  /** Imports a file or folder path, or a byte stream; pins it here; replicates on request. */
  add(source: string | AsyncIterable<Uint8Array>, options?: AddOptions): Promise<AddResult>
  /**
   * Several adds with the same options in one write: one batch, committed
   * once for all (a job's partitions). Results in order; `onProgress` counts
   * the bytes of all sources together.
   */
  addMany(sources: Array<string | AsyncIterable<Uint8Array>>, options?: AddOptions): Promise<AddResult[]>
  cat(cid: CID, options?: FetchOptions): AsyncGenerator<Uint8Array>
  get(cid: CID, output: string, options?: FetchOptions): Promise<{ size: number }>
  stat(cid: CID, options?: FetchOptions): Promise<StatResult>
  fetch(cid: CID, options?: FetchOptions): Promise<FetchResult>
  findProviders(cid: CID, options?: FetchOptions): Promise<PeerId[]>
  pinAdd(cid: CID, options?: FetchOptions): Promise<void>
  pinRm(cid: CID): Promise<void>
  pinLs(): Promise<PinInfo[]>
  gc(): Promise<GcResult>
  /**
   * Keeps `cid` and everything under it from `gc` until the returned function
   * is called (in memory only: what must outlive a restart is pinned). Holds
   * count: the same CID held twice needs two releases. Unlike a pin, a hold
   * never removes what a user pinned.
   */
  hold(cid: CID): () => void
  /**
   * Stores small blocks as they are (each hashed against its CID first), in
   * one batch, unpinned: `gc` may remove them. For data a module keeps by CID
   * (e.g. the lineage's task outputs) without holding it in memory.
   */
  putBlocks(blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<void>
  /** A block held here (verified), or undefined; never asks the mesh. */
  localBlock(cid: CID): Promise<Uint8Array | undefined>
  replicate(cid: CID, count: number, options?: FetchOptions): Promise<ReplicaResult>
  start(): Promise<void>
  stop(): Promise<void>
}

export interface StoreInit {
  node: LeptonNode
  /** The repo folder: blocks/ and pins/ live in it. */
  repoPath: string
  log: Logger
  /** What the exchange serves from, given the blockstore. Tests build a liar; @default the blockstore */
  source?(blockstore: DiskBlockstore): BlockSource
  /**
   * Opens the block stream to a peer: the routing module's entry point, so
   * fetches follow detours. @default node.dialProtocol (direct)
   */
  openStream?(peer: PeerId, protocol: string, signal?: AbortSignal): Promise<Stream>
  /** How long a holder of a `--replicas N` CID may be out of reach before another peer copies it. @default 300000 */
  replicaGraceMs?: number
  /** How often the holders of replicated CIDs check on each other. @default 10000 */
  replicaCheckMs?: number
  /**
   * Other peers' requests to fetch and pin content here: whose to take
   * (@default "any") and the free disk space they must leave (@default 1 GiB;
   * refused below it, a fetch for one stopped on reaching it).
   */
  pinRequests?: PinRequestPolicy
  /**
   * Bytes the store may grow by beyond what the last gc kept (pins, holds)
   * before it runs gc by itself: the budget of unpinned cache (fetched
   * blocks, jobs' inputs and outputs). 0: never on its own. @default 4 GiB
   */
  cacheBytes?: number
  /** How often the store compares its size with that budget. @default 10000 */
  cacheCheckMs?: number
}

/** What this peer does with other peers' requests to fetch and pin content here. */
export interface PinRequestPolicy {
  /** Whose requests to take: "any" peer, or these peer ids. @default "any" */
  accept?: 'any' | string[]
  /** Free disk space they must leave: refused below it, a fetch for one stopped on reaching it. @default 1 GiB */
  minFreeBytes?: number
  /** Free bytes on the repo's disk; tests stand in for the disk. @default statfs */
  freeBytes?(): Promise<number>
  /** How often a fetch for a pin request looks at the free space. @default 1000 */
  diskCheckMs?: number
}

export function createStore (init: StoreInit): Store {
  return new DefaultStore(init)
}
