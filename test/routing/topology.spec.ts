import { describe, expect, it } from 'vitest'
import { planPrune } from '../../src/routing/topology.ts'
import type { ConnectedPeer } from '../../src/routing/topology.ts'
import { mulberry32 } from '../../src/random.ts'

const peers = (rtts: Array<number | undefined>): ConnectedPeer[] => rtts.map((rttMs, i) => ({ peerId: `p${String(i).padStart(2, '0')}`, rttMs }))

describe('planPrune', () => {
  it('prunes nothing at or under the target', () => {
    const plan = planPrune(peers([5, 1, 3]), { nearest: 1, random: 0, target: 3 }, mulberry32(1))
    expect(plan.prune).toEqual([])
    expect(plan.keep.sort()).toEqual(['p00', 'p01', 'p02'])
  })

  it('keeps the nearest, some random ones and every unmeasured peer; prunes down to the target, slowest first', () => {
    const list = peers([50, 10, 30, 20, 40, 60, 70, undefined, 80, 90])
    const plan = planPrune(list, { nearest: 2, random: 1, target: 5 }, mulberry32(7))
    expect(plan.keep).toContain('p01') // 10 ms
    expect(plan.keep).toContain('p03') // 20 ms
    expect(plan.keep).toContain('p07') // not measured yet
    expect(plan.keep).toHaveLength(5)
    expect(plan.prune).toHaveLength(5)
    const rtt = (id: string): number => list.find(p => p.peerId === id)?.rttMs as number
    for (let i = 1; i < plan.prune.length; i++) expect(rtt(plan.prune[i - 1] as string)).toBeGreaterThanOrEqual(rtt(plan.prune[i] as string))
    expect(new Set([...plan.keep, ...plan.prune]).size).toBe(list.length)
  })

  it('the random keeps vary with the randomness but the nearest never do', () => {
    const list = peers(Array.from({ length: 30 }, (_, i) => 100 - i))
    const randomKept = new Set<string>()
    for (let seed = 1; seed <= 20; seed++) {
      const plan = planPrune(list, { nearest: 3, random: 2, target: 5 }, mulberry32(seed))
      for (const id of ['p29', 'p28', 'p27']) expect(plan.keep).toContain(id)
      for (const id of plan.keep) if (!['p29', 'p28', 'p27'].includes(id)) randomKept.add(id)
    }
    expect(randomKept.size).toBeGreaterThan(5)
  })

  it('keeps unmeasured peers even when that exceeds the target', () => {
    const plan = planPrune(peers([undefined, undefined, undefined, 5, 6]), { nearest: 1, random: 0, target: 2 }, mulberry32(3))
    expect(plan.keep.sort()).toEqual(['p00', 'p01', 'p02', 'p03'])
    expect(plan.prune).toEqual(['p04'])
  })
})

describe('peer connector pruning (in-process nodes)', () => {
  it('over the high-water mark, a node drops its slowest peers and keeps the nearest', async () => {
    const { createNode } = await import('../../src/node/index.ts')
    const delayOf = new Map<string, number>()
    // five leaves whose echoes are held 0, 60, 120, 180, 240 ms: the hub measures those RTTs (steps
    // of 60 ms, so the CPU load of a full test run, which adds tens of ms to loopback RTTs, cannot
    // reorder them)
    const leaves = await Promise.all([0, 60, 120, 180, 240].map(async (ms) => {
      const leaf = await createNode({ rtt: { intervalMs: 100, echoDelayMs: () => ms }, connector: { intervalMs: 1e9 } })
      delayOf.set(leaf.peerId.toString(), ms)
      return leaf
    }))
    const hub = await createNode({ rtt: { intervalMs: 100 }, connector: { intervalMs: 300, targetConnections: 2, highWaterConnections: 3, keepNearest: 1, keepRandom: 0 } })
    try {
      // all leaves connect first, before the hub has any RTT (unmeasured peers are kept)
      for (const leaf of leaves) await leaf.dial(hub.getMultiaddrs()[0] as import('@multiformats/multiaddr').Multiaddr)
      await expect.poll(() => hub.getPeers().length, { timeout: 15_000, interval: 100 }).toBe(2)
      // peers not yet measured are kept too, so which second peer stays depends on timing;
      // the nearest always does (the order of pruning is covered by planPrune's tests)
      expect(hub.getPeers().map(p => delayOf.get(p.toString()))).toContain(0)
    } finally {
      await hub.stop()
      await Promise.all(leaves.map(async l => { await l.stop() }))
    }
  })
})
