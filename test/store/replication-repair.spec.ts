import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import { holdersToProbe, pickCandidates, planRepair } from '../../src/store/index.ts'
import { startStorePeer, stopStorePeer } from './helpers.ts'
import type { StorePeer } from './helpers.ts'

describe('repair decisions (pure)', () => {
  const record = { cid: 'bafy', wanted: 3, holders: ['b', 'c', 'd'] }
  it('a holder unseen for longer than the grace period is dead; the lowest live id leads', () => {
    const seen = new Map([['b', 0], ['c', 9_000], ['d', 9_500]])
    const asC = planRepair(record, 'c', seen, 10_000, 5_000)
    expect(asC).toEqual({ dead: ['b'], live: ['c', 'd'], leader: true, missing: 1 })
    const asD = planRepair(record, 'd', seen, 10_000, 5_000)
    expect(asD.leader).toBe(false)
    expect(asD.missing).toBe(1)
    // within the grace period nobody is dead and nothing is missing
    expect(planRepair(record, 'c', seen, 4_000, 5_000)).toEqual({ dead: [], live: ['b', 'c', 'd'], leader: false, missing: 0 })
  })

  it('holders not connected and unseen for half the grace period are dialled before they can count as dead', () => {
    const seen = new Map([['b', 0], ['c', 9_000], ['d', 0], ['e', 0]])
    const records = [record, { cid: 'bafz', wanted: 2, holders: ['c', 'e'] }]
    // b: unseen 10 s, not connected -> dial; c: seen recently; d: connected; e: in the second record
    expect(holdersToProbe(records, 'c', new Set(['d']), seen, 10_000, 5_000)).toEqual(['b', 'e'])
    // a holder never seen yet (this peer just started) has its clock started, not dialled
    expect(holdersToProbe(records, 'c', new Set(), new Map(), 10_000, 5_000)).toEqual([])
  })

  it('new copies go to the nearest connected peers that hold none', () => {
    expect(pickCandidates([{ peerId: 'x', rttMs: 9 }, { peerId: 'b', rttMs: 1 }, { peerId: 'y', rttMs: 2 }, { peerId: 'z', rttMs: undefined }], ['b', 'c'])).toEqual(['y', 'x', 'z'])
  })
})

describe('replication repair across peers', () => {
  const peers: StorePeer[] = []
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await stopStorePeer(p).catch(() => {}) }))
  })

  async function pinnedOn (cid: string, among: StorePeer[]): Promise<string[]> {
    const out: string[] = []
    for (const p of among) if ((await p.store.pinLs()).some(x => x.cid === cid)) out.push(p.node.peerId.toString())
    return out
  }

  async function until (check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!await check()) {
      if (Date.now() > deadline) throw new Error('not repaired in time')
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }

  it('keeps 3 live holders of a --replicas 3 CID when holders leave, the adder included', async () => {
    const opts = { replicaGraceMs: 1500, replicaCheckMs: 300 }
    const a = await startStorePeer(opts)
    peers.push(a)
    const bootstrap = [a.node.getMultiaddrs()[0]?.toString() as string]
    for (let i = 0; i < 5; i++) peers.push(await startStorePeer({ ...opts, bootstrap }))
    await until(async () => peers.every(p => p.node.getPeers().length >= peers.length - 1), 20_000)
    const added = await a.store.add((async function * () { yield randomBytes(1024 * 1024 + 7) })(), { replicas: 3 })
    const cid = added.cid
    expect(added.replicas?.holders).toHaveLength(3)
    expect(await pinnedOn(cid, peers)).toHaveLength(3)

    // a holder that is not the adder leaves
    const firstGone = peers.find(p => p !== a && added.replicas?.holders.includes(p.node.peerId.toString())) as StorePeer
    await stopStorePeer(firstGone)
    peers.splice(peers.indexOf(firstGone), 1)
    await until(async () => (await pinnedOn(cid, peers)).length >= 3, 60_000)
    const afterFirst = await pinnedOn(cid, peers)
    expect(afterFirst).toHaveLength(3)

    // then the adder leaves too: the remaining holders repair again (another leader)
    await stopStorePeer(a)
    peers.splice(peers.indexOf(a), 1)
    await until(async () => (await pinnedOn(cid, peers)).length >= 3, 60_000)
    const holders = await pinnedOn(cid, peers)
    expect(holders).toHaveLength(3)
    // and the content is really there: a peer that holds no copy reads it
    const reader = peers.find(p => !holders.includes(p.node.peerId.toString()))
    let size = 0
    for await (const chunk of (reader as StorePeer).store.cat(CID.parse(cid), { timeoutMs: 10_000 })) size += chunk.byteLength
    expect(size).toBe(1024 * 1024 + 7)
  }, 150_000)
})
