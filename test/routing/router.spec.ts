/**
 * Route choice from measured RTTs, with per-link delays injected into the RTT
 * monitor's echoes (the kernel here has no netem): A-B 200 ms, A-C and C-B
 * 10 ms. This checks the route table; forwarding along it is not built yet.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import { Router } from '../../src/routing/index.ts'
import type { LeptonNode } from '../../src/node/index.ts'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'

describe('router', () => {
  const nodes: LeptonNode[] = []
  const routers: Router[] = []
  afterEach(async () => {
    for (const r of routers.splice(0)) r.stop()
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  it('routes A to B through C when the direct link is slow, and back direct when C goes', async () => {
    const delays = new Map<string, number>() // "x>y": delay x adds when echoing y's probes
    const names = new Map<string, string>()
    const make = async (name: string): Promise<LeptonNode> => {
      const node = await createNode({
        rtt: { intervalMs: 200, echoDelayMs: (peer: PeerId) => delays.get(`${name}>${names.get(peer.toString()) ?? ''}`) ?? 0 },
        connector: { intervalMs: 200 }
      })
      names.set(node.peerId.toString(), name)
      nodes.push(node)
      const router = new Router(node, { gossipIntervalMs: 300, updateIntervalMs: 200 })
      router.start()
      routers.push(router)
      return node
    }
    for (const [link, ms] of [['A>B', 200], ['B>A', 200], ['A>C', 10], ['C>A', 10], ['B>C', 10], ['C>B', 10]] as const) delays.set(link, ms)
    const a = await make('A')
    const b = await make('B')
    const c = await make('C')
    await b.dial(a.getMultiaddrs()[0] as Multiaddr)
    await c.dial(a.getMultiaddrs()[0] as Multiaddr)
    await c.dial(b.getMultiaddrs()[0] as Multiaddr)
    const routerA = routers[0] as Router
    const routeToB = (): { path: string[], improvement: number, rttMs: number } | undefined => {
      const r = routerA.routes().find(x => x.destination === b.peerId.toString())
      return r == null ? undefined : { path: r.path.map(p => names.get(p) ?? p), improvement: r.improvement, rttMs: r.rttMs }
    }
    // within 30 s of start: through C, and E = (T0 - T) / T0 >= 0.8 once the estimates settle
    await expect.poll(() => {
      const r = routeToB()
      return r != null && r.path.join() === 'C,B' && r.improvement >= 0.8
    }, { timeout: 30_000, interval: 250 }).toBe(true)
    const viaC = routeToB()
    console.log(`A->B via C: ${viaC?.rttMs.toFixed(1)} ms, E = ${viaC?.improvement.toFixed(3)}`)
    expect(viaC?.path).toEqual(['C', 'B'])
    expect(viaC?.improvement).toBeGreaterThanOrEqual(0.8)

    // C leaves: the route falls back to the direct link
    const cIndex = nodes.indexOf(c)
    routers[cIndex]?.stop()
    await c.stop()
    await expect.poll(() => routeToB()?.path, { timeout: 10_000, interval: 250 }).toEqual(['B'])
  })
})
