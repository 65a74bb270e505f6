import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { rawCid } from '../../src/jobs/index.ts'
import { PinSet } from '../../src/store/pins.ts'
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
})
