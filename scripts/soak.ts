/**
 * `npm run soak [-- --minutes 10 --peers 20]`: a mesh of daemons on this
 * machine runs a stream of jobs while one worker is killed (SIGKILL) and
 * restarted every minute. Every result is checked against a single-process
 * run. Prints jobs run/failed/wrong, and each daemon's RSS growth after the
 * warm-up (the first 20% of the run; for a restarted daemon, the same span
 * after its restart): the median of the samples in the 30 s after the warm-up
 * against the median of the last 30 s. A single 5 s sample at each end lands
 * anywhere on the heap's collect-and-refill sawtooth (+-15 MiB on a ~200 MiB
 * daemon); the median of six does not.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from '../src/api/index.ts'
import { generateCorpus } from './corpus.ts'
import { LocalMesh, rssMiB, startDaemon } from './local-mesh.ts'
import type { DaemonProcess } from './local-mesh.ts'

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`--${name} must be a positive number`)
    process.exit(2)
  }
  return v
}

/** `--logs DIR`: every daemon's log (killed ones too) is written there at the end. */
function textArg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const MINUTES = arg('minutes', 10)
const LOGS = textArg('logs')
const PEERS = Math.round(arg('peers', 20))
const KILL_EVERY_MS = arg('kill-every-s', 60) * 1000
const IN_FLIGHT = 2
const MODULE = resolve(import.meta.dirname, '../examples/wordcount.js')
const durationMs = MINUTES * 60_000
const warmupMs = durationMs * 0.2
/** RSS samples compared at each end of the measured span. */
const WINDOW_MS = 30_000

const wordcount = await import(MODULE) as { map(input: string): unknown, reduce(values: unknown[]): unknown }

console.log(`soak: ${PEERS} daemons, ${MINUTES} min, ${IN_FLIGHT} jobs in flight, a worker killed (SIGKILL) and restarted every ${KILL_EVERY_MS / 1000} s`)
// peer0 is the bootstrap peer and the submitter; it runs no tasks
const mesh = await LocalMesh.start(PEERS, { argsFor: (i) => ['--slots', i === 0 ? '0' : '1'], concurrency: 4, timeoutMs: 60_000 })
const bootstrap = [mesh.daemons[0]?.addresses[0] as string]
const submitter = await Client.connect({ repo: mesh.daemons[0]?.repo })
const started = Date.now()
const stats = { jobs: 0, failed: 0, wrong: 0, kills: 0, tasks: 0 }
const failures: string[] = []
const killed = new Set<number>()
/** When each daemon (by index) was last (re)started, ms since the start. */
const startedAtMs = new Map<number, number>()
/** Logs of the daemons killed so far. */
const deadLogs: Array<{ name: string, text: string }> = []
/** RSS samples of the daemon now running at each index: [msSinceStart, MiB]. */
const rss = new Map<number, Array<[number, number]>>()

async function runJobs (lane: number): Promise<void> {
  let n = 0
  while (Date.now() - started < durationMs) {
    // every job gets its own text, so no task is answered from lineage
    const seed = lane * 1_000_000 + n++
    const text = generateCorpus(512 * 1024, seed)
    const input = join(mesh.dir, `corpus-${lane}.txt`)
    await writeFile(input, text)
    const expected = JSON.stringify(wordcount.reduce([wordcount.map(text)]))
    try {
      const r = await (await submitter.submit({ module: MODULE, input, partitions: 6, timeoutS: 120 })).result()
      stats.jobs++
      stats.tasks += r.tasks.total
      if (JSON.stringify(r.result) !== expected) {
        stats.wrong++
        failures.push(`job ${r.jobId}: result differs from the single-process run`)
      }
    } catch (err) {
      stats.jobs++
      stats.failed++
      failures.push((err as Error).message)
    }
  }
}

