import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import type { LeptonNode } from '../../src/node/index.ts'

describe('in-process mesh', () => {
  const nodes: LeptonNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  it('six nodes bootstrapped to the first all find each other through the DHT', async () => {
    const first = await createNode({ rtt: { intervalMs: 200 } })
    nodes.push(first)
    const bootstrap = first.getMultiaddrs().map(a => a.toString())
    for (let i = 0; i < 5; i++) {
      nodes.push(await createNode({ connector: { bootstrap, intervalMs: 200 }, rtt: { intervalMs: 200 } }))
    }
    await expect.poll(() => nodes.map(n => new Set(n.getConnections().map(c => c.remotePeer.toString())).size), { timeout: 10_000, interval: 100 })
      .toEqual([5, 5, 5, 5, 5, 5])
    // every node has a sub-millisecond-resolution RTT for every other
    await expect.poll(() => nodes.every(n => n.getPeers().every(p => (n.services.rtt.rttMs(p) ?? -1) > 0)), { timeout: 5_000 }).toBe(true)
    const rtt = nodes[1]?.services.rtt.rttMs(first.peerId)
    expect(rtt).toBeGreaterThan(0)
  })
})
