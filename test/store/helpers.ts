import { mkdtemp, rm } from 'node:fs/promises'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { tmpdir } from 'node:os'
import { afterEach } from 'vitest'
import { join } from 'node:path'
import { silentLogger } from '../../src/log.ts'
import { createNode } from '../../src/node/index.ts'
import { createStore } from '../../src/store/index.ts'
import type { LeptonNode } from '../../src/node/index.ts'
import type { BlockSource, DiskBlockstore, PinRequestPolicy, Store } from '../../src/store/index.ts'
import type { Blockstore } from 'interface-blockstore'
import type { ImportCandidate } from 'ipfs-unixfs-importer'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface StorePeer {
  node: LeptonNode
  store: Store
  dir: string
}

/** A libp2p node with a store in a fresh temporary repo folder. */
export async function startStorePeer (options: { bootstrap?: string[], source?: (blockstore: DiskBlockstore) => BlockSource, replicaGraceMs?: number, replicaCheckMs?: number, cacheBytes?: number, cacheCheckMs?: number, pinRequests?: PinRequestPolicy } = {}): Promise<StorePeer> {
  const dir = await mkdtemp(join(tmpdir(), 'lepton-store-'))
  const node = await createNode({ connector: { bootstrap: options.bootstrap, intervalMs: 200 }, rtt: { intervalMs: 200 } })
  const store = createStore({ node, repoPath: dir, log: silentLogger, source: options.source, replicaGraceMs: options.replicaGraceMs, replicaCheckMs: options.replicaCheckMs, cacheBytes: options.cacheBytes, cacheCheckMs: options.cacheCheckMs, pinRequests: options.pinRequests })
  await store.start()
  return { node, store, dir }
}

/**
 * A `start` for the tests of the calling describe block: every peer it starts
 * is stopped (and its folder removed) after each test.
 */
export function storePeersPerTest (): (...args: Parameters<typeof startStorePeer>) => Promise<StorePeer> {
  const peers: StorePeer[] = []
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(stopStorePeer))
  })
  return async (...args) => {
    const p = await startStorePeer(...args)
    peers.push(p)
    return p
  }
}

/** `a` dials `b` on its first address. */
export async function connectStorePeers (a: StorePeer, b: StorePeer): Promise<void> {
  await a.node.dial(b.node.getMultiaddrs()[0] as Multiaddr)
}

export async function stopStorePeer (peer: StorePeer): Promise<void> {
  await peer.store.stop()
  await peer.node.stop()
  await rm(peer.dir, { recursive: true, force: true })
}

/**
 * The root CID `ipfs add --cid-version 1 --raw-leaves --chunker size-262144` gives:
 * ipfs-unixfs-importer with kubo's settings, run in-process, blocks discarded.
 */
export async function kuboCid (files: ImportCandidate[]): Promise<string> {
  const discard = { put: async (cid: unknown) => cid, has: async () => false } as unknown as Blockstore
  let last = ''
  for await (const entry of importer(files, discard, {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 })
  })) last = entry.cid.toString()
  return last
}

/** One buffer as a byte stream (what `store.add` takes). */
export async function * bytesOf (data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data
}

/** A byte stream read whole. */
export async function readAll (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of source) chunks.push(c)
  return Buffer.concat(chunks)
}
