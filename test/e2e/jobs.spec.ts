/**
 * Jobs with real daemons through the CLI: a worker killed mid-job, the
 * submitter's daemon killed and restarted mid-job, tasks that break their
 * memory or time limit.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { cliJson, runCli, startDaemon } from '../../scripts/local-mesh.ts'
import { Client } from '../../src/api/index.ts'
import { WORDCOUNT, corpus, wordcountLocal } from '../jobs/helpers.ts'
import type { DaemonProcess } from '../../scripts/local-mesh.ts'
import type { JobDetail } from '../../src/jobs/index.ts'

/** ~150 ms of arithmetic per task, deterministic: the output depends on ctx.task only. */
const SLOW = `
export function map (input, ctx) {
  let x = ctx.task + 1
  for (let i = 0; i < 6e6; i++) x = (x * 1103515245 + 12345) % 2147483648
  return { task: ctx.task, x }
}
export function reduce (values) { return values }
`

function slowLocal (tasks: number): Array<{ task: number, x: number }> {
  return Array.from({ length: tasks }, (_, task) => {
    let x = task + 1
    for (let i = 0; i < 6e6; i++) x = (x * 1103515245 + 12345) % 2147483648
    return { task, x }
  })
}

/**
 * Polls the job through the client until `until` holds. (A CLI process per
 * poll took ~0.4 s: a job of a second or two could end between two looks.)
 * A job that ends before that moment fails the wait at once.
 */
