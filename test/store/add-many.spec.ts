/**
 * Store.addMany: several adds in one write (one batch: one commit of the
 * index, one fdatasync per pack file it wrote), each with the CID a lone add
 * gives, held and pinned as a lone add would be.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { DiskBlockstore } from '../../src/store/blockstore.ts'
import { parseCid } from '../../src/store/index.ts'
import { bytesOf, kuboCid, readAll, startStorePeer, stopStorePeer } from './helpers.ts'
import type { StorePeer } from './helpers.ts'

describe('Store.addMany', () => {
  let peer: StorePeer
  let dir: string
  const packFiles = async (): Promise<number> => (await readdir(join(peer.dir, 'blocks', 'packs'))).length
  beforeAll(async () => {
    peer = await startStorePeer()
    dir = await mkdtemp(join(tmpdir(), 'lepton-add-many-'))
  })
  afterAll(async () => {
    await stopStorePeer(peer)
    await rm(dir, { recursive: true, force: true })
  })

  it('writes every source in one batch (its first MiB in the shared pack, the rest in one pack), each with the CID a lone add gives', async () => {
    const datas = [randomBytes(10), randomBytes(1000), randomBytes(262144 + 7), randomBytes(3 * 262144), randomBytes(1)]
    const file = join(dir, 'part.bin')
    const fileData = randomBytes(300_000)
    await writeFile(file, fileData)
    const before = await packFiles()
    const progress: number[] = []
    const sharedCommits = vi.spyOn(DiskBlockstore.prototype, 'commitShared')
    const ownCommits = vi.spyOn(DiskBlockstore.prototype, 'commitSegment')
    let added
    try {
      added = await peer.store.addMany([...datas.map(d => bytesOf(d)), file], { pin: false, provide: false, onProgress: ({ bytes }) => progress.push(bytes) })
      // six adds one at a time would have been six batches, six commits of the shared pack
      expect(sharedCommits).toHaveBeenCalledTimes(1)
      expect(ownCommits).toHaveBeenCalledTimes(1)
    } finally {
      sharedCommits.mockRestore()
      ownCommits.mockRestore()
    }
    expect(await packFiles()).toBe(before + 2)
    expect(added.map(a => a.size)).toEqual([...datas.map(d => d.length), fileData.length])
    const expected = await Promise.all([...datas, fileData].map(async d => await kuboCid([{ content: d }])))
    expect(added.map(a => a.cid)).toEqual(expected)
    for (const [i, d] of [...datas, fileData].entries()) {
      expect(Buffer.compare(await readAll(peer.store.cat(parseCid(added[i]?.cid as string))), d)).toBe(0)
    }
    expect(progress.at(-1)).toBe(datas.reduce((n, d) => n + d.length, 0) + fileData.length)
  })

  it('holds each root from gc until its release, like a lone add with hold', async () => {
    const datas = [randomBytes(5000), randomBytes(6000)]
    const added = await peer.store.addMany(datas.map(d => bytesOf(d)), { pin: false, provide: false, hold: true })
    expect(added.every(a => typeof a.release === 'function')).toBe(true)
    await peer.store.gc()
    for (const a of added) expect(await peer.store.localBlock(parseCid(a.cid))).toBeDefined()
    added[0]?.release?.()
    await peer.store.gc()
    expect(await peer.store.localBlock(parseCid(added[0]?.cid as string))).toBeUndefined()
    expect(await peer.store.localBlock(parseCid(added[1]?.cid as string))).toBeDefined()
    added[1]?.release?.()
  })

  it('pins each root when asked', async () => {
    const added = await peer.store.addMany([bytesOf(randomBytes(100)), bytesOf(randomBytes(200))], { provide: false })
    await peer.store.gc()
    for (const a of added) expect(await peer.store.localBlock(parseCid(a.cid))).toBeDefined()
  })
})
