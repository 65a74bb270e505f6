import { createHash, randomBytes } from 'node:crypto'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForDrain } from '../../src/wire/index.ts'
import { delayedTcp } from '../helpers/delay-transport.ts'
import type { DelayedRemote } from '../helpers/delay-transport.ts'
import type { Libp2p } from '@libp2p/interface'

const ECHO = '/lepton-test/echo/1.0.0'
const SINK = '/lepton-test/sha256-sink/1.0.0'
const ONE_WAY_MS = 50

// listen port of each node, filled in once they are started
const ports = new Map<string, number>()
const portOf = (node: Libp2p): number => Number(node.getMultiaddrs()[0]?.getComponents().find(c => c.name === 'tcp')?.value)

async function startNode (delay: (remote: DelayedRemote) => number): Promise<Libp2p> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [delayedTcp({ oneWayDelayMs: delay })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  await node.handle(ECHO, async (stream) => {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await waitDrain(stream)
    }
    await stream.close()
  })
  await node.handle(SINK, async (stream) => {
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of stream) {
      for (const buf of (chunk instanceof Uint8ArrayList ? chunk : [chunk])) {
        hash.update(buf)
        bytes += buf.byteLength
      }
    }
    stream.send(new TextEncoder().encode(`${bytes} ${hash.digest('hex')}`))
    await stream.close()
  })
  return node
}

// the 'drain' event, not onDrain(): see src/wire/frames.ts
const waitDrain = waitForDrain

/** Reads from an async iterator of a stream until `n` bytes have arrived. */
async function readBytes (it: AsyncIterator<Uint8Array | Uint8ArrayList>, n: number): Promise<Uint8ArrayList> {
  const got = new Uint8ArrayList()
  while (got.byteLength < n) {
    const { done, value } = await it.next()
    if (done === true) throw new Error(`stream ended after ${got.byteLength}/${n} bytes`)
    got.append(value)
  }
  return got
}

/** Round trip times in ms of `count` small echoes over one stream. */
async function echoRtts (from: Libp2p, to: Libp2p, count: number): Promise<number[]> {
  const stream = await from.dialProtocol(to.peerId, ECHO)
  const it = stream[Symbol.asyncIterator]()
  const rtts: number[] = []
  // one unmeasured echo first, so protocol negotiation is not counted
  for (let i = 0; i <= count; i++) {
    const msg = randomBytes(32)
    const start = performance.now()
    stream.send(msg)
    const got = await readBytes(it, msg.byteLength)
    const rtt = performance.now() - start
    expect(Buffer.from(got.subarray()).equals(msg)).toBe(true)
    if (i > 0) rtts.push(rtt)
  }
  await stream.close()
  return rtts
}

describe('delayedTcp', () => {
  let a: Libp2p
  let b: Libp2p
  let c: Libp2p

  beforeAll(async () => {
    // only A delays, and only towards B's listen port: A dials B and C, so A
    // sees their listen ports; B and C see A's ephemeral port
    a = await startNode(remote => remote.port === ports.get('b') ? ONE_WAY_MS : 0)
    b = await startNode(() => 0)
    c = await startNode(() => 0)
    ports.set('b', portOf(b))
    ports.set('c', portOf(c))
    await a.dial(b.getMultiaddrs())
    await a.dial(c.getMultiaddrs())
  })

  afterAll(async () => {
    await Promise.all([a, b, c].map(async n => await n?.stop()))
  })

  it('adds twice the one-way delay to round trips on a delayed connection', async () => {
    const rtts = await echoRtts(a, b, 5)
    console.info('A<->B echo RTTs (ms, 50 ms one-way):', rtts.map(r => r.toFixed(1)).join(', '))
    for (const rtt of rtts) {
      expect(rtt).toBeGreaterThanOrEqual(2 * ONE_WAY_MS - 5)
      expect(rtt).toBeLessThan(1000)
    }
  })

  it('leaves a zero-delay connection fast', async () => {
    const rtts = await echoRtts(a, c, 5)
    console.info('A<->C echo RTTs (ms, no delay):', rtts.map(r => r.toFixed(1)).join(', '))
    for (const rtt of rtts) expect(rtt).toBeLessThan(50)
  })

  it('delivers bulk data intact and in order through a delayed connection', async () => {
    const stream = await a.dialProtocol(b.peerId, SINK)
    const hash = createHash('sha256')
    let sent = 0
    // uneven chunk sizes so chunk boundaries never line up with yamux frames
    while (sent < 4 * 1024 * 1024) {
      const chunk = randomBytes(Math.min(1000 + (sent % 70_001), 4 * 1024 * 1024 - sent))
      hash.update(chunk)
      sent += chunk.byteLength
      if (!stream.send(chunk)) await waitDrain(stream)
    }
    await stream.close()
    const reply = new Uint8ArrayList()
    for await (const chunk of stream) reply.append(chunk)
    expect(new TextDecoder().decode(reply.subarray())).toBe(`${sent} ${hash.digest('hex')}`)
  })
})
