import { afterEach, describe, expect, it } from 'vitest'
import { startJobPeer, stopJobPeer, waitForMesh, writeModule } from './helpers.ts'
import type { JobPeer } from './helpers.ts'

describe('worker admission policy', () => {
  const peers: JobPeer[] = []
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await stopJobPeer(p) }))
  })

  it('a worker runs tasks only for the submitters it accepts', async () => {
    const submitter = await startJobPeer({ slots: 0 })
    peers.push(submitter)
    const bootstrap = [submitter.node.getMultiaddrs()[0]?.toString() as string]
    // accepts only some other peer: never this submitter
    const closed = await startJobPeer({ slots: 2, bootstrap, accept: ['12D3KooWSomeoneElseEntirely1111111111111111111111111'] })
    const open = await startJobPeer({ slots: 1, bootstrap, accept: [submitter.node.peerId.toString()] })
    peers.push(closed, open)
    await waitForMesh(peers, 2)
    const module = await writeModule(submitter.dir, 'id.js', 'export function map (i, ctx) { return ctx.task }\nexport function reduce (v) { return v }\n')
    const job = await submitter.jobs.submit({ module, tasks: 6 })
    const detail = await submitter.jobs.wait(job.jobId)
    expect(detail.state).toBe('succeeded')
    expect(detail.result).toEqual([0, 1, 2, 3, 4, 5])
    expect(Object.keys(detail.workers)).toEqual([open.node.peerId.toString()])
    expect(closed.jobs.worker.executed).toBe(0)
  }, 60_000)

  it('with no worker that accepts it, the job runs nowhere and fails at its timeout', async () => {
    const submitter = await startJobPeer({ slots: 0 })
    peers.push(submitter)
    const closed = await startJobPeer({ slots: 2, bootstrap: [submitter.node.getMultiaddrs()[0]?.toString() as string], accept: [] })
    peers.push(closed)
    await waitForMesh(peers, 1)
    const module = await writeModule(submitter.dir, 'id.js', 'export function map (i, ctx) { return ctx.task }\n')
    const job = await submitter.jobs.submit({ module, tasks: 2, timeoutS: 3 })
    const detail = await submitter.jobs.wait(job.jobId)
    expect(detail.state).toBe('failed')
    expect(detail.error).toMatch(/timed out after 3 s with 0 of 2 tasks done/)
    expect(closed.jobs.worker.executed).toBe(0)
  }, 60_000)

  it('refuses an award from a submitter it does not accept, even on a stream it opened', async () => {
    const worker = await startJobPeer({ slots: 1, accept: [] })
    peers.push(worker)
    const outcome = await worker.jobs.worker.execute('12D3KooWNotAccepted', {
      type: 2, jobId: 'x', task: 0, attempt: 1, slots: 0, freeSlots: 0, held: [], running: [], codeCid: new Uint8Array(0), inputCid: new Uint8Array(0), runtime: 'js', ctx: '{}', memoryMiB: 64, timeMs: 1000, leaseMs: 5000, ok: false, outputCid: new Uint8Array(0), output: new Uint8Array(0), outputBytes: 0, error: '', errorName: '', elapsedMs: 0
    })
    expect(outcome.ok).toBe(false)
    expect(outcome.errorName).toBe('NotAcceptedError')
    expect(worker.jobs.worker.executed).toBe(0)
  }, 30_000)
})
