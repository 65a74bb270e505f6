import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHUNK_BYTES } from '../../src/store/constants.ts'
import { ChunkPool, loadImporter, readFileChunks } from '../../src/store/importer.ts'
import { RECORD_DEL, RECORD_PUT, decodeRecords, encodeRecords } from '../../src/store/pack-log.ts'
import { CID } from 'multiformats/cid'

async function referenceCid (content: Uint8Array): Promise<string> {
  let last = ''
  for await (const entry of importer([{ content }], new MemoryBlockstore(), {
    cidVersion: 1, rawLeaves: true, chunker: fixedSize({ chunkSize: 262144 }), layout: balanced({ maxChildrenPerNode: 174 })
  })) last = entry.cid.toString()
  return last
}

// sizes around the chunk and the read-group (4 chunks) boundaries
const SIZES = [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 4 * CHUNK_BYTES, 4 * CHUNK_BYTES + 1, 9 * CHUNK_BYTES - 1]

describe('import from files', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lepton-import-')) })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('readFileChunks yields the file in whole chunks, the last one shorter', async () => {
    for (const size of SIZES) {
      const data = randomBytes(size)
      const file = join(dir, `r${size}`)
      await writeFile(file, data)
      const chunks: Buffer[] = []
      for await (const c of readFileChunks(file, new ChunkPool())) chunks.push(Buffer.from(c)) // copies: the pool may reuse
      expect(chunks.slice(0, -1).every(c => c.byteLength === CHUNK_BYTES)).toBe(true)
      expect(Buffer.concat(chunks).equals(data)).toBe(true)
    }
  })

  it('the windowed leaf stage with pooled buffers gives the importer\'s CIDs', async () => {
    for (const size of SIZES) {
      const data = randomBytes(size)
      const file = join(dir, `c${size}`)
      await writeFile(file, data)
      const pool = new ChunkPool()
      const stored = new Map<string, Buffer>()
      const { importer: run, options } = await loadImporter({
        // copy: the buffer goes back to the pool right after
        put: async (cid, bytes) => { stored.set(cid.toString(), Buffer.from(bytes)) },
        release: (bytes) => { pool.give(bytes) }
      })
      const blockstore = { put: async (cid: CID, bytes: Uint8Array) => { stored.set(cid.toString(), Buffer.from(bytes)); return cid }, has: async () => false }
      let root = ''
      for await (const entry of run([{ content: readFileChunks(file, pool) }], blockstore as never, options)) root = entry.cid.toString()
      expect(root).toBe(await referenceCid(data))
      // every stored block hashes to its CID (no buffer was reused too early)
      for (const [cid, bytes] of stored) {
        if (cid.startsWith('bafkrei')) expect(createHash('sha256').update(bytes).digest('hex')).toBe(Buffer.from(CID.parse(cid).multihash.digest).toString('hex'))
      }
    }
  })
})

describe('index log records', () => {
  it('round-trip, and decoding stops at a torn or damaged record', () => {
    const cid = randomBytes(36)
    const records = [
      { type: RECORD_PUT, cid, entry: { pack: 7, offset: 2 ** 40 + 3, length: 262144, codec: 1 } },
      { type: RECORD_DEL, cid },
      { type: RECORD_PUT, cid, entry: { pack: 8, offset: 0, length: 0, codec: 0 } }
    ] as const
    const bytes = encodeRecords([...records])
    const all = decodeRecords(bytes)
    expect(all.validBytes).toBe(bytes.byteLength)
    expect(all.records.map(r => ({ ...r, cid: Buffer.from(r.cid) }))).toEqual(records.map(r => ({ ...r, cid: Buffer.from(r.cid) })))
    expect(decodeRecords(bytes.subarray(0, bytes.byteLength - 1)).records).toHaveLength(2)
    const damaged = Buffer.from(bytes)
    damaged[12] = (damaged[12] ?? 0) ^ 1 // inside the first record's body
    expect(decodeRecords(damaged)).toEqual({ records: [], validBytes: 0 })
  })
})