async function waitFor (repo: string, id: string, until: (d: JobDetail) => boolean, timeoutMs = 90_000): Promise<JobDetail> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const d = await (await Client.connect({ repo })).job(id)
    if (until(d)) return d
    if (d.state !== 'running') throw new Error(`job ${id} ended (${d.state}) before the moment awaited: ${JSON.stringify(d.tasks)} ${d.error ?? ''}`)
    if (Date.now() > deadline) throw new Error(`job ${id} did not get there in time: ${JSON.stringify(d.tasks)} ${d.state} ${d.error ?? ''}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** Waits for the job to end, then reads it as users do: `lepton job ID --json`. */
async function ended (repo: string, id: string): Promise<JobDetail> {
  await waitFor(repo, id, x => x.state !== 'running')
  return await cliJson<JobDetail>(['job', id, '--json', '--repo', repo])
}

describe('jobs across daemons', () => {
  let dir: string
  let boot: DaemonProcess
  let submitter: DaemonProcess
  const workers: DaemonProcess[] = []
  const all: DaemonProcess[] = []
  let bootstrap: string[]

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lepton-jobs-e2e-'))
    // the bootstrap peer runs no tasks, so tests can kill the workers freely
    boot = await startDaemon({ repo: join(dir, 'boot'), extraArgs: ['--slots', '0'] })
    all.push(boot)
    bootstrap = [boot.addresses[0] as string]
    // every daemon that starts is remembered at once, so afterAll stops it even if another fails to start
    const start = async (name: string, slots: string): Promise<DaemonProcess> => {
      const d = await startDaemon({ repo: join(dir, name), bootstrap, extraArgs: ['--slots', slots] })
      all.push(d)
      return d
    }
    const started = await Promise.all([start('submitter', '0'), start('w1', '1'), start('w2', '1'), start('w3', '1')])
    submitter = started[0] as DaemonProcess
    workers.push(...started.slice(1))
    await writeFile(join(dir, 'wordcount.js'), WORDCOUNT)
    await writeFile(join(dir, 'slow.js'), SLOW)
  }, 60_000)

  // a failure here is usually a stall somewhere in the mesh: the daemons' own logs say where
  afterEach(({ task }) => {
    if (task.result?.state !== 'fail') return
    for (const d of new Set([...all, submitter, ...workers])) {
      if (d == null) continue
      const lines = d.log().trimEnd().split('\n')
      console.error(`--- ${d.repo} (${d.peerId}), last ${Math.min(lines.length, 200)} of ${lines.length} log lines\n${lines.slice(-200).join('\n')}`)
    }
  })

  afterAll(async () => {
    await Promise.all([...all, submitter, ...workers].filter(d => d != null).map(async d => await d.kill('SIGTERM')))
    await rm(dir, { recursive: true, force: true })
  })

  it('word count from a peer that runs no tasks equals a local run; tasks ran on other peers', async () => {
    const text = corpus(3 * 1024 * 1024, 3)
    await writeFile(join(dir, 'corpus.txt'), text)
    const res = await runCli(['submit', join(dir, 'wordcount.js'), '--input', join(dir, 'corpus.txt'), '--partitions', '8', '--json', '--repo', submitter.repo], { timeoutMs: 90_000 })
    expect(res.code, res.stderr).toBe(0)
    const out = JSON.parse(res.stdout) as { result: unknown, resultCid: string, workers: Record<string, number>, tasks: { total: number } }
    expect(out.result).toEqual(wordcountLocal(text))
    expect(out.tasks.total).toBe(8)
    expect(out.resultCid).toMatch(/^baf/)
    expect(Object.keys(out.workers)).not.toContain(submitter.peerId)
    expect(Object.keys(out.workers).length).toBeGreaterThanOrEqual(2)
  }, 120_000)

  it('a worker killed with SIGKILL mid-job: the job completes with the identical result', async () => {
    const { jobId } = await cliJson<{ jobId: string }>(['submit', join(dir, 'slow.js'), '--tasks', '24', '--detach', '--json', '--repo', submitter.repo])
    const d = await waitFor(submitter.repo, jobId, x => x.tasks.done >= 3 && x.taskList.some(t => t.running.length > 0))
    const busy = d.taskList.flatMap(t => t.running)
    const victim = workers.find(w => busy.includes(w.peerId)) as DaemonProcess
    expect(victim).toBeDefined()
    await victim.kill('SIGKILL')
    workers.splice(workers.indexOf(victim), 1)
    const end = await ended(submitter.repo, jobId)
    expect(end.error).toBeNull()
    expect(end.state).toBe('succeeded')
    expect(end.result).toEqual(slowLocal(24))
    // it had leases when it died; they went to the others
    expect(end.tasks.done).toBe(24)
    // replace it for the next tests
    workers.push(await startDaemon({ repo: join(dir, 'w4'), bootstrap, extraArgs: ['--slots', '1'] }))
  }, 120_000)

  it('the submitter daemon killed and restarted mid-job: the job resumes; finished tasks are not run again', async () => {
    const { jobId } = await cliJson<{ jobId: string }>(['submit', join(dir, 'slow.js'), '--tasks', '30', '--detach', '--json', '--repo', submitter.repo])
    const before = await waitFor(submitter.repo, jobId, x => x.tasks.done >= 4)
    expect(before.tasks.done).toBeLessThan(30)
    const doneBefore = before.taskList.filter(t => t.state === 'done').map(t => t.index)
    await submitter.kill('SIGKILL')
    submitter = await startDaemon({ repo: submitter.repo, bootstrap, extraArgs: ['--slots', '0'] })
    const end = await ended(submitter.repo, jobId)
    expect(end.error).toBeNull()
    expect(end.state).toBe('succeeded')
    expect(end.resumed).toBe(1)
    expect(end.result).toEqual(slowLocal(30))
    for (const i of doneBefore) {
      const t = end.taskList[i]
      expect(t?.finishedInRun).toBe(0)
      expect(t?.runs).toBe(1)
    }
    expect(end.taskList.some(t => t.finishedInRun === 1)).toBe(true)
  }, 120_000)

  it('tasks that exceed their memory or time limit fail the job with that limit named; the workers serve the next job', async () => {
    await writeFile(join(dir, 'hog.js'), 'export function map () { const a = []; for (;;) a.push(new Array(1e5).fill(Math.random())) }\n')
    await writeFile(join(dir, 'spin.js'), 'export function map () { for (;;) {} }\n')
    const hog = await runCli(['submit', join(dir, 'hog.js'), '--memory', '32', '--retries', '0', '--repo', submitter.repo], { timeoutMs: 60_000 })
    expect(hog.code).toBe(1)
    expect(hog.stderr).toMatch(/memory limit/)
    const spin = await runCli(['submit', join(dir, 'spin.js'), '--time-limit', '500', '--retries', '1', '--repo', submitter.repo], { timeoutMs: 60_000 })
    expect(spin.code).toBe(1)
    expect(spin.stderr).toMatch(/time limit/)
    for (const w of workers) expect(w.process.exitCode).toBeNull()
    const next = await runCli(['submit', join(dir, 'slow.js'), '--tasks', '4', '--json', '--repo', submitter.repo], { timeoutMs: 60_000 })
    expect(next.code, next.stderr).toBe(0)
    expect((JSON.parse(next.stdout) as { result: unknown }).result).toEqual(slowLocal(4))
  }, 120_000)
})
