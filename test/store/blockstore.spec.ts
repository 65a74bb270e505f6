import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

  it('a block corrupted on disk is an error naming the CID, and the file is removed', async () => {
    const bytes = randomBytes(5000)
    const cid = await cidOf(bytes)
    const removed: string[] = []
    store = new DiskBlockstore(join(dir, 'blocks'), { onCorrupt: (c) => { removed.push(c.toString()) } })
    await store.open()
    await store.put(cid, bytes)
    const key = cid.toString()
    const file = join(dir, 'blocks', key.slice(-3, -1), key)
    const onDisk = await readFile(file)
    onDisk[10] = (onDisk[10] ?? 0) ^ 0xff
    await writeFile(file, onDisk)
    await expect(store.getBytes(cid)).rejects.toMatchObject({ name: 'CorruptBlockError', message: expect.stringContaining(key) })
    expect(await store.has(cid)).toBe(false)
    expect(removed).toEqual([key])
  })

  it('clears half-written temp files at open, and refuses a newer format', async () => {
    await writeFile(join(dir, 'blocks', 'tmp', 'leftover'), 'partial')
    await store.open()
    await expect(readFile(join(dir, 'blocks', 'tmp', 'leftover'))).rejects.toThrow()
    await writeFile(join(dir, 'blocks', 'VERSION'), '99\n')
    await expect(new DiskBlockstore(join(dir, 'blocks')).open()).rejects.toMatchObject({ name: 'StoreVersionError' })
  })
})
