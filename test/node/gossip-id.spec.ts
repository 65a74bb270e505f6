/**
 * Gossipsub's fast message id (src/node/gossip-id.ts): copies of a message
 * already verified are dropped before their signatures are checked again, and
 * only byte-identical copies count as copies.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import { gossipFastMessageId } from '../../src/node/gossip-id.ts'
import type { GossipRpcMessage } from '../../src/node/gossip-id.ts'
import type { LeptonNode } from '../../src/node/index.ts'
import type { Multiaddr } from '@multiformats/multiaddr'

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b)
const message: GossipRpcMessage = { from: bytes(1, 2, 3), seqno: bytes(0, 0, 7), topic: 't', data: bytes(9, 9), signature: bytes(5, 5, 5), key: bytes(4) }

describe('gossip fast message id', () => {
  it('is the same for the same bytes, different for any field that differs', () => {
    expect(gossipFastMessageId({ ...message, data: bytes(9, 9) })).toBe(gossipFastMessageId(message))
    const others: GossipRpcMessage[] = [
      { ...message, from: bytes(1, 2, 4) },
      { ...message, seqno: bytes(0, 0, 8) },
      { ...message, topic: 'u' },
      { ...message, data: bytes(9, 8) },
      // a forged signature on the same payload is not a copy of the verified message
      { ...message, signature: bytes(5, 5, 6) },
      { ...message, key: bytes(3) },
      // field boundaries count: bytes moved from one field to the next
      { ...message, data: bytes(9), signature: bytes(9, 5, 5, 5) },
      // absent is not empty
      { ...message, key: undefined },
      { ...message, key: bytes() }
    ]
    const ids = new Set([gossipFastMessageId(message), ...others.map(gossipFastMessageId)])
    expect(ids.size).toBe(others.length + 1)
  })

  describe('in a mesh', () => {
    const nodes: LeptonNode[] = []
    afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

    it('recognises the copies a node receives from several peers by their fast id', async () => {
      for (let i = 0; i < 4; i++) nodes.push(await createNode({ connector: { intervalMs: 200 }, rtt: { intervalMs: 1000 } }))
      for (let i = 0; i < nodes.length; i++) {
        for (let j = i + 1; j < nodes.length; j++) await (nodes[i] as LeptonNode).dial((nodes[j] as LeptonNode).getMultiaddrs()[0] as Multiaddr)
      }
      const topic = 'gossip-id-test'
      const received = nodes.map(() => 0)
      nodes.forEach((n, i) => {
        n.services.pubsub.subscribe(topic)
        n.services.pubsub.addEventListener('message', evt => { if (evt.detail.topic === topic) received[i] = (received[i] ?? 0) + 1 })
      })
      const [publisher, ...receivers] = nodes as [LeptonNode, ...LeptonNode[]]
      await expect.poll(() => publisher.services.pubsub.getSubscribers(topic).length, { timeout: 10_000, interval: 50 }).toBe(3)
      // the mesh forms at a heartbeat; until then a publish reaches nobody but through flood publishing
      await new Promise(resolve => setTimeout(resolve, 1500))
      await publisher.services.pubsub.publish(topic, new TextEncoder().encode('hello'))
      await expect.poll(() => received.slice(1), { timeout: 10_000, interval: 50 }).toEqual([1, 1, 1])
      // each receiver holds the message's fast id: later copies stop there, before the signature check
      for (const r of receivers) {
        const cache = (r.services.pubsub as unknown as { fastMsgIdCache?: { size: number } }).fastMsgIdCache
        expect(cache?.size).toBe(1)
      }
    }, 30_000)
  })
})
