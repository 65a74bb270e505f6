import { createHash, randomBytes } from 'node:crypto'
import { getEventListeners } from 'node:events'
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CODEC_RAW } from '../../src/store/constants.ts'
import { parseCid } from '../../src/store/index.ts'
import { bytesOf, connectStorePeers, readAll, storePeersPerTest } from './helpers.ts'
import type { StorePeer } from './helpers.ts'
import type { DefaultStore } from '../../src/store/store.ts'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('block exchange between peers', () => {
  const start = storePeersPerTest()

  it('B fetches by CID what A added; bytes identical', async () => {
    const a = await start()
    const b = await start()
    await connectStorePeers(b, a)
    const data = randomBytes(5 * 1024 * 1024 + 123)
    const { cid } = await a.store.add(bytesOf(data))
    const got = await readAll(b.store.cat(parseCid(cid)))
    expect(sha(got)).toBe(sha(data))
    const stat = await b.store.stat(parseCid(cid))
    expect(stat).toMatchObject({ local: true, size: data.byteLength, type: 'file' })
    expect(stat.holders).toContain(a.node.peerId.toString())
  })

  it('text is stored compressed, and served compressed as it is stored', async () => {
    const a = await start()
    const b = await start()
    await connectStorePeers(b, a)
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(20000))
    const { cid } = await a.store.add(bytesOf(text))
    const onDisk = async (p: StorePeer): Promise<number> => {
      let total = 0
      const packs = join(p.dir, 'blocks', 'packs')
      for (const f of await readdir(packs)) total += (await stat(join(packs, f))).size
      return total
    }
    expect(await onDisk(a)).toBeLessThan(text.byteLength * 0.5)
    expect((await readAll(b.store.cat(parseCid(cid)))).equals(text)).toBe(true)
    expect(await onDisk(b)).toBeLessThan(text.byteLength * 0.5)
  })

  it('a peer serving forged blocks is detected and disconnected; the file still arrives from an honest provider', async () => {
    const honest = await start()
    // the liar claims to hold everything and answers every want with random bytes
    const liar = await start({
      source: () => ({
        has: async () => true,
        getStored: async () => ({ codec: CODEC_RAW, payload: randomBytes(1024) })
      })
    })
    const b = await start()
    await connectStorePeers(b, honest)
    await connectStorePeers(b, liar)
    const data = randomBytes(3 * 262144 + 7)
    const { cid } = await honest.store.add(bytesOf(data))
    // the liar ranks first: it answers "have" too
    const providers = await b.store.findProviders(parseCid(cid))
    expect(providers.map(String).sort()).toEqual([honest.node.peerId.toString(), liar.node.peerId.toString()].sort())
    const got = await readAll(b.store.cat(parseCid(cid)))
    expect(got.equals(data)).toBe(true)
    await expect.poll(() => b.node.getConnections(liar.node.peerId).length, { timeout: 5000 }).toBe(0)
    expect(b.node.getConnections(honest.node.peerId).length).toBeGreaterThan(0)
    // banned: neither redialled by B's connector (which runs every 200 ms here) nor let back in
    expect(b.node.services.bans.isBanned(liar.node.peerId)).toBe(true)
    await liar.node.dial(b.node.getMultiaddrs()[0] as Multiaddr).catch(() => {})
    await new Promise(resolve => setTimeout(resolve, 1000))
    expect(b.node.getConnections(liar.node.peerId)).toHaveLength(0)
  })

  it('a CID nobody has fails after the timeout instead of hanging', async () => {
    const a = await start()
    const b = await start()
    await connectStorePeers(b, a)
    const missing: CID = parseCid('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    await expect(readAll(b.store.cat(missing, { timeoutMs: 1500 }))).rejects.toThrow(/nobody in reach holds/)
  })

  it('a block corrupted on disk is detected on read, removed and fetched again from a holder', async () => {
    const a = await start()
    const b = await start()
    await connectStorePeers(b, a)
    const data = randomBytes(2 * 262144)
    const { cid } = await a.store.add(bytesOf(data))
    await b.store.pinAdd(parseCid(cid))
    // flip a bit inside one of B's leaf blocks, in its pack file
    const blockstore = (b.store as DefaultStore).blockstore
    let leaf: CID | undefined
    for await (const c of blockstore.cids()) if (c.toString().startsWith('bafkrei')) leaf = c
    const where = blockstore.locate(leaf as CID)
    if (where == null) throw new Error('no leaf block on B')
    const handle = await open(where.file, 'r+')
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, where.offset + 100)
    byte[0] = (byte[0] ?? 0) ^ 0x01
    await handle.write(byte, 0, 1, where.offset + 100)
    await handle.close()
    const got = await readAll(b.store.cat(parseCid(cid)))
    expect(got.equals(data)).toBe(true)
    // the corrupt copy was dropped and the block fetched again: a new copy, elsewhere (in the shared pack, further on)
    const now = blockstore.locate(leaf as CID)
    expect(now).toBeDefined()
    expect([now?.file, now?.offset]).not.toEqual([where.file, where.offset])
  })

  /** A holds 600 KiB (its CID), C nothing; B is connected to both. */
  const holderAndBystander = async (): Promise<{ a: StorePeer, b: StorePeer, c: StorePeer, data: Buffer, cid: string }> => {
    const a = await start()
    const b = await start()
    const c = await start()
    await connectStorePeers(b, a)
    await connectStorePeers(b, c)
    const data = randomBytes(600 * 1024)
    const { cid } = await a.store.add(bytesOf(data))
    return { a, b, c, data, cid }
  }

  it('named holders are fetched from without asking around; if they lack it, the search follows', async () => {
    const { a, b, c, data, cid } = await holderAndBystander()
    const store = b.store as DefaultStore
    const search = store.findProviders.bind(store)
    let searches = 0
    store.findProviders = async (...args) => {
      searches++
      return await search(...args)
    }
    expect(sha(await readAll(b.store.cat(parseCid(cid), { holders: [a.node.peerId] })))).toBe(sha(data))
    expect(searches).toBe(0)
    // C holds nothing: B asks it first, then searches and gets it from A
    const other = randomBytes(300 * 1024)
    const second = await a.store.add(bytesOf(other))
    expect(sha(await readAll(b.store.cat(parseCid(second.cid), { holders: [c.node.peerId] })))).toBe(sha(other))
    expect(searches).toBe(1)
  })

  it('finished fetches leave no listener on the caller\'s signal (a long-lived one would keep each fetch alive)', async () => {
    const { a, b, c, data, cid } = await holderAndBystander()
    // a worker's task signal joins its shutdown signal, which lives as long as the daemon
    const lifetime = new AbortController()
    const signal = lifetime.signal
    // from a named holder; then from C, which lacks it (the search follows); then already local
    expect(sha(await readAll(b.store.cat(parseCid(cid), { signal, holders: [a.node.peerId] })))).toBe(sha(data))
    const other = randomBytes(300 * 1024)
    const second = await a.store.add(bytesOf(other))
    expect(sha(await readAll(b.store.cat(parseCid(second.cid), { signal, holders: [c.node.peerId] })))).toBe(sha(other))
    await b.store.fetch(parseCid(cid), { signal })
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })

  it('an invalid CID is a clear error', () => {
    expect(() => parseCid('not-a-cid')).toThrow(/"not-a-cid" is not a valid CID/)
  })
})
