import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryDatastore } from 'datastore-core'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import { CachedDatastore } from '../../src/repo/index.ts'
import type { LeptonNode } from '../../src/node/index.ts'

async function randomCid (): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
}

describe('DHT provider records from other peers', () => {
  const nodes: LeptonNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  it('a peer announcing CID after CID keeps only its newest records on us; another peer\'s stay', async () => {
    // A holds at most 4 records a provider (the daemon: 20,000) and 10 in all
    const privateKey = await generateKeyPair('Ed25519')
    const datastore = new CachedDatastore(new MemoryDatastore(), { providerLimits: { perPeer: 4, total: 10 }, self: peerIdFromPrivateKey(privateKey).toString() })
    await datastore.open()
    const a = await createNode({ privateKey, datastore, rtt: { intervalMs: 200 } })
    nodes.push(a)
    const bootstrap = a.getMultiaddrs().map(m => m.toString())
    const flooder = await createNode({ connector: { bootstrap, intervalMs: 200 }, rtt: { intervalMs: 200 } })
    const honest = await createNode({ connector: { bootstrap, intervalMs: 200 }, rtt: { intervalMs: 200 } })
    nodes.push(flooder, honest)
    await expect.poll(() => a.getPeers().length, { timeout: 10_000 }).toBe(2)

    const honestCid = await randomCid()
    await honest.contentRouting.provide(honestCid, { signal: AbortSignal.timeout(10_000) })
    const flood: CID[] = []
    for (let i = 0; i < 12; i++) {
      const cid = await randomCid()
      flood.push(cid)
      await flooder.contentRouting.provide(cid, { signal: AbortSignal.timeout(10_000) })
    }
    const recordsOf = async (peer: LeptonNode): Promise<number> => {
      let n = 0
      for await (const { key } of datastore.query({ prefix: '/dht/provider/' })) if (key.toString().endsWith(`/${peer.peerId.toString()}`)) n++
      return n
    }
    // provide() resolves once its ADD_PROVIDERs are sent; A stores them as they arrive
    await expect.poll(() => datastore.providerRecordsDropped, { timeout: 10_000 }).toBeGreaterThanOrEqual(8)
    expect(await recordsOf(flooder)).toBe(4)
    expect(await recordsOf(honest)).toBe(1)
    // what is kept still answers: A finds the flooder as provider of its newest CID, the honest peer of its own
    // the first provider A's DHT names for a CID
    const firstProvider = async (cid: CID): Promise<string | undefined> => {
      const found = a.contentRouting.findProviders(cid, { signal: AbortSignal.timeout(5_000) })[Symbol.asyncIterator]()
      const first = await found.next()
      await found.return?.()
      return first.done === true ? undefined : first.value.id.toString()
    }
    expect(await firstProvider(flood[flood.length - 1] as CID)).toBe(flooder.peerId.toString())
    expect(await firstProvider(honestCid)).toBe(honest.peerId.toString())
  })
})
