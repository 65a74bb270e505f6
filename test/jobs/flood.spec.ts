import { afterEach, describe, expect, it } from 'vitest'
import { OFFERS_TOPIC, OfferCodec, TASKS_PROTOCOL, FloodGuard } from '../../src/market/index.ts'
import { createNode } from '../../src/node/index.ts'
import { rawCid } from '../../src/jobs/index.ts'
import { startJobPeer, stopJobPeer, writeModule } from './helpers.ts'
import type { JobPeer } from './helpers.ts'
import type { LeptonNode } from '../../src/node/index.ts'

async function until (check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

describe('flood guard (pure)', () => {
  it('lets a burst through, throttles beyond the rate, bans a peer that keeps going, and forgives one that slows down', () => {
    const guard = new FloodGuard({ ratePerS: 10, burst: 5, banAfter: 3 })
    const verdicts = Array.from({ length: 8 }, () => guard.hit('a', 0))
    expect(verdicts).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'throttle', 'throttle', 'ban'])
    // another peer has its own bucket
    expect(guard.hit('b', 0)).toBe('ok')
    // after a second at the rate the bucket is full again and strikes are cleared
    expect(guard.hit('a', 1000)).toBe('ok')
    expect(guard.hit('a', 1000)).toBe('ok')
  })
})

describe('peers that flood task streams or walk away from them', () => {
  const peers: JobPeer[] = []
  const nodes: LeptonNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
    await Promise.all(peers.splice(0).map(async p => { await stopJobPeer(p) }))
  })

  it('a worker bans a peer that floods task offers, and still works for an honest submitter', async () => {
    const worker = await startJobPeer({ slots: 1 })
    peers.push(worker)
    const addr = worker.node.getMultiaddrs()[0]?.toString() as string
    const attacker = await createNode({ connector: { bootstrap: [addr], intervalMs: 200 } })
    nodes.push(attacker)
    attacker.services.pubsub.subscribe(OFFERS_TOPIC)
    await until(() => attacker.services.pubsub.getSubscribers(OFFERS_TOPIC).some(p => p.equals(worker.node.peerId)))
    const codeCid = rawCid(new TextEncoder().encode('export function map () {}')).bytes
    let sent = 0
    for (let i = 0; i < 600 && !worker.node.services.bans.isBanned(attacker.peerId); i++) {
      // valid offers (fresh, increasing seq) for jobs that do not exist: only their rate is wrong
      const data = OfferCodec.encode({ jobId: `flood-${i}`, codeCid, runtime: 'js', pending: 1, inputs: [], memoryMiB: 64, timeMs: 1000, createdAtMs: Date.now(), seq: Date.now() * 1000 + i })
      await attacker.services.pubsub.publish(OFFERS_TOPIC, data).catch(() => {})
      sent++
    }
    await until(() => worker.node.services.bans.isBanned(attacker.peerId))
    await until(() => worker.node.getConnections(attacker.peerId).length === 0)
    expect(sent).toBeGreaterThan(200) // the burst and rate are generous for honest submitters

    // an honest submitter's job still runs on that worker
    const submitter = await startJobPeer({ slots: 0, bootstrap: [addr] })
    peers.push(submitter)
    const module = await writeModule(submitter.dir, 'one.js', 'export function map (i, ctx) { return ctx.task }\nexport function reduce (v) { return v }\n')
    const job = await submitter.jobs.submit({ module, tasks: 3 })
    const detail = await submitter.jobs.wait(job.jobId)
    expect(detail.state).toBe('succeeded')
    expect(detail.result).toEqual([0, 1, 2])
    expect(Object.keys(detail.workers)).toEqual([worker.node.peerId.toString()])
  }, 60_000)

  it('a submitter bans a peer that opens task streams without end', async () => {
    const submitter = await startJobPeer({ slots: 0 })
    peers.push(submitter)
    const attacker = await createNode()
    nodes.push(attacker)
    const addr = submitter.node.getMultiaddrs()[0]
    if (addr == null) throw new Error('no address')
    let opened = 0
    for (let i = 0; i < 200 && !submitter.node.services.bans.isBanned(attacker.peerId); i++) {
      try {
        const stream = await attacker.dialProtocol(addr, TASKS_PROTOCOL)
        opened++
        stream.abort(new Error('flood'))
      } catch {
        break // hung up on: banned
      }
    }
    await until(() => submitter.node.services.bans.isBanned(attacker.peerId))
    expect(opened).toBeGreaterThanOrEqual(40)
    expect(opened).toBeLessThan(200)
    // and it is not let back in
    await until(() => submitter.node.getConnections(attacker.peerId).length === 0)
    await expect(attacker.dialProtocol(addr, TASKS_PROTOCOL)).rejects.toThrow()
  }, 60_000)

  it('a worker closes its task stream when the submitter closes its side without a word', async () => {
    const worker = await startJobPeer({ slots: 1 })
    peers.push(worker)
    const submitter = await createNode({ connector: { bootstrap: [worker.node.getMultiaddrs()[0]?.toString() as string], intervalMs: 200 } })
    nodes.push(submitter)
    let bids = 0
    // a submitter that takes the bid, then half-closes (as one whose job just ended may)
    await submitter.handle(TASKS_PROTOCOL, (stream) => {
      stream.addEventListener('message', () => {
        bids++
        stream.close().catch(() => {})
      }, { once: true })
    })
    submitter.services.pubsub.subscribe(OFFERS_TOPIC)
    await until(() => submitter.services.pubsub.getSubscribers(OFFERS_TOPIC).some(p => p.equals(worker.node.peerId)))
    const codeCid = rawCid(new TextEncoder().encode('export function map () {}')).bytes
    const offer = OfferCodec.encode({ jobId: 'ended-job', codeCid, runtime: 'js', pending: 1, inputs: [], memoryMiB: 64, timeMs: 1000, createdAtMs: Date.now(), seq: Date.now() })
    await submitter.services.pubsub.publish(OFFERS_TOPIC, offer)
    await until(() => bids === 1)
    const taskStreams = (): number => worker.node.getConnections().flatMap(c => c.streams).filter(st => st.protocol === TASKS_PROTOCOL).length
    // no half-open stream left behind on the worker (it used to heartbeat into it for good)
    await until(() => taskStreams() === 0, 5_000)
    expect(taskStreams()).toBe(0)
  }, 30_000)
})
