import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { WORDCOUNT, corpus, startJobPeer, stopJobPeer, waitForMesh, wordcountLocal, writeModule } from './helpers.ts'
import type { JobPeer } from './helpers.ts'

describe('jobs across peers in one process', () => {
  const peers: JobPeer[] = []
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await stopJobPeer(p) }))
  })

  async function mesh (workers: Array<Parameters<typeof startJobPeer>[0]>): Promise<JobPeer[]> {
    const submitter = await startJobPeer({ slots: 0 })
    peers.push(submitter)
    const addr = submitter.node.getMultiaddrs()[0]?.toString() as string
    for (const w of workers) peers.push(await startJobPeer({ ...w, bootstrap: [addr] }))
    await waitForMesh(peers, peers.length - 1)
    return peers
  }

  /** A submitter and two workers, and a seeded corpus of `bytes` written in the submitter's folder. */
  async function meshWithCorpus (bytes: number): Promise<{ s: JobPeer, text: string, input: string }> {
    const [submitter] = await mesh([{}, {}])
    const s = submitter as JobPeer
    const text = corpus(bytes)
    const input = join(s.dir, 'corpus.txt')
    await writeFile(input, text)
    return { s, text, input }
  }

  it('word count from a peer that runs no tasks equals a local run, on at least two workers', async () => {
    const { s, text, input } = await meshWithCorpus(400_000)
    const module = await writeModule(s.dir, 'wordcount.js', WORDCOUNT)
    const summary = await s.jobs.submit({ module, input, partitions: 8 })
    const detail = await s.jobs.wait(summary.jobId)
    expect(detail.error).toBeNull()
    expect(detail.state).toBe('succeeded')
    expect(detail.result).toEqual(wordcountLocal(text))
    expect(detail.tasks.total).toBe(8)
    expect(Object.keys(detail.workers)).not.toContain(s.node.peerId.toString())
    expect(Object.keys(detail.workers).length).toBeGreaterThanOrEqual(2)
  }, 60_000)

  it('outvotes a lying worker with --verify 2, reports it and stops using it', async () => {
    const [submitter, , , liar] = await mesh([{ slots: 1 }, { slots: 1 }, { slots: 1, tamper: () => ({ forged: true }) }])
    const s = submitter as JobPeer
    const text = corpus(60_000, 7)
    const input = join(s.dir, 'corpus.txt')
    await writeFile(input, text)
    const module = await writeModule(s.dir, 'wordcount.js', WORDCOUNT)
    const summary = await s.jobs.submit({ module, input, partitions: 6, verify: 2 })
    const detail = await s.jobs.wait(summary.jobId)
    expect(detail.state).toBe('succeeded')
    expect(detail.result).toEqual(wordcountLocal(text))
    const liarId = (liar as JobPeer).node.peerId.toString()
    // with 6 tasks x 2 copies over 3 one-slot workers the liar gets work; it is caught on it
    expect(detail.disagreements.length).toBeGreaterThanOrEqual(1)
    expect(new Set(detail.disagreements.map(d => d.worker))).toEqual(new Set([liarId]))
    expect(detail.workers[liarId]).toBeUndefined()
    for (const t of detail.taskList) expect(t.doneBy).not.toContain(liarId)
  }, 60_000)

  it('a job run again is answered from lineage, its outputs read from the blockstore (not memory); after gc they run again', async () => {
    const { s, text, input } = await meshWithCorpus(100_000)
    const module = await writeModule(s.dir, 'wordcount.js', WORDCOUNT)
    const run = async (): Promise<Awaited<ReturnType<typeof s.jobs.wait>>> => {
      const detail = await s.jobs.wait((await s.jobs.submit({ module, input, partitions: 4 })).jobId)
      expect(detail.state).toBe('succeeded')
      expect(detail.result).toEqual(wordcountLocal(text))
      return detail
    }
    expect((await run()).tasks.cached).toBe(0)
    const again = await run()
    expect(again.tasks.cached).toBe(4)
    // the lineage holds CIDs only: the outputs it answered with came from the blockstore
    expect(s.jobs.memory().lineage).toBeGreaterThanOrEqual(4)
    expect(s.jobs.memory().lineageKiB).toBe(0)
    // gc removes the unpinned output blocks: the lineage misses and the tasks run again, correctly
    const collected = await s.store.gc()
    expect(collected.removed).toBeGreaterThanOrEqual(4)
    expect((await run()).tasks.cached).toBe(0)
  }, 60_000)

  it('a worker answers a task it ran before, for another submitter, from its blockstore (not memory); after its gc it runs the task again', async () => {
    // one worker; the third peer is a second submitter (no slots)
    const [a, w, b] = await mesh([{}, { slots: 0 }]) as [JobPeer, JobPeer, JobPeer]
    const text = corpus(100_000, 3)
    const submit = async (s: JobPeer): Promise<void> => {
      const input = join(s.dir, 'corpus.txt')
      await writeFile(input, text)
      const module = await writeModule(s.dir, 'wordcount.js', WORDCOUNT)
      const detail = await s.jobs.wait((await s.jobs.submit({ module, input, partitions: 4 })).jobId)
      expect(detail.state).toBe('succeeded')
      expect(detail.result).toEqual(wordcountLocal(text))
      expect(detail.tasks.cached).toBe(0) // the submitter's own lineage did not answer
    }
    await submit(a)
    expect(w.jobs.worker.executed).toBe(4)
    // the outputs go to the worker's blockstore; then its lineage holds their CIDs only
    await vi.waitFor(() => { expect(w.jobs.memory()).toMatchObject({ workerLineage: 4, workerLineageKiB: 0 }) }, { timeout: 10_000 })
    await submit(b)
    expect(w.jobs.worker.executed).toBe(4)
    // gc removes the unpinned outputs: the worker's lineage misses and it runs the tasks again, correctly
    expect((await w.store.gc()).removed).toBeGreaterThanOrEqual(4)
    await b.store.gc() // b's own lineage misses too
    await submit(b)
    expect(w.jobs.worker.executed).toBe(8)
  }, 90_000)

  it('a job holds its input and partitions while it runs; after it they are unpinned (gc clears them) and only the result stays pinned', async () => {
    const { s, text, input } = await meshWithCorpus(200_000)
    // each task spins a while (the sandbox's clock stands still), so the gc below runs while tasks are still to be fetched
    const module = await writeModule(s.dir, 'slowcount.js', WORDCOUNT.replace('const counts = {}', 'const counts = {}\n  let spin = 0\n  for (let i = 0; i < 5e7; i++) spin += i\n  if (spin < 0) return null'))
    const summary = await s.jobs.submit({ module, input, partitions: 6 })
    await s.store.gc()
    const detail = await s.jobs.wait(summary.jobId)
    expect(detail.state).toBe('succeeded')
    expect(detail.result).toEqual(wordcountLocal(text))
    const pinned = (await s.store.pinLs()).map(p => p.cid)
    expect(pinned).toContain(detail.resultCid)
    const partitions = detail.taskList.map(t => CID.parse(t.inputCid as string))
    for (const cid of partitions) expect(pinned).not.toContain(cid.toString())
    // the module (pinned: later jobs use it) and the result
    expect(pinned.length).toBeLessThanOrEqual(2)
    expect((await s.store.gc()).removed).toBeGreaterThanOrEqual(partitions.length)
    for (const cid of partitions) expect(await s.store.localBlock(cid)).toBeUndefined()
  }, 60_000)

  it('jobs past the ones kept whole are listed from their summaries, workers and counts intact', async () => {
    const [submitter, worker] = await mesh([{}])
    const s = submitter as JobPeer
    const module = await writeModule(s.dir, 'noop.js', 'export function map (input, ctx) { return ctx.task }\nexport function reduce (v) { return v.length }\n')
    const ids: string[] = []
    for (let i = 0; i < 18; i++) {
      const summary = await s.jobs.submit({ module, tasks: 2, seed: i })
      expect((await s.jobs.wait(summary.jobId)).state).toBe('succeeded')
      ids.push(summary.jobId)
    }
    const listed = s.jobs.list()
    expect(listed.map(j => j.jobId).sort()).toEqual([...ids].sort())
    // the first job is no longer kept whole (16 are): its summary still names its worker and counts
    const first = listed.find(j => j.jobId === ids[0])
    expect(first?.state).toBe('succeeded')
    expect(first?.workers).toEqual({ [(worker as JobPeer).node.peerId.toString()]: 2 })
    expect(first?.tasks.done).toBe(2)
  }, 60_000)

  it('a job\'s reduce runs in a context of its own: module state does not carry over to the next job, and no isolate stays', async () => {
    // contexts reused within a job, as a daemon does by default
    const s = await startJobPeer({ slots: 0, reuseContexts: true })
    peers.push(s)
    peers.push(await startJobPeer({ bootstrap: [s.node.getMultiaddrs()[0]?.toString() as string], reuseContexts: true }))
    await waitForMesh(peers, 1)
    const module = await writeModule(s.dir, 'counter.js', 'let reduces = 0\nexport function map (input, ctx) { return ctx.task }\nexport function reduce (v) { reduces++; return reduces }\n')
    for (let i = 0; i < 2; i++) {
      const summary = await s.jobs.submit({ module, tasks: 2, seed: i })
      const detail = await s.jobs.wait(summary.jobId)
      expect(detail.state).toBe('succeeded')
      expect(detail.result).toBe(1)
    }
    expect((await s.sandbox.memory()).isolates).toBe(0)
  }, 60_000)

  it('reduces once, however many last results land in the same moment', async () => {
    const [submitter] = await mesh([{}, {}])
    const s = submitter as JobPeer
    let reduces = 0
    const run = s.sandbox.run.bind(s.sandbox)
    s.sandbox.run = async (req) => {
      if (req.fn === 'reduce') reduces++
      return await run(req)
    }
    const module = await writeModule(s.dir, 'noop.js', 'export function map (input, ctx) { return ctx.task }\nexport function reduce (v) { return v.length }\n')
    // results come back in batches: several accepts wait on the journal when the last task is done
    const summary = await s.jobs.submit({ module, tasks: 60 })
    const detail = await s.jobs.wait(summary.jobId)
    expect(detail.state).toBe('succeeded')
    expect(detail.result).toBe(60)
    expect(reduces).toBe(1)
  }, 60_000)

  it('task streams are closed at both ends once a job is over', async () => {
    const [submitter, ...workers] = await mesh([{}, {}])
    const s = submitter as JobPeer
    const module = await writeModule(s.dir, 'noop.js', 'export function map (input, ctx) { return ctx.task }\nexport function reduce (v) { return v.length }\n')
    for (let i = 0; i < 3; i++) {
      const summary = await s.jobs.submit({ module, tasks: 20, seed: i })
      expect((await s.jobs.wait(summary.jobId)).state).toBe('succeeded')
    }
    const taskStreams = (p: JobPeer): number => p.node.getConnections().flatMap(c => c.streams).filter(st => st.protocol === '/lepton/tasks/1.0.0').length
    const deadline = Date.now() + 10_000
    while ([s, ...workers].some(p => taskStreams(p as JobPeer) > 0) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
    expect([s, ...workers].map(p => taskStreams(p as JobPeer))).toEqual([0, 0, 0])
  }, 60_000)

  it('fails a job whose task keeps throwing, with the task error, after the retries', async () => {
    const [submitter] = await mesh([{}, {}])
    const s = submitter as JobPeer
    const module = await writeModule(s.dir, 'throws.js', 'export function map () { throw new Error("bad record 42") }\nexport function reduce (v) { return v }\n')
    const summary = await s.jobs.submit({ module, tasks: 2, retries: 1 })
    const detail = await s.jobs.wait(summary.jobId)
    expect(detail.state).toBe('failed')
    expect(detail.error).toMatch(/bad record 42/)
    expect(detail.error).toMatch(/2 attempts/)
  }, 60_000)
})
