/**
 * Private mesh: nodes built with the same swarm key connect and talk; a node
 * with another key, or with none, fails the handshake and never becomes a peer.
 */
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import { generateSwarmKey } from '../../src/repo/index.ts'
import { rejection } from '../helpers/errors.ts'
import type { LeptonNode, NodeInit } from '../../src/node/index.ts'

const nodes: LeptonNode[] = []

async function node (init: NodeInit = {}): Promise<LeptonNode> {
  const n = await createNode({ rtt: { intervalMs: 200 }, ...init, connector: { intervalMs: 200, ...init.connector } })
  nodes.push(n)
  return n
}

function peerIds (n: LeptonNode): string[] {
  return n.getPeers().map(p => p.toString())
}

/** The first bytes a raw TCP client gets from `addr` after saying what a libp2p dialer says first. */
async function firstBytes (addr: string, waitMs = 500): Promise<Buffer> {
  const m = /\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(addr)
  if (m == null) throw new Error(`not a tcp address: ${addr}`)
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(Number(m[2]), m[1] as string, () => {
      socket.write('\x13/multistream/1.0.0\n')
    })
    const done = (): void => { socket.destroy(); resolve(Buffer.concat(chunks)) }
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('close', done)
    socket.on('error', (err) => { if (chunks.length === 0) reject(err); else done() })
    setTimeout(done, waitMs)
  })
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

describe('private mesh (pnet)', () => {
  it('two nodes with the same swarm key connect through bootstrap and exchange RTT probes', async () => {
    const key = generateSwarmKey()
    const a = await node({ swarmKey: key })
    const b = await node({ swarmKey: key, connector: { bootstrap: a.getMultiaddrs().map(String) } })
    await expect.poll(() => peerIds(a), { timeout: 5_000, interval: 50 }).toEqual([b.peerId.toString()])
    expect(peerIds(b)).toEqual([a.peerId.toString()])
    // a round trip on our own RTT stream, end to end through pnet + noise + yamux
    expect(await b.services.rtt.measure(a.peerId)).toBeGreaterThan(0)
  })

  it('a node with another swarm key cannot connect: the dial fails with EncryptionFailedError', async () => {
    const insider = await node({ swarmKey: generateSwarmKey() })
    const outsider = await node({ swarmKey: generateSwarmKey() })
    const err = await rejection(outsider.dial(insider.getMultiaddrs()[0] as any))
    expect(err.name).toBe('EncryptionFailedError')
    expect(peerIds(insider)).toEqual([])
    expect(peerIds(outsider)).toEqual([])
  })

  it('a node without a swarm key cannot connect, in either direction', async () => {
    const insider = await node({ swarmKey: generateSwarmKey() })
    const outsider = await node()
    const inbound = await rejection(outsider.dial(insider.getMultiaddrs()[0] as any))
    expect(inbound.name).toBe('EncryptionFailedError')
    const outbound = await rejection(insider.dial(outsider.getMultiaddrs()[0] as any))
    expect(outbound.message.length).toBeGreaterThan(0)
    expect(peerIds(insider)).toEqual([])
    expect(peerIds(outsider)).toEqual([])
  })

  it('an outsider bootstrapping to a private mesh never becomes anyone\'s peer while the insiders see each other', async () => {
    const key = generateSwarmKey()
    const a = await node({ swarmKey: key })
    const bootstrap = a.getMultiaddrs().map(String)
    const b = await node({ swarmKey: key, connector: { bootstrap } })
    const strangers = [await node({ connector: { bootstrap } }), await node({ swarmKey: generateSwarmKey(), connector: { bootstrap } })]
    const outsiderIds = strangers.map(s => s.peerId.toString())
    const seen = new Set<string>()
    const watch = (): void => { for (const n of [a, b]) for (const p of peerIds(n)) seen.add(p) }
    a.addEventListener('peer:connect', watch)
    b.addEventListener('peer:connect', watch)
    const until = Date.now() + 2_500
    while (Date.now() < until) {
      watch()
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    expect(peerIds(a)).toEqual([b.peerId.toString()])
    expect(peerIds(b)).toEqual([a.peerId.toString()])
    for (const id of outsiderIds) expect(seen.has(id)).toBe(false)
    for (const s of strangers) expect(peerIds(s)).toEqual([])
  })

  it('a raw client gets random bytes (the pnet nonce), not libp2p\'s protocol negotiation', async () => {
    const open = await node()
    const closed = await node({ swarmKey: generateSwarmKey() })
    // control: an open node answers multistream-select in clear text
    expect((await firstBytes(String(open.getMultiaddrs()[0]))).toString('latin1')).toContain('/multistream/1.0.0')
    const bytes = await firstBytes(String(closed.getMultiaddrs()[0]))
    expect(bytes.toString('latin1')).not.toContain('multistream')
    expect(bytes.toString('latin1')).not.toContain('/noise')
    expect(bytes.byteLength).toBeGreaterThanOrEqual(24) // the nonce; the rest, if any, is ciphertext
  })
})
