import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { rawCid } from '../../src/jobs/index.ts'
import { PinSet } from '../../src/store/pins.ts'

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
