/**
 * CIDs must equal what IPFS gives with `ipfs add --cid-version 1 --raw-leaves
 * --chunker size-262144`. The reference is ipfs-unixfs-importer run with
 * kubo's settings spelled out here, independently of src/store's options.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCid } from '../../src/store/index.ts'
import { bytesOf, kuboCid, startStorePeer, stopStorePeer } from './helpers.ts'
import type { StorePeer } from './helpers.ts'

describe('CIDs match IPFS', () => {
  let peer: StorePeer
  let dir: string
  beforeAll(async () => {
    peer = await startStorePeer()
    dir = await mkdtemp(join(tmpdir(), 'lepton-cid-'))
  })
  afterAll(async () => {
    await stopStorePeer(peer)
    await rm(dir, { recursive: true, force: true })
  })

  it('the empty file has the well-known CID', async () => {
    const res = await peer.store.add(bytesOf(new Uint8Array(0)))
    expect(res.cid).toBe('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
    expect(res.size).toBe(0)
  })

  const sizes: Array<[string, number]> = [['1 byte', 1], ['exactly one chunk', 262144], ['one chunk and a byte', 262145], ['many chunks (two levels)', 174 * 262144 + 5]]
  for (const [name, size] of sizes) {
    it(`${name}: same CID as the importer with kubo's options`, async () => {
      const data = randomBytes(size)
      const file = join(dir, `f${size}`)
      await writeFile(file, data)
      const res = await peer.store.add(file)
      expect(res.cid).toBe(await kuboCid([{ content: data }]))
      expect(res.size).toBe(size)
      // and bytes come back identical
      const chunks: Uint8Array[] = []
      for await (const c of peer.store.cat(parseCid(res.cid))) chunks.push(c)
      expect(Buffer.concat(chunks).equals(data)).toBe(true)
    })
  }

  it('a directory: same root CID as the importer', async () => {
    const root = join(dir, 'photos')
    await mkdir(join(root, 'sub'), { recursive: true })
    const a = randomBytes(1000)
    const b = Buffer.from('hello lepton\n')
    const c = randomBytes(300_000)
    await writeFile(join(root, 'a.bin'), a)
    await writeFile(join(root, 'b.txt'), b)
    await writeFile(join(root, 'sub', 'c.bin'), c)
    const res = await peer.store.add(root)
    const expected = await kuboCid([
      { path: 'photos/a.bin', content: a },
      { path: 'photos/b.txt', content: b },
      { path: 'photos/sub/c.bin', content: c }
    ])
    expect(res.cid).toBe(expected)
  })
})
