/**
 * Replication repair with real daemons: replication.graceS from config.json
 * reaches the store, and a holder that leaves is replaced within a minute.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cliJson, startDaemon } from '../../scripts/local-mesh.ts'
import { defaultConfig, initRepo } from '../../src/repo/index.ts'
import type { DaemonProcess } from '../../scripts/local-mesh.ts'
import type { AddResult, PinInfo } from '../../src/store/index.ts'

describe('replication repair across daemons', () => {
  const daemons: DaemonProcess[] = []
  let dir = ''
  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill('SIGTERM')))
    if (dir !== '') await rm(dir, { recursive: true, force: true, maxRetries: 5 })
  })

  async function pinnedOn (cid: string, among: DaemonProcess[]): Promise<string[]> {
    const out: string[] = []
    for (const d of among) {
      if ((await cliJson<PinInfo[]>(['pin', 'ls', '--repo', d.repo])).some(p => p.cid === cid)) out.push(d.peerId)
    }
    return out
  }

  it('--replicas 3 on 4 daemons with graceS 2: a holder killed, the fourth daemon pins a copy', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lepton-repair-'))
    for (let i = 0; i < 4; i++) {
      await initRepo(join(dir, `peer${i}`), { config: { replication: { ...defaultConfig().replication, graceS: 2 } } })
    }
    const first = await startDaemon({ repo: join(dir, 'peer0') })
    daemons.push(first)
    const bootstrap = [first.addresses[0] as string]
    for (let i = 1; i < 4; i++) daemons.push(await startDaemon({ repo: join(dir, `peer${i}`), bootstrap }))

    const file = join(dir, 'replicated.bin')
    await writeFile(file, randomBytes(1024 * 1024 + 3))
    const added = await cliJson<AddResult>(['add', file, '--replicas', '3', '--repo', first.repo])
    const holders = added.replicas?.holders ?? []
    expect(holders).toHaveLength(3)

    const gone = daemons.find(d => d !== first && holders.includes(d.peerId)) as DaemonProcess
    const outsider = daemons.find(d => !holders.includes(d.peerId)) as DaemonProcess
    expect((await gone.kill('SIGTERM')).code).toBe(0)
    const alive = daemons.filter(d => d !== gone)

    const deadline = Date.now() + 60_000
    while (!(await pinnedOn(added.cid, [outsider])).includes(outsider.peerId)) {
      if (Date.now() > deadline) throw new Error(`not repaired in 60 s:\n${alive.map(d => d.log()).join('\n')}`)
      await new Promise(resolve => setTimeout(resolve, 500))
    }
    expect((await pinnedOn(added.cid, alive)).sort()).toEqual(alive.map(d => d.peerId).sort())
    expect(alive.map(d => d.log()).join('\n')).toContain('replica repaired')
  }, 120_000)
})
