/**
 * The store's headline flows with real daemons, through the CLI.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LocalMesh, cliJson, runCli, watchRss } from '../../scripts/local-mesh.ts'
import type { AddResult, PinInfo, StatResult } from '../../src/store/index.ts'

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

describe('store across daemons', () => {
  let mesh: LocalMesh
  beforeAll(async () => {
    mesh = await LocalMesh.start(4)
  })
  afterAll(async () => {
    await mesh?.stop()
  })

  it('A adds a 256 MiB file, B gets it by CID: identical bytes, B stays under 250 MiB RSS', async () => {
    const [a, b] = mesh.daemons
    if (a == null || b == null) throw new Error('mesh did not start')
    const file = join(mesh.dir, 'big.bin')
    await writeFile(file, randomBytes(256 * 1024 * 1024))
    const added = await cliJson<AddResult>(['add', file, '--repo', a.repo])
    expect(added.size).toBe(256 * 1024 * 1024)
    expect(added.cid).toMatch(/^bafybei/)

    const watch = watchRss(b.process.pid ?? 0)
    const out = join(mesh.dir, 'big.out')
    const res = await runCli(['get', added.cid, '-o', out, '--repo', b.repo], { timeoutMs: 120_000 })
    const peak = await watch.stop()
    expect(res.code, res.stderr).toBe(0)
    expect(await sha256File(out)).toBe(await sha256File(file))
    expect(peak).toBeGreaterThan(0)
    expect(peak).toBeLessThan(250)
    console.log(`fetcher peak RSS during a 256 MiB get: ${peak.toFixed(1)} MiB`)
  }, 180_000)

  it('--replicas 3 on a 4-peer mesh: 3 peers pin it; with the adder gone, the fourth still gets it', async () => {
    const adder = mesh.daemons[0]
    if (adder == null) throw new Error('mesh did not start')
    const file = join(mesh.dir, 'replicated.bin')
    const data = randomBytes(3 * 1024 * 1024 + 17)
    await writeFile(file, data)
    const added = await cliJson<AddResult>(['add', file, '--replicas', '3', '--repo', adder.repo])
    expect(added.replicas?.holders).toHaveLength(3)
    const holders = new Set(added.replicas?.holders)
    expect(holders.has(adder.peerId)).toBe(true)
    const pinnedOn = []
    for (const d of mesh.daemons) {
      const pins = await cliJson<PinInfo[]>(['pin', 'ls', '--repo', d.repo])
      if (pins.some(p => p.cid === added.cid)) pinnedOn.push(d.peerId)
    }
    expect(new Set(pinnedOn)).toEqual(holders)

    const outsider = mesh.daemons.find(d => !holders.has(d.peerId))
    if (outsider == null) throw new Error('no peer without a replica')
    expect((await adder.kill('SIGTERM')).code).toBe(0)
    const stat = await cliJson<StatResult>(['stat', added.cid, '--repo', outsider.repo])
    expect(stat.local).toBe(false)
    expect(stat.size).toBe(data.byteLength)
    const out = join(mesh.dir, 'replicated.out')
    const res = await runCli(['get', added.cid, '-o', out, '--repo', outsider.repo, '--timeout', '20'])
    expect(res.code, res.stderr).toBe(0)
    expect((await readFile(out)).equals(data)).toBe(true)
  }, 120_000)

  it('bad input: an invalid CID, and a CID nobody holds, fail with one clear line', async () => {
    const d = mesh.daemons[1]
    if (d == null) throw new Error('mesh did not start')
    let res = await runCli(['cat', 'not-a-cid', '--repo', d.repo])
    expect(res.code).toBe(1)
    expect(res.stderr).toBe('lepton: "not-a-cid" is not a valid CID (expected e.g. bafybei... or Qm...)\n')
    res = await runCli(['cat', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '--timeout', '2', '--repo', d.repo])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^lepton: nobody in reach holds bafkrei\S+ \(asked \d+ connected peers and the DHT for up to 2 s\)/)
  })
})
