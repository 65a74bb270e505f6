import { createHash, randomBytes } from 'node:crypto'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { DHT_PROTOCOL, LOOPBACK_ALLOW } from '../../src/node/constants.ts'
import { relayConfig } from '../../src/routing/forwarder.ts'
import type { ForwarderInit } from '../../src/routing/forwarder.ts'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'

const ECHO = '/lepton-test/echo/1.0.0'
const MiB = 1024 * 1024

/** The relevant part of src/node's assembly, plus the relay transport, server and forwarder. */
async function createTestNode (forwarder?: ForwarderInit) {
  const relay = relayConfig({ forwarder })
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), ...relay.transports],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 128, allow: LOOPBACK_ALLOW },
    connectionMonitor: { abortConnectionOnPingFailure: false },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: false, peerInfoMapper: passthroughMapper }),
      pubsub: gossipsub(),
      ...relay.services
    }
  })
  // echoes everything back; records the connection each echo stream arrived on
  const inbound: Connection[] = []
  await node.handle(ECHO, async (stream, connection) => {
    inbound.push(connection)
    try {
      for await (const chunk of stream) {
        if (!stream.send(chunk)) await stream.onDrain()
      }
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  return Object.assign(node, { inbound })
}

type TestNode = Awaited<ReturnType<typeof createTestNode>>

/** Writes `data` in 64 KiB chunks while reading the echo; resolves with the sha256 of what came back. */
async function echoThrough (stream: Stream, data: Uint8Array, onRead?: (bytes: number) => void): Promise<{ sha: string, bytes: number }> {
  const hash = createHash('sha256')
  let bytes = 0
  const reader = (async () => {
    for await (const chunk of stream) {
      hash.update(chunk.subarray())
      bytes += chunk.byteLength
      onRead?.(bytes)
    }
  })()
  const writer = (async () => {
    for (let off = 0; off < data.byteLength; off += 64 * 1024) {
      if (!stream.send(data.subarray(off, off + 64 * 1024))) await stream.onDrain()
    }
    await stream.close()
  })()
  await Promise.all([reader, writer])
  return { sha: hash.digest('hex'), bytes }
}

function sha256 (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

function connectionOf (node: Libp2p, peer: PeerId, stream: Stream): Connection | undefined {
  return node.getConnections(peer).find(c => c.streams.includes(stream))
}

describe('forwarder: one-hop detour over circuit relay v2', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  async function triangle (forwarder?: ForwarderInit): Promise<[TestNode, TestNode, TestNode]> {
    const a = await createTestNode(forwarder)
    const b = await createTestNode(forwarder)
    const c = await createTestNode(forwarder)
    nodes.push(a, b, c)
    await a.dial(b.getMultiaddrs())
    await a.dial(c.getMultiaddrs())
    await b.dial(c.getMultiaddrs())
    return [a, b, c]
  }

  it('A -> C -> B: echo, relayed connection beside the direct one, 8 MiB intact, direct path still works', async () => {
    const [a, b, c] = await triangle()
    // B reserves on C by itself once identify shows C speaks HOP
    await expect.poll(() => b.services.forwarder.hasReservation(c.peerId), { timeout: 10_000 }).toBe(true)
    const direct = a.getConnections(b.peerId).find(conn => conn.direct)
    expect(direct).toBeDefined()

    const stream = await a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId })
    const relayed = connectionOf(a, b.peerId, stream)
    expect(relayed).toBeDefined()
    expect(relayed?.remoteAddr.toString()).toContain(`/p2p/${c.peerId.toString()}/p2p-circuit/p2p/${b.peerId.toString()}`)
    expect(relayed?.direct).toBe(false)
    expect(relayed?.id).not.toBe(direct?.id)
    expect(relayed?.limits).toBeUndefined()
    expect(direct?.status).toBe('open')
    expect(a.getConnections(b.peerId).length).toBeGreaterThanOrEqual(2)

    const hello = new TextEncoder().encode('hello through C')
    const small = await echoThrough(stream, hello)
    expect(small.sha).toBe(sha256(hello))
    // B saw the stream arrive on a relayed connection from A
    expect(b.inbound.at(-1)?.remoteAddr.toString()).toContain('/p2p-circuit')
    expect(b.inbound.at(-1)?.remotePeer.equals(a.peerId)).toBe(true)

    // bulk, far over the default 128 KiB relay limit; the cached connection is reused
    const data = randomBytes(8 * MiB)
    let t0 = performance.now()
    const bulkStream = await a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId })
    expect(connectionOf(a, b.peerId, bulkStream)?.id).toBe(relayed?.id)
    const viaRelay = await echoThrough(bulkStream, data)
    const relayMs = performance.now() - t0
    expect(viaRelay.bytes).toBe(data.byteLength)
    expect(viaRelay.sha).toBe(sha256(data))
    expect(relayed?.status).toBe('open')

    // direct path: the direct connection, not the relayed one
    t0 = performance.now()
    const directStream = await a.services.forwarder.openStream(b.peerId, ECHO)
    expect(connectionOf(a, b.peerId, directStream)?.id).toBe(direct?.id)
    const viaDirect = await echoThrough(directStream, data)
    const directMs = performance.now() - t0
    expect(viaDirect.sha).toBe(sha256(data))

    const rate = (ms: number): string => `${(2 * 8 / (ms / 1000)).toFixed(1)} MiB/s`
    console.log(`8 MiB echo (16 MiB moved): via relay ${relayMs.toFixed(0)} ms (${rate(relayMs)}), direct ${directMs.toFixed(0)} ms (${rate(directMs)})`)
  })

  it('C stopping mid-transfer errors the relayed stream; a direct openStream still works and the detour is gone', async () => {
    const [a, b, c] = await triangle()
    await expect.poll(() => b.services.forwarder.hasReservation(c.peerId), { timeout: 10_000 }).toBe(true)
    const stream = await a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId })
    const data = randomBytes(64 * MiB)
    let stopping: Promise<void> | undefined
    let received = 0
    const transfer = echoThrough(stream, data, (bytes) => {
      received = bytes
      if (bytes >= MiB && stopping == null) stopping = Promise.resolve(c.stop())
    })
    // Only the writer fails (its pending onDrain rejects with a StreamCloseEvent):
    // C's graceful stop closes the HOP stream, so the relayed connection and the
    // streams on it close cleanly and the reader just sees an early end.
    await expect(transfer).rejects.toBeDefined()
    await stopping
    expect(received).toBeGreaterThanOrEqual(MiB)
    expect(received).toBeLessThan(data.byteLength)
    expect(stream.status).not.toBe('open')
    await expect.poll(() => a.getConnections(b.peerId).every(conn => conn.direct), { timeout: 5_000 }).toBe(true)

    const again = await a.services.forwarder.openStream(b.peerId, ECHO)
    expect(connectionOf(a, b.peerId, again)?.direct).toBe(true)
    const hello = new TextEncoder().encode('direct again')
    expect((await echoThrough(again, hello)).sha).toBe(sha256(hello))
    await expect(a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId, signal: AbortSignal.timeout(5_000) }))
      .rejects.toThrow()
  })

  it('a relayed connection is closed once idle (never while a stream is open) and dialled again when next needed', async () => {
    const idleMs = 300
    const [a, b, c] = await triangle({ circuitIdleMs: idleMs })
    await expect.poll(() => b.services.forwarder.hasReservation(c.peerId), { timeout: 10_000 }).toBe(true)
    const relayedTo = (node: Libp2p, peer: PeerId): Connection[] => node.getConnections(peer).filter(conn => !conn.direct)

    // a stream held open for many idle periods keeps its circuit
    const held = await a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId })
    const circuit = connectionOf(a, b.peerId, held)
    expect(circuit?.direct).toBe(false)
    await new Promise(resolve => setTimeout(resolve, 8 * idleMs))
    expect(circuit?.status).toBe('open')
    const hello = new TextEncoder().encode('still here')
    expect((await echoThrough(held, hello)).sha).toBe(sha256(hello))

    // once its streams are done, both ends let it go; the direct connection stays
    await expect.poll(() => relayedTo(a, b.peerId).length, { timeout: 10_000 }).toBe(0)
    await expect.poll(() => relayedTo(b, a.peerId).length, { timeout: 10_000 }).toBe(0)
    expect(a.getConnections(b.peerId).some(conn => conn.direct && conn.status === 'open')).toBe(true)

    // the next detour dials a new circuit
    const again = await a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId })
    const second = connectionOf(a, b.peerId, again)
    expect(second?.direct).toBe(false)
    expect(second?.id).not.toBe(circuit?.id)
    expect((await echoThrough(again, hello)).sha).toBe(sha256(hello))
  })

  it('B is reachable through C only once it holds a reservation there', async () => {
    const [a, b, c] = await triangle({ maxReservations: 0 })
    expect(b.services.forwarder.hasReservation(c.peerId)).toBe(false)
    await expect(a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId }))
      .rejects.toThrow(/NO_RESERVATION/)
    await b.services.forwarder.reserve(c.peerId)
    expect(b.services.forwarder.hasReservation(c.peerId)).toBe(true)
    const stream = await a.services.forwarder.openStream(b.peerId, ECHO, { via: c.peerId })
    const hello = new TextEncoder().encode('reserved')
    expect((await echoThrough(stream, hello)).sha).toBe(sha256(hello))
  })
})
