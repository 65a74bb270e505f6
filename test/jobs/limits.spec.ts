import { afterEach, describe, expect, it } from 'vitest'
import { startJobPeer, stopJobPeer, waitForMesh, writeModule } from './helpers.ts'
import type { JobPeer } from './helpers.ts'

const SLOW = 'export function map (i, ctx) { let x = 0; for (let k = 0; k < 3e6; k++) x = (x + k * ctx.task) % 1000003; return x }\nexport function reduce (v) { return v.length }\n'

describe('resource limits', () => {
  const peers: JobPeer[] = []
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await stopJobPeer(p) }))
  })

  it('a worker never runs more tasks at once than its slots', async () => {
    const submitter = await startJobPeer({ slots: 0 })
    peers.push(submitter)
    const bootstrap = [submitter.node.getMultiaddrs()[0]?.toString() as string]
    const one = await startJobPeer({ slots: 1, bootstrap })
    const two = await startJobPeer({ slots: 2, bootstrap })
    peers.push(one, two)
    await waitForMesh(peers, 1)
    const module = await writeModule(submitter.dir, 'slow.js', SLOW)
    const seen = { one: 0, two: 0 }
    const sampler = setInterval(() => {
      seen.one = Math.max(seen.one, one.jobs.worker.runningCount)
      seen.two = Math.max(seen.two, two.jobs.worker.runningCount)
    }, 2)
    try {
      const job = await submitter.jobs.submit({ module, tasks: 16 })
      const detail = await submitter.jobs.wait(job.jobId)
      expect(detail.state).toBe('succeeded')
      expect(detail.result).toBe(16)
    } finally {
      clearInterval(sampler)
    }
    // both worked, and each at most at its slot count (2 awards per slot are queued, not run)
    expect(seen.one).toBe(1)
    expect(seen.two).toBeGreaterThanOrEqual(1)
    expect(seen.two).toBeLessThanOrEqual(2)
  }, 60_000)

  it('the submitter refuses a job beyond its queue bound, with advice', async () => {
    const submitter = await startJobPeer({ slots: 0 })
    peers.push(submitter)
    const module = await writeModule(submitter.dir, 'noop.js', 'export function map () { return 0 }\n')
    await expect(submitter.jobs.submit({ module, tasks: 100_001 })).rejects.toMatchObject({ name: 'InvalidJobError', message: expect.stringMatching(/tasks must be an integer from 1 to 100000/) })
    await expect(submitter.jobs.submit({ module: '/nonexistent/x.js' })).rejects.toMatchObject({ name: 'InvalidJobError', message: expect.stringMatching(/does not exist/) })
    await expect(submitter.jobs.submit({ module: 'relative.js' })).rejects.toMatchObject({ name: 'InvalidJobError' })
    const bad = await writeModule(submitter.dir, 'bad.js', 'export const x = 1\n')
    await expect(submitter.jobs.submit({ module: bad })).rejects.toThrow(/map/)
  }, 30_000)
})