async function killer (): Promise<void> {
  let next = 1
  while (Date.now() - started < durationMs - KILL_EVERY_MS / 2) {
    await sleep(KILL_EVERY_MS)
    if (Date.now() - started >= durationMs) break
    const i = 1 + (next++ % (PEERS - 1))
    const victim = mesh.daemons[i] as DaemonProcess
    await victim.kill('SIGKILL')
    deadLogs.push({ name: `peer${i}.killed${stats.kills}`, text: victim.log() })
    stats.kills++
    killed.add(i)
    rss.delete(i)
    await sleep(2000)
    mesh.daemons[i] = await startDaemon({ repo: victim.repo, bootstrap, extraArgs: ['--slots', '1'], timeoutMs: 60_000 })
    startedAtMs.set(i, Date.now() - started)
    console.log(`  ${((Date.now() - started) / 60_000).toFixed(1)} min: killed and restarted peer${i}; ${stats.jobs} jobs done, ${stats.failed} failed, ${stats.wrong} wrong`)
  }
}

async function sampler (): Promise<void> {
  while (Date.now() - started < durationMs) {
    for (const [i, d] of mesh.daemons.entries()) {
      if (d.process.pid == null) continue
      const mib = await rssMiB(d.process.pid)
      if (mib > 0) rss.set(i, [...(rss.get(i) ?? []), [Date.now() - started, mib]])
    }
    await sleep(5000)
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

try {
  await Promise.all([runJobs(0), runJobs(1), killer(), sampler()])
  const growth: Array<{ peer: number, atWarmup: number, atEnd: number, growth: number }> = []
  for (const [i, samples] of rss) {
    const from = (startedAtMs.get(i) ?? 0) + warmupMs
    const last = samples.at(-1)?.[0] ?? 0
    // a daemon restarted too late for a warm-up and two windows is not measured
    if (last - from < 2 * WINDOW_MS) continue
    const head = median(samples.filter(([t]) => t >= from && t < from + WINDOW_MS).map(([, m]) => m))
    const tail = median(samples.filter(([t]) => t > last - WINDOW_MS).map(([, m]) => m))
    growth.push({ peer: i, atWarmup: head, atEnd: tail, growth: (tail - head) / head })
  }
  const restarted = growth.filter(g => killed.has(g.peer)).length
  growth.sort((a, b) => b.growth - a.growth)
  const minutes = (Date.now() - started) / 60_000
  console.log(`\nsoak figures (${new Date().toISOString()}, ${PEERS} daemons, ${minutes.toFixed(1)} min)`)
  console.log(`  jobs ${stats.jobs} (${stats.tasks} tasks), failed ${stats.failed}, wrong results ${stats.wrong}, workers killed and restarted ${stats.kills}`)
  console.log(`  throughput ${(stats.jobs / minutes).toFixed(1)} jobs/min, ${(stats.tasks / minutes / 60).toFixed(1)} tasks/s`)
  const worst = growth[0]
  console.log(`  RSS growth after warm-up over ${growth.length} daemons (${restarted} of them restarted, measured from their own warm-up): worst ${worst == null ? '-' : `${(worst.growth * 100).toFixed(1)}% (peer${worst.peer}: ${worst.atWarmup.toFixed(0)} -> ${worst.atEnd.toFixed(0)} MiB)`}, median ${growth.length === 0 ? '-' : `${((growth[Math.floor(growth.length / 2)]?.growth ?? 0) * 100).toFixed(1)}%`}`)
  const sub = growth.find(g => g.peer === 0)
  if (sub != null) console.log(`  submitter (peer0): ${sub.atWarmup.toFixed(0)} -> ${sub.atEnd.toFixed(0)} MiB (${(sub.growth * 100).toFixed(1)}%)`)
  for (const f of failures.slice(0, 10)) console.log(`  failure: ${f}`)
  const ok = stats.failed === 0 && stats.wrong === 0 && worst != null && worst.growth < 0.1
  console.log(ok ? 'PASS: 0 failed jobs, every result correct, RSS growth < 10%' : 'FAIL')
  process.exitCode = ok ? 0 : 1
} finally {
  if (LOGS != null) {
    await mkdir(LOGS, { recursive: true })
    for (const [i, d] of mesh.daemons.entries()) deadLogs.push({ name: `peer${i}`, text: d.log() })
    for (const { name, text } of deadLogs) await writeFile(join(LOGS, `${name}.log`), text)
    await writeFile(join(LOGS, 'rss.json'), JSON.stringify(Object.fromEntries(rss)))
    console.log(`  daemon logs in ${LOGS}`)
  }
  await mesh.stop()
}
