import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { rawCid } from '../../src/jobs/index.ts'
import { PinSet } from '../../src/store/pins.ts'
import { randomBytes } from 'node:crypto'
import { setTimeout } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import { startStorePeer, stopStorePeer } from './helpers.ts'
import type { StorePeer } from './helpers.ts'

describe('pins', () => {
  const dirs: string[] = []
  afterEach(async () => { await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) })) })

  it('pinning one CID many times at once succeeds (found by the soak: two jobs storing the same module)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lepton-pins-'))
    dirs.push(dir)
    const pins = new PinSet(join(dir, 'pins'))
    await pins.open()
    const cid = rawCid(new TextEncoder().encode('export function map () {}'))
    await Promise.all(Array.from({ length: 16 }, async () => { await pins.add(cid) }))
    expect((await pins.ls()).map(p => p.cid)).toEqual([cid.toString()])
    // no temporary file is left behind
    expect((await readdir(join(dir, 'pins'))).filter(f => f.startsWith('.'))).toEqual([])
  })
})

describe('holds', () => {
  const peers: StorePeer[] = []
  afterEach(async () => { await Promise.all(peers.splice(0).map(stopStorePeer)) })

  const bytesOf = (text: string): AsyncIterable<Uint8Array> => (async function * () { yield new TextEncoder().encode(text) })()

  it('an unpinned add is kept from gc while held, and collected once every hold on it has ended', async () => {
    const peer = await startStorePeer()
    peers.push(peer)
    const added = await peer.store.add(bytesOf('job data '.repeat(1000)), { pin: false, provide: false, hold: true })
    expect(added.release).toBeTypeOf('function')
    const cid = CID.parse(added.cid)
    expect(await peer.store.pinLs()).toEqual([])
    // a second hold on the same CID (the job taking over from the planner)
    const second = peer.store.hold(cid)
    expect((await peer.store.gc()).removed).toBe(0)
    added.release?.()
    added.release?.() // idempotent: does not end the other hold
    expect((await peer.store.gc()).removed).toBe(0)
    expect(await peer.store.localBlock(cid)).toBeDefined()
    second()
    expect((await peer.store.gc()).removed).toBe(1)
    expect(await peer.store.localBlock(cid)).toBeUndefined()
  })

  it('a hold never takes away a pin: the pinned add outlives the release', async () => {
    const peer = await startStorePeer()
    peers.push(peer)
    const pinned = await peer.store.add(bytesOf('kept by the user'))
    const release = peer.store.hold(CID.parse(pinned.cid))
    release()
    expect((await peer.store.gc()).removed).toBe(0)
    expect((await peer.store.pinLs()).map(p => p.cid)).toEqual([pinned.cid])
  })

  it('past its cache budget the store runs gc by itself: unpinned blocks go, pinned and held ones stay', async () => {
    const peer = await startStorePeer({ cacheBytes: 1024 * 1024, cacheCheckMs: 50 })
    peers.push(peer)
    const random = (bytes: number): AsyncIterable<Uint8Array> => (async function * () { yield randomBytes(bytes) })()
    const pinned = await peer.store.add(random(300_000))
    const held = await peer.store.add(random(300_000), { pin: false, hold: true })
    const cache: string[] = []
    // under the budget: nothing is collected
    cache.push((await peer.store.add(random(400_000), { pin: false })).cid)
    await setTimeout(300)
    expect(await peer.store.localBlock(CID.parse(cache[0] as string))).toBeDefined()
    // in one batch: the store holds gc off while it writes, so no pass can run between these adds and leave the
    // later ones under the budget of a new baseline
    const more = await peer.store.addMany([random(400_000), random(400_000), random(400_000)], { pin: false })
    cache.push(...more.map(r => r.cid))
    const deadline = Date.now() + 10_000
    // wait for the pass that collects them all
    const anyLeft = async (): Promise<boolean> => {
      for (const cid of cache) if (await peer.store.localBlock(CID.parse(cid)) != null) return true
      return false
    }
    while (await anyLeft() && Date.now() < deadline) await setTimeout(50)
    for (const cid of cache) expect(await peer.store.localBlock(CID.parse(cid))).toBeUndefined()
    expect(await peer.store.localBlock(CID.parse(pinned.cid))).toBeDefined()
    expect(await peer.store.localBlock(CID.parse(held.cid))).toBeDefined()
  })
})
