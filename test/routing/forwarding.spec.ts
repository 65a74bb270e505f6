/**
 * Traffic follows the chosen route, with real delays on the data (a TCP
 * wrapper, since the kernel here has no netem): A-B 200 ms RTT, A-C and C-B
 * 10 ms. A's block fetches from B go through C (circuit relay); when C leaves,
 * they go direct again.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/log.ts'
import { createNode } from '../../src/node/index.ts'
import { Router } from '../../src/routing/index.ts'
import { BLOCKS_PROTOCOL, createStore, parseCid } from '../../src/store/index.ts'
import { delayedTcp } from '../helpers/delay-transport.ts'
import type { LeptonNode } from '../../src/node/index.ts'
import type { Store } from '../../src/store/index.ts'
import type { Multiaddr } from '@multiformats/multiaddr'

interface Peer { name: string, node: LeptonNode, router: Router, store: Store, dir: string }

async function readAll (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of source) chunks.push(c)
  return Buffer.concat(chunks)
}

async function * bytesOf (data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data
}

describe('forwarding along the chosen route', () => {
  const peers: Peer[] = []
  afterEach(async () => {
    for (const p of peers.splice(0)) {
      p.router.stop()
      await p.store.stop().catch(() => {})
      await p.node.stop()
      await rm(p.dir, { recursive: true, force: true })
    }
  })

  it('A fetches from B through C while A-B is slow, and directly once C is gone', async () => {
    const oneWayMs: Record<string, number> = { 'A-B': 100, 'A-C': 5, 'B-C': 5 }
    const nameOfPort = new Map<number, string>()
    const streamsTo: Array<{ protocol: string, path: string[] }> = []
    const make = async (name: string): Promise<Peer> => {
      const node = await createNode({
        relay: true,
        rtt: { intervalMs: 200 },
        connector: { intervalMs: 200 },
        // the dialling side delays its connection: by pair, from the remote's listen port
        transport: delayedTcp({
          oneWayDelayMs: (remote) => {
            if (remote.direction !== 'outbound') return 0
            const other = nameOfPort.get(remote.port) ?? ''
            return oneWayMs[[name, other].sort().join('-')] ?? 0
          }
        })
      })
      nameOfPort.set(Number(node.getMultiaddrs()[0]?.toString().split('/')[4]), name)
      const router = new Router(node, { gossipIntervalMs: 300, updateIntervalMs: 200 })
      router.start()
      const dir = await mkdtemp(join(tmpdir(), `lepton-fwd-${name}-`))
      const store = createStore({
        node,
        repoPath: dir,
        log: silentLogger,
        openStream: async (peer, protocol, signal) => {
          streamsTo.push({ protocol, path: router.routeTo(peer.toString())?.path.map(p => names.get(p) ?? p) ?? [] })
          return await router.openStream(peer, protocol, signal)
        }
      })
      await store.start()
      const peer = { name, node, router, store, dir }
      peers.push(peer)
      return peer
    }
    const names = new Map<string, string>()
    const a = await make('A')
    const b = await make('B')
    const c = await make('C')
    for (const p of [a, b, c]) names.set(p.node.peerId.toString(), p.name)
    const addr = (p: Peer): Multiaddr => p.node.getMultiaddrs()[0] as Multiaddr
    await a.node.dial(addr(b))
    await a.node.dial(addr(c))
    await b.node.dial(addr(c))

    // A's route to B goes through C; B can be reached through C (it holds a reservation there)
    const pathToB = (): string[] | undefined => a.router.routeTo(b.node.peerId.toString())?.path.map(p => names.get(p) ?? p)
    // within 30 s of start: through C, with E = (T0 - T) / T0 >= 0.8
    await expect.poll(() => {
      const route = a.router.routeTo(b.node.peerId.toString())
      return route != null && route.path.map(p => names.get(p)).join() === 'C,B' && route.improvement >= 0.8
    }, { timeout: 30_000, interval: 200 }).toBe(true)
    console.log(`A->B via C: E = ${a.router.routeTo(b.node.peerId.toString())?.improvement.toFixed(3) ?? '?'} (real delays on the data)`)
    await expect.poll(() => b.node.services.forwarder?.hasReservation(c.node.peerId), { timeout: 30_000, interval: 200 }).toBe(true)

    const first = randomBytes(3 * 262144 + 11)
    const { cid } = await b.store.add(bytesOf(first))
    expect((await readAll(a.store.cat(parseCid(cid)))).equals(first)).toBe(true)
    expect(streamsTo.filter(s => s.protocol === BLOCKS_PROTOCOL).map(s => s.path)).toContainEqual(['C', 'B'])
    const relayed = a.node.getConnections(b.node.peerId).filter(conn => conn.remoteAddr.toString().includes(`/p2p/${c.node.peerId.toString()}/p2p-circuit`))
    expect(relayed.length).toBeGreaterThan(0)

    // C leaves: the route and the traffic go direct
    const gone = peers.indexOf(c)
    peers.splice(gone, 1)
    c.router.stop()
    await c.store.stop()
    await c.node.stop()
    await rm(c.dir, { recursive: true, force: true })
    await expect.poll(pathToB, { timeout: 10_000, interval: 200 }).toEqual(['B'])
    streamsTo.length = 0
    const second = randomBytes(2 * 262144 + 5)
    const added = await b.store.add(bytesOf(second))
    expect((await readAll(a.store.cat(parseCid(added.cid), { timeoutMs: 10_000 }))).equals(second)).toBe(true)
    expect(a.node.getConnections(b.node.peerId).every(conn => !conn.remoteAddr.toString().includes('/p2p-circuit'))).toBe(true)
  })
})
