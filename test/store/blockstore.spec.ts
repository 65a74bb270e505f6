import { randomBytes } from 'node:crypto'
import { mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DiskBlockstore, encodeStored, sampleEntropy } from '../../src/store/blockstore.ts'
import { CODEC_DEFLATE, CODEC_RAW } from '../../src/store/constants.ts'
import { mulberry32 } from '../../src/random.ts'

async function cidOf (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

function seededText (bytes: number): Uint8Array {
  const words = ['mesh', 'peer', 'block', 'lepton', 'route', 'the', 'of', 'and', 'compute', 'verify']
  const rand = mulberry32(42)
  let s = ''
  while (s.length < bytes) s += (words[Math.floor(rand() * words.length)] ?? '') + (rand() < 0.1 ? '\n' : ' ')
  return Buffer.from(s.slice(0, bytes))
}

describe('stored form', () => {
  it('random bytes look random and are stored raw; text is stored deflated', () => {
    expect(sampleEntropy(randomBytes(4096))).toBeGreaterThan(7.8)
    expect(sampleEntropy(seededText(4096))).toBeLessThan(5)
    expect(encodeStored(randomBytes(262144)).codec).toBe(CODEC_RAW)
    const text = encodeStored(seededText(262144))
    expect(text.codec).toBe(CODEC_DEFLATE)
    expect(text.payload.byteLength).toBeLessThan(262144 * 0.9)
  })

  it('tiny blocks are never compressed', () => {
    expect(encodeStored(Buffer.from('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).codec).toBe(CODEC_RAW)
  })
})

describe('DiskBlockstore', () => {
  let dir: string
  let store: DiskBlockstore
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lepton-bs-'))
    store = new DiskBlockstore(join(dir, 'blocks'))
    await store.open()
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('round-trips raw and compressed blocks', async () => {
    for (const bytes of [randomBytes(262144), seededText(262144), new Uint8Array(0)]) {
      const cid = await cidOf(bytes)
      await store.put(cid, bytes)
      expect(await store.has(cid)).toBe(true)
      expect(Buffer.from(await store.getBytes(cid)).equals(bytes)).toBe(true)
    }
  })

  it('refuses to store bytes under the wrong CID', async () => {
    const cid = await cidOf(Buffer.from('right'))
    await expect(store.put(cid, Buffer.from('wrong'))).rejects.toThrow(/does not match its hash/)
    expect(await store.has(cid)).toBe(false)
  })

  it('a block corrupted inside its pack is an error naming the CID, and is removed; the rest of the pack stays readable', async () => {
    const removed: string[] = []
    await store.close()
    store = new DiskBlockstore(join(dir, 'blocks'), { onCorrupt: (c) => { removed.push(c.toString()) } })
    await store.open()
    const blocks = [randomBytes(5000), randomBytes(262144), seededText(100_000)]
    const cids = await Promise.all(blocks.map(cidOf))
    await store.writeBatch(async batch => {
      for (const [i, bytes] of blocks.entries()) await batch.putStored(cids[i] as CID, encodeStored(bytes))
    })
    const victim = cids[1] as CID
    const where = store.locate(victim)
    expect(where?.file).toBe(store.locate(cids[0] as CID)?.file) // one pack for the batch
    await flipByte(where?.file as string, (where?.offset as number) + 10)
    const key = victim.toString()
    await expect(store.getBytes(victim)).rejects.toMatchObject({ name: 'CorruptBlockError', message: expect.stringContaining(key) })
    expect(await store.has(victim)).toBe(false)
    expect(removed).toEqual([key])
    for (const i of [0, 2]) expect(Buffer.from(await store.getBytes(cids[i] as CID)).equals(blocks[i] as Uint8Array)).toBe(true)
    // the removal is in the index log: still gone after a restart
    await store.close()
    const reopened = new DiskBlockstore(join(dir, 'blocks'))
    await reopened.open()
    expect(await reopened.has(victim)).toBe(false)
    expect(await reopened.has(cids[2] as CID)).toBe(true)
    await reopened.close()
  })

  it('a corrupt DEFLATE stream is corruption too', async () => {
    const text = seededText(262144)
    const cid = await cidOf(text)
    await store.put(cid, text)
    const where = store.locate(cid)
    expect(where?.codec).toBe(CODEC_DEFLATE)
    await flipByte(where?.file as string, (where?.offset as number) + 3)
    await expect(store.getBytes(cid)).rejects.toMatchObject({ name: 'CorruptBlockError' })
    expect(await store.has(cid)).toBe(false)
  })

  it('a batch is invisible until committed; a crash before the commit leaves no block, and its own pack is removed at open', async () => {
    const committed = randomBytes(1000)
    const committedCid = await cidOf(committed)
    await store.put(committedCid, committed)
    const bytes = randomBytes(262144)
    const cid = await cidOf(bytes)
    // a pack of its own, as a large import's after its first MiB (shared-pack.spec covers the shared pack)
    const batch = store.batch({ shared: false })
    await batch.putStored(cid, encodeStored(bytes))
    expect(await batch.has(cid)).toBe(true)
    expect(Buffer.from(await batch.getBytes(cid)).equals(bytes)).toBe(true)
    expect(await store.has(cid)).toBe(false)
    await expect(store.getBytes(cid)).rejects.toMatchObject({ name: 'BlockNotFoundError' })
    const packs = await readdir(join(dir, 'blocks', 'packs'))
    expect(packs).toHaveLength(2) // the committed block's pack (the shared one) and the batch's
    // "crash": the batch is never committed; a new process opens the store
    const after = new DiskBlockstore(join(dir, 'blocks'))
    await after.open()
    expect(await after.has(cid)).toBe(false)
    expect(await readdir(join(dir, 'blocks', 'packs'))).toEqual([`${store.locate(committedCid)?.file.split('/').pop() ?? ''}`])
    expect(Buffer.from(await after.getBytes(committedCid)).equals(committed)).toBe(true)
    await after.close()
    await batch.abort()
  })

  it('a torn index record (crash while appending) is cut off at open; earlier records stand', async () => {
    const first = randomBytes(3000)
    const firstCid = await cidOf(first)
    await store.put(firstCid, first)
    const second = randomBytes(3000)
    const secondCid = await cidOf(second)
    await store.put(secondCid, second)
    await store.close()
    const log = join(dir, 'blocks', 'index.log')
    const full = await readFile(log)
    await writeFile(log, full.subarray(0, full.byteLength - 5)) // the second record loses its tail
    const after = new DiskBlockstore(join(dir, 'blocks'))
    await after.open()
    expect(await after.has(firstCid)).toBe(true)
    expect(await after.has(secondCid)).toBe(false)
    expect((await readdir(join(dir, 'blocks', 'packs')))).toHaveLength(1) // the shared pack both went to: the second's bytes are now named by no record
    // appends after the cut are readable on the next open
    await after.put(secondCid, second)
    await after.close()
    const again = new DiskBlockstore(join(dir, 'blocks'))
    await again.open()
    expect(Buffer.from(await again.getBytes(secondCid)).equals(second)).toBe(true)
    await again.close()
  })

  it('gc compaction: deleting most of a pack frees its space, live blocks stay readable, deletes survive a restart', async () => {
    const blocks = Array.from({ length: 10 }, () => randomBytes(100_000))
    const cids = await Promise.all(blocks.map(cidOf))
    // packs of their own: an open shared pack is left to compaction once it is full
    await store.writeBatch(async batch => {
      for (const [i, bytes] of blocks.entries()) await batch.putStored(cids[i] as CID, encodeStored(bytes))
    }, { shared: false })
    const other = randomBytes(50_000)
    const otherCid = await cidOf(other)
    await store.writeBatch(async batch => { await batch.putStored(otherCid, encodeStored(other)) }, { shared: false })
    const packBytes = async (): Promise<number> => {
      let total = 0
      for (const f of await readdir(join(dir, 'blocks', 'packs'))) total += (await stat(join(dir, 'blocks', 'packs', f))).size
      return total
    }
    expect(await packBytes()).toBe(1_050_000)
    // deleting 3 of 10 leaves the pack 70% live: nothing to rewrite yet
    for (const cid of cids.slice(0, 3)) await store.delete(cid)
    expect(await store.compact()).toEqual({ packsRewritten: 0, packsRemoved: 0, freedBytes: 0 })
    expect(await packBytes()).toBe(1_050_000)
    // 30% live: rewritten
    for (const cid of cids.slice(3, 7)) await store.delete(cid)
    const result = await store.compact()
    expect(result).toEqual({ packsRewritten: 1, packsRemoved: 1, freedBytes: 700_000 })
    expect(await packBytes()).toBe(350_000)
    expect(await readdir(join(dir, 'blocks', 'packs'))).toHaveLength(2)
    // a pack with nothing live is removed outright
    await store.delete(otherCid)
    expect((await store.compact()).packsRemoved).toBe(1)
    expect(await packBytes()).toBe(300_000)
    await store.close()
    const after = new DiskBlockstore(join(dir, 'blocks'))
    await after.open()
    for (const [i, cid] of cids.entries()) {
      if (i < 7) expect(await after.has(cid)).toBe(false)
      else expect(Buffer.from(await after.getBytes(cid)).equals(blocks[i] as Uint8Array)).toBe(true)
    }
    expect(await after.has(otherCid)).toBe(false)
    expect(after.usage()).toMatchObject({ packs: 1, packBytes: 300_000, liveBytes: 300_000, blocks: 3 })
    await after.close()
  })

  it('the index read back at start costs a few hundred bytes of heap per block (base32 text keys cost ~1.6 KiB)', async () => {
    const count = 5000
    const cids: CID[] = []
    await store.writeBatch(async batch => {
      for (let i = 0; i < count; i++) {
        const bytes = Buffer.from(`block ${i}`)
        const cid = await cidOf(bytes)
        cids.push(cid)
        await batch.putStored(cid, encodeStored(bytes))
      }
    })
    await store.close()
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const heapAfterGc = (): number => {
      for (let i = 0; i < 4; i++) gc()
      return process.memoryUsage().heapUsed
    }
    const before = heapAfterGc()
    const reopened = new DiskBlockstore(join(dir, 'blocks'))
    await reopened.open()
    const perBlock = (heapAfterGc() - before) / count
    store = reopened
    expect(perBlock).toBeLessThan(600)
    expect(Buffer.from(await store.getBytes(cids[count - 1] as CID)).toString()).toBe(`block ${count - 1}`)
    const listed = new Set<string>()
    for await (const cid of store.cids()) listed.add(cid.toString())
    expect(listed.size).toBe(count)
    expect(listed.has((cids[0] as CID).toString())).toBe(true)
  })

  it('refuses a newer format, and the old one-file-per-block format with advice', async () => {
    await store.close()
    await writeFile(join(dir, 'blocks', 'VERSION'), '99\n')
    await expect(new DiskBlockstore(join(dir, 'blocks')).open()).rejects.toMatchObject({ name: 'StoreVersionError' })
    await writeFile(join(dir, 'blocks', 'VERSION'), '1\n')
    await expect(new DiskBlockstore(join(dir, 'blocks')).open()).rejects.toMatchObject({ name: 'StoreVersionError', message: expect.stringContaining('Move the folder aside') })
  })
})

async function flipByte (file: string, offset: number): Promise<void> {
  const handle = await open(file, 'r+')
  try {
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, offset)
    byte[0] = (byte[0] ?? 0) ^ 0xff
    await handle.write(byte, 0, 1, offset)
  } finally {
    await handle.close()
  }
}
