/**
 * Route choice from measured RTTs, with per-link delays injected into the RTT
 * monitor's echoes (the kernel here has no netem): A-B 200 ms, A-C and C-B
 * 10 ms; and a busy destination whose echoes lag at random. This checks the
 * route table (forwarding along it: forwarding.spec.ts).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import { Router } from '../../src/routing/index.ts'
import { mulberry32 } from '../../src/random.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
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

  /**
   * Nodes A, B and C, all connected, each with a router. `delays` maps "x>y" to the
   * delay x adds when echoing y's probes (a number, or a function for a fresh one
   * per echo); `intervalMs` is how often each probes and re-chooses its routes.
   */
  async function triangle (delays: Map<string, number | (() => number)>, intervalMs: number): Promise<{ a: LeptonNode, b: LeptonNode, c: LeptonNode, routerA: Router, names: Map<string, string> }> {
    const names = new Map<string, string>()
    const make = async (name: string): Promise<LeptonNode> => {
      const node = await createNode({
        rtt: { intervalMs, echoDelayMs: (peer: PeerId) => delayOf(delays, `${name}>${names.get(peer.toString()) ?? ''}`) },
        connector: { intervalMs: 200 }
      })
      names.set(node.peerId.toString(), name)
      nodes.push(node)
      const router = new Router(node, { gossipIntervalMs: 300, updateIntervalMs: intervalMs })
      router.start()
      routers.push(router)
      return node
    }
    const a = await make('A')
    const b = await make('B')
    const c = await make('C')
    await b.dial(a.getMultiaddrs()[0] as Multiaddr)
    await c.dial(a.getMultiaddrs()[0] as Multiaddr)
    await c.dial(b.getMultiaddrs()[0] as Multiaddr)
    return { a, b, c, routerA: routers[0] as Router, names }
  }

  it('routes A to B through C when the direct link is slow, and back direct when C goes', async () => {
    const delays = new Map<string, number>([['A>B', 200], ['B>A', 200], ['A>C', 10], ['C>A', 10], ['B>C', 10], ['C>B', 10]])
    const { b, c, routerA, names } = await triangle(delays, 200)
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

  it('keeps a busy destination on the direct link: a gain within the jitter of the links buys no detour', async () => {
    // A-B 20 ms and A-C-B 10 + 10 ms: equal paths. B is busy: every round trip to or from it
    // gains 0-60 ms of queueing at random (its echoes, and its own probes' echoes, as its event loop would)
    const random = mulberry32(61)
    const lag = (ms: number) => () => ms + random() * 60
    const delays = new Map<string, number | (() => number)>([
      ['A>B', lag(20)], ['B>A', lag(20)], ['C>B', lag(10)], ['B>C', lag(10)], ['A>C', 10], ['C>A', 10]
    ])
    const { a, b, c, routerA, names } = await triangle(delays, 100)
    const routeToB = (): string[] | undefined => routerA.routes().find(x => x.destination === b.peerId.toString())?.path.map(p => names.get(p) ?? p)
    // every link measured (and C's announcement heard) before we watch
    await expect.poll(() => routeToB() != null && routerA.routes().length === 2 && a.services.rtt.stats(c.peerId) != null, { timeout: 20_000, interval: 100 }).toBe(true)
    const paths = new Map<string, number>()
    const until = Date.now() + 12_000
    while (Date.now() < until) {
      const path = routeToB()?.join('>') ?? 'none'
      paths.set(path, (paths.get(path) ?? 0) + 1)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    console.log(`A->B over 12 s of noisy RTTs (jitter of A-B ${a.services.rtt.stats(b.peerId)?.jitterMs.toFixed(1)} ms):`, Object.fromEntries(paths))
    expect([...paths.keys()]).toEqual(['B'])
  }, 60_000)
})

describe('router announcements', () => {
  const routers: Router[] = []
  afterEach(() => { for (const r of routers.splice(0)) r.stop() })

  /**
   * A router on a stand-in node: one peer whose RTT the test sets, and a pubsub
   * that counts what is published. No network, so the only changes the router
   * sees are the test's.
   */
  async function routerWith (init: { gossipIntervalMs: number, gossipRefreshMs: number }): Promise<{ router: Router, published: () => number, setRtt: (ms: number) => void }> {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    let rttMs = 30
    let published = 0
    const node = {
      peerId: self,
      getPeers: () => [peer],
      services: {
        rtt: { stats: (p: PeerId) => p.equals(peer) ? { rttMs, jitterMs: 1, lastMs: rttMs, lossRate: 0, samples: 10 } : undefined },
        pubsub: {
          topicValidators: new Map(),
          subscribe: () => {},
          unsubscribe: () => {},
          addEventListener: () => {},
          removeEventListener: () => {},
          publish: async () => { published++ }
        }
      }
    } as unknown as LeptonNode
    const router = new Router(node, { ...init, updateIntervalMs: 50 })
    routers.push(router)
    router.start()
    return { router, published: () => published, setRtt: (ms: number) => { rttMs = ms } }
  }

  it('gossips a link table again when it changes, and an unchanged one not before the refresh', async () => {
    // a refresh far beyond the test: every announcement after the first has to be news
    const { router, published, setRtt } = await routerWith({ gossipIntervalMs: 50, gossipRefreshMs: 600_000 })
    await expect.poll(() => published(), { timeout: 10_000, interval: 20 }).toBe(1)
    // a dozen checks with nothing new, then noise within the link's margin (25% of 30 ms)
    await expect.poll(() => router.announcements.skipped, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(12)
    setRtt(36)
    const skipped = router.announcements.skipped
    await expect.poll(() => router.announcements.skipped, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(skipped + 6)
    expect(published()).toBe(1)
    // the link slows five-fold: announced at the next check
    setRtt(150)
    await expect.poll(() => published(), { timeout: 10_000, interval: 20 }).toBe(2)
    expect(router.announcements.sent).toBe(2)
  })

  it('announces an unchanged link table again once the refresh time has passed', async () => {
    const { router, published } = await routerWith({ gossipIntervalMs: 50, gossipRefreshMs: 500 })
    await expect.poll(() => published(), { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(3)
    // between refreshes the unchanged table was skipped at every check (~9 of every 10)
    expect(router.announcements.skipped).toBeGreaterThan(published())
  })
})

function delayOf (delays: Map<string, number | (() => number)>, link: string): number {
  const d = delays.get(link) ?? 0
  return typeof d === 'function' ? d() : d
}
