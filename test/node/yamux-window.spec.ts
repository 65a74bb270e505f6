import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../src/node/index.ts'
import type { LeptonNode } from '../../src/node/index.ts'
import type { Stream } from '@libp2p/interface'

const PROTOCOL = '/lepton-test/yamux-window/1.0.0'
/** Yamux's frame type of a window update (the spec: data 0, window update 1, ping 2, go away 3). */
const WINDOW_UPDATE = 1

interface Counts { dataFrames: number, windowUpdates: number, bytes: number }

/** Counts, on the receiving stream itself, the data frames it handles and the window updates it sends. */
function watch (stream: Stream, counts: Counts): void {
  const s = stream as unknown as { sendFrame: (header: { type: number }, body?: unknown) => boolean, handleData: (frame: unknown) => void }
  expect(typeof s.sendFrame).toBe('function')
  expect(typeof s.handleData).toBe('function')
  // the fields src/node/yamux-window.ts reads: without them its policy steps aside
  const fields = stream as unknown as Record<string, unknown>
  for (const name of ['state', 'recvWindow', 'recvWindowCapacity']) {
    expect(typeof fields[name], `YamuxStream.${name} (read by the window-update policy)`).toBe('number')
  }
  const sendFrame = s.sendFrame
  s.sendFrame = (header, body) => {
    if (header.type === WINDOW_UPDATE) counts.windowUpdates++
    return sendFrame(header, body)
  }
  const handleData = s.handleData.bind(stream)
  s.handleData = (frame) => {
    counts.dataFrames++
    handleData(frame)
  }
}

async function send (stream: Stream, chunk: Uint8Array): Promise<void> {
  if (!stream.send(chunk)) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
}

describe('yamux window updates', () => {
  const nodes: LeptonNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  async function pair (): Promise<{ a: LeptonNode, b: LeptonNode, received: Promise<Counts> }> {
    const a = await createNode({})
    const b = await createNode({})
    nodes.push(a, b)
    let done!: (counts: Counts) => void
    let failed!: (err: Error) => void
    const received = new Promise<Counts>((resolve, reject) => { done = resolve; failed = reject })
    await b.handle(PROTOCOL, async (stream) => {
      const counts: Counts = { dataFrames: 0, windowUpdates: 0, bytes: 0 }
      try {
        watch(stream, counts)
        for await (const chunk of stream) counts.bytes += chunk.byteLength
        done(counts)
      } catch (err) { failed(err instanceof Error ? err : new Error(String(err))) }
    })
    return { a, b, received }
  }

  it('a receiver of many small messages sends one update per half window, not one per frame', async () => {
    const { a, b, received } = await pair()
    const stream = await a.dialProtocol(b.getMultiaddrs(), PROTOCOL)
    // 300 x 1 KiB, one frame each: 300 KiB is a little over one 256 KiB window
    for (let i = 0; i < 300; i++) {
      await send(stream, new Uint8Array(1024).fill(i & 0xff))
      await new Promise(resolve => setImmediate(resolve))
    }
    await stream.close()
    const counts = await received
    expect(counts.bytes).toBe(300 * 1024)
    expect(counts.dataFrames).toBeGreaterThanOrEqual(100)
    // at 128 KiB and 256 KiB received (plus the ACK that accepts the stream, if it went as an update)
    expect(counts.windowUpdates).toBeGreaterThanOrEqual(1)
    expect(counts.windowUpdates).toBeLessThanOrEqual(4)
  })

  it('a bulk transfer still completes, with updates a small fraction of its frames', async () => {
    const { a, b, received } = await pair()
    const stream = await a.dialProtocol(b.getMultiaddrs(), PROTOCOL)
    const chunk = new Uint8Array(64 * 1024).fill(7)
    for (let i = 0; i < 256; i++) await send(stream, chunk)
    await stream.close()
    const counts = await received
    expect(counts.bytes).toBe(16 * 1024 * 1024)
    expect(counts.dataFrames).toBeGreaterThanOrEqual(256)
    // one per 128 KiB at most (the window only grows): <= 128 for 16 MiB, and at least one or the sender would stall
    expect(counts.windowUpdates).toBeGreaterThanOrEqual(1)
    expect(counts.windowUpdates).toBeLessThanOrEqual(130)
  })
})
