/**
 * A node restarted on a peer store that remembers its neighbours: libp2p
 * re-dials the ones tagged keep-alive while its services are still starting.
 * Those connections must not be identified before gossipsub has registered
 * for new peers, or gossipsub never hears of them and the node's gossip goes
 * nowhere (the submitter restarted mid-job in test/e2e/jobs.spec.ts waited for
 * workers until the test's timeout, on CI and here).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { KEEP_ALIVE } from '@libp2p/interface'
import { MemoryDatastore } from 'datastore-core'
import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import type { LeptonNode } from '../../src/node/index.ts'

const TOPIC = 'restart-test'

describe('restart on a remembered peer store', () => {
  const nodes: LeptonNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  it('the keep-alive peers libp2p re-dials at start become gossip peers: a publish reaches them', async () => {
    const other = await createNode()
    nodes.push(other)
    other.services.pubsub.subscribe(TOPIC)

    const privateKey = await generateKeyPair('Ed25519')
    const datastore = new MemoryDatastore()
    // the first run: it knows `other` and tags it keep-alive (as kad-dht does with its closest peers)
    const first = await createNode({ privateKey, datastore })
    await first.peerStore.merge(other.peerId, { multiaddrs: other.getMultiaddrs(), tags: { [`${KEEP_ALIVE}-test`]: { value: 1 } } })
    await first.stop()

    // the restart, with a gossipsub that takes 500 ms to start: in a daemon its start took
    // 360 ms (its protocol registrations queue behind the other services' writes of the
    // node's own peer record), while a loopback dial and identify take ~50 ms
    const restarted = await createNode({ privateKey, datastore, start: false })
    nodes.push(restarted)
    // the service is a Startable, though its public type does not say so
    const pubsub = restarted.services.pubsub as unknown as { start: () => Promise<void> }
    const startPubsub = pubsub.start.bind(pubsub)
    pubsub.start = async () => {
      await new Promise(resolve => setTimeout(resolve, 500))
      await startPubsub()
    }
    await restarted.start()
    restarted.services.pubsub.subscribe(TOPIC)

    // it reconnects to `other` (libp2p's keep-alive re-dial once the gate is open, or the connector)
    await expect.poll(() => restarted.getConnections(other.peerId).length, { timeout: 10_000 }).toBeGreaterThan(0)
    // and gossip flows both ways: each side sees the other subscribed, and a message arrives
    await expect.poll(() => restarted.services.pubsub.getSubscribers(TOPIC).map(String), { timeout: 10_000 }).toContain(other.peerId.toString())
    await expect.poll(() => other.services.pubsub.getSubscribers(TOPIC).map(String), { timeout: 10_000 }).toContain(restarted.peerId.toString())
    const got = new Promise<string>(resolve => {
      other.services.pubsub.addEventListener('message', (evt) => { if (evt.detail.topic === TOPIC) resolve(new TextDecoder().decode(evt.detail.data)) })
    })
    await restarted.services.pubsub.publish(TOPIC, new TextEncoder().encode('hello after restart'))
    expect(await got).toBe('hello after restart')
  })
})
