import { generateKeyPair } from '@libp2p/crypto/keys'
import { TypedEventEmitter } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { peerConnector } from '../../src/routing/index.ts'
import type { PeerConnectorComponents } from '../../src/routing/index.ts'
import type { Libp2pEvents, PeerId, PeerInfo, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

async function newPeerId (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/**
 * Just enough of libp2p for the connector: a peer store that keeps merged
 * addresses, a connection manager whose dials always succeed (and are
 * recorded), and the DHT lookup the test scripts.
 */
async function fakeNode (lookup: (call: number) => PeerInfo[]): Promise<{
  components: PeerConnectorComponents
  dialled: string[]
  lookups: () => number
}> {
  const self = await newPeerId()
  const bootstrap = await newPeerId()
  const store = new Map<string, { id: PeerId, addresses: Array<{ multiaddr: Multiaddr }> }>()
  const connections: Array<{ remotePeer: PeerId }> = []
  const dialled: string[] = []
  let calls = 0
  const components = {
    peerId: self,
    events: new TypedEventEmitter<Libp2pEvents>(),
    peerStore: {
      merge: async (id: PeerId, data: { multiaddrs: Multiaddr[] }) => {
        store.set(id.toString(), { id, addresses: data.multiaddrs.map(m => ({ multiaddr: m })) })
      },
      all: async () => [...store.values()]
    },
    connectionManager: {
      getConnections: () => connections,
      openConnection: async (target: PeerId | Multiaddr) => {
        const remotePeer = 'toMultihash' in target ? target : bootstrap
        dialled.push(remotePeer.toString())
        connections.push({ remotePeer })
        return { remotePeer }
      },
      closeConnections: async () => {}
    }
  } as unknown as PeerConnectorComponents
  const closest = async function * (): AsyncGenerator<PeerInfo> {
    yield * lookup(calls++)
  }
  return {
    components: { ...components, peerRouting: { getClosestPeers: closest } as unknown as PeerConnectorComponents['peerRouting'] },
    dialled,
    lookups: () => calls
  }
}

describe('peer connector discovery', () => {
  const running: Startable[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map(async c => { await c.stop() }))
  })

  async function start (components: PeerConnectorComponents): Promise<void> {
    const bootstrap = `/ip4/127.0.0.1/tcp/4001/p2p/${(await newPeerId()).toString()}`
    const connector = peerConnector({ bootstrap: [bootstrap], intervalMs: 100 })(components) as unknown as Startable
    running.push(connector)
    await connector.start()
    connector.afterStart?.()
  }

  it('walks the DHT again within seconds when the join lookup met nobody new, and dials who the next walk meets', async () => {
    // Peers that join at the same moment are not yet in the routing tables of the peers they ask:
    // the join lookup meets nobody; the peer that joined alongside shows up from the next walk on.
    const sibling = await newPeerId()
    const node = await fakeNode(call => call === 0 ? [] : [{ id: sibling, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4002')] }])
    await start(node.components)
    // the next regular walk would be 15 s or more away; the first ones after joining come within seconds
    await expect.poll(() => node.dialled.includes(sibling.toString()), { timeout: 8_000, interval: 100 }).toBe(true)
    expect(node.lookups()).toBeGreaterThanOrEqual(2)
  })

  it('walks that meet nobody new back off: a handful of walks, not one per check', async () => {
    const node = await fakeNode(() => [])
    await start(node.components)
    // the join lookup, then walks a second apart (1-5 s after joining), then waits of 2 s, 4 s, 8 s:
    // the eighth lookup is the one at ~11 s
    await expect.poll(() => node.lookups(), { timeout: 20_000, interval: 100 }).toBeGreaterThanOrEqual(8)
    // the connector checks every 100 ms here, 40 times in the 4 s that follow; the next walk is due
    // 8 s after the last (a walk on every check, or every second, would be 4 or more)
    const seen = node.lookups()
    await new Promise(resolve => setTimeout(resolve, 4_000))
    expect(node.lookups() - seen).toBeLessThanOrEqual(1)
    expect(node.dialled).toHaveLength(1) // the bootstrap peer, and nobody else to dial
  })
})
