/**
 * The shared pack: small batches (a job's input, result, kept outputs, one
 * fetched block) append to one open pack instead of a pack file each, and a
 * crash between a pack append and its index record loses nothing committed.
 */
import { randomBytes } from 'node:crypto'
import { appendFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DiskBlockstore, encodeStored } from '../../src/store/blockstore.ts'
import { PACK_MAX_BYTES, SHARED_PACK_BATCH_BYTES } from '../../src/store/constants.ts'

async function block (bytes: number): Promise<{ cid: CID, bytes: Uint8Array }> {
  const data = randomBytes(bytes)
  return { cid: CID.createV1(raw.code, await sha256.digest(data)), bytes: data }
}

describe('shared pack for small writes', () => {
  let dir: string
  let blocksDir: string
  let store: DiskBlockstore
  const packFiles = async (): Promise<string[]> => (await readdir(join(blocksDir, 'packs'))).sort()
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lepton-shared-'))
    blocksDir = join(dir, 'blocks')
    store = new DiskBlockstore(blocksDir)
    await store.open()
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('100 small puts, one batch each and 20 of them at once, make one pack file; every block reads back after a restart', async () => {
    const blocks = await Promise.all(Array.from({ length: 100 }, async (_, i) => await block(500 + i * 37)))
    for (const b of blocks.slice(0, 80)) await store.put(b.cid, b.bytes)
    await Promise.all(blocks.slice(80).map(async b => { await store.put(b.cid, b.bytes) }))
    expect(await packFiles()).toHaveLength(1)
    expect(store.usage()).toMatchObject({ packs: 1, blocks: 100 })
    await store.close()
    store = new DiskBlockstore(blocksDir)
    await store.open()
    for (const b of blocks) expect(Buffer.from(await store.getBytes(b.cid)).equals(b.bytes)).toBe(true)
    // the pack of the last run is not appended to again: the next small put starts another
    const next = await block(100)
    await store.put(next.cid, next.bytes)
    expect(await packFiles()).toHaveLength(2)
  })

  it('a crash after a pack append but before its index record: committed blocks stand, the uncommitted one is gone, the store writes on', async () => {
    const committed = await Promise.all([block(1000), block(2000)])
    for (const b of committed) await store.put(b.cid, b.bytes)
    const lost = await block(3000)
    const batch = store.batch()
    await batch.putStored(lost.cid, encodeStored(lost.bytes)) // in the pack file, no record yet
    const [pack] = await packFiles()
    expect((await stat(join(blocksDir, 'packs', pack as string))).size).toBe(6000)
    // and a torn write past it, as a kill -9 in the middle of one leaves
    await appendFile(join(blocksDir, 'packs', pack as string), randomBytes(777))
    // "kill -9": the batch is never committed; a new process opens the store
    const after = new DiskBlockstore(blocksDir)
    await after.open()
    for (const b of committed) expect(Buffer.from(await after.getBytes(b.cid)).equals(b.bytes)).toBe(true)
    expect(await after.has(lost.cid)).toBe(false)
    expect(await packFiles()).toEqual([pack]) // kept: it holds committed blocks
    // the same bytes again: stored and readable, also after another restart
    await after.put(lost.cid, lost.bytes)
    expect(Buffer.from(await after.getBytes(lost.cid)).equals(lost.bytes)).toBe(true)
    await after.close()
    const again = new DiskBlockstore(blocksDir)
    await again.open()
    for (const b of [...committed, lost]) expect(Buffer.from(await again.getBytes(b.cid)).equals(b.bytes)).toBe(true)
    // the dead bytes count against the pack: compaction reclaims them once it is mostly dead
    for (const b of committed) await again.delete(b.cid)
    const { packsRemoved } = await again.compact()
    expect(packsRemoved).toBe(1)
    expect(await packFiles()).not.toContain(pack)
    expect(Buffer.from(await again.getBytes(lost.cid)).equals(lost.bytes)).toBe(true)
    await again.close()
    await batch.abort()
  })

  it('a shared pack with no committed block is removed at the next open', async () => {
    const b = await block(4000)
    const batch = store.batch()
    await batch.putStored(b.cid, encodeStored(b.bytes))
    expect(await packFiles()).toHaveLength(1)
    const after = new DiskBlockstore(blocksDir)
    await after.open()
    expect(await packFiles()).toHaveLength(0)
    expect(await after.has(b.cid)).toBe(false)
    await after.close()
    await batch.abort()
  })

  it('a large batch puts its first MiB in the shared pack and the rest in a pack of its own', async () => {
    const blocks = await Promise.all(Array.from({ length: 8 }, async () => await block(256 * 1024)))
    await store.writeBatch(async batch => {
      for (const b of blocks) await batch.putStored(b.cid, encodeStored(b.bytes))
    })
    const files = new Set(blocks.map(b => store.locate(b.cid)?.file))
    expect(files.size).toBe(2)
    const inShared = blocks.filter(b => store.locate(b.cid)?.file === store.locate(blocks[0]?.cid as CID)?.file)
    expect(inShared).toHaveLength(SHARED_PACK_BATCH_BYTES / (256 * 1024))
    for (const b of blocks) expect(Buffer.from(await store.getBytes(b.cid)).equals(b.bytes)).toBe(true)
  })

  it('compaction leaves the open shared pack alone, even with nothing live in it; once closed, a dead one goes', async () => {
    const first = await block(5000)
    await store.put(first.cid, first.bytes)
    await store.delete(first.cid)
    expect(await store.compact()).toEqual({ packsRewritten: 0, packsRemoved: 0, freedBytes: 0 })
    // still appended to, and read from
    const second = await block(6000)
    await store.put(second.cid, second.bytes)
    expect(store.locate(second.cid)?.file).toBe(join(blocksDir, 'packs', (await packFiles())[0] as string))
    expect(Buffer.from(await store.getBytes(second.cid)).equals(second.bytes)).toBe(true)
    // a live block and a dead one in a second shared pack (after a restart)
    await store.close()
    store = new DiskBlockstore(blocksDir)
    await store.open()
    const third = await block(7000)
    const fourth = await block(8000)
    for (const b of [third, fourth]) await store.put(b.cid, b.bytes)
    await store.delete(fourth.cid)
    const [oldPack, newPack] = await packFiles()
    expect(newPack).toBeDefined()
    await store.delete(second.cid)
    // the closed one, now dead, goes; the open one (7000 of 15000 bytes live) stays
    expect(await store.compact()).toEqual({ packsRewritten: 0, packsRemoved: 1, freedBytes: 11000 })
    expect(await packFiles()).toEqual([newPack])
    expect(oldPack).not.toBe(newPack)
    expect(Buffer.from(await store.getBytes(third.cid)).equals(third.bytes)).toBe(true)
    // restarted, it is a pack like any other: under half live, rewritten
    await store.close()
    store = new DiskBlockstore(blocksDir)
    await store.open()
    expect(await store.compact()).toMatchObject({ packsRewritten: 1, packsRemoved: 1 })
    expect(await packFiles()).not.toContain(newPack)
    expect(Buffer.from(await store.getBytes(third.cid)).equals(third.bytes)).toBe(true)
  })

  it('a full shared pack is closed and a new one started', async () => {
    expect(SHARED_PACK_BATCH_BYTES).toBeLessThan(PACK_MAX_BYTES)
    // 65 batches of 1 MiB (the most a batch puts in the shared pack) pass 64 MiB
    const batches = Math.ceil(PACK_MAX_BYTES / SHARED_PACK_BATCH_BYTES) + 1
    const first: CID[] = []
    for (let i = 0; i < batches; i++) {
      const blocks = await Promise.all(Array.from({ length: 4 }, async () => await block(256 * 1024)))
      await store.writeBatch(async batch => {
        for (const b of blocks) await batch.putStored(b.cid, encodeStored(b.bytes))
      })
      first.push(blocks[0]?.cid as CID)
    }
    expect(await packFiles()).toHaveLength(2)
    expect(store.locate(first[0] as CID)?.file).not.toBe(store.locate(first[first.length - 1] as CID)?.file)
  }, 60_000)
})
