/**
 * `npm start [-- --peers N]`: a local mesh of N daemons (default 4) in a
 * temporary folder, each bootstrapped only to the first. Shows whom each found
 * and the measured RTTs, then runs a word count over a generated 4 MiB corpus
 * as a map/reduce job submitted from peer0 (which runs no tasks itself),
 * checks it against a single-process run, and stops the mesh.
 */
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from '../src/api/index.ts'
import { generateCorpus } from './corpus.ts'
import { LocalMesh, runCli } from './local-mesh.ts'
import type { PeerInfo } from '../src/api/index.ts'

const peersFlag = process.argv.indexOf('--peers')
const COUNT = peersFlag >= 0 ? Number(process.argv[peersFlag + 1]) : 4
if (!Number.isInteger(COUNT) || COUNT < 3 || COUNT > 20) {
  console.error('usage: npm start [-- --peers N]   (3 <= N <= 20)')
  process.exit(2)
}
const CORPUS_BYTES = 4 * 1024 * 1024
const PARTITIONS = 12
const MODULE = resolve(import.meta.dirname, '../examples/wordcount.js')
const short = (id: string): string => `${id.slice(0, 8)}…${id.slice(-6)}`

const started = Date.now()
console.log(`starting ${COUNT} lepton daemons on 127.0.0.1, each bootstrapped only to the first;`)
console.log('peer0 submits and runs no tasks, the others run one task at a time…')
const mesh = await LocalMesh.start(COUNT, { argsFor: (i) => ['--slots', i === 0 ? '0' : '1'] })
try {
  for (const [i, d] of mesh.daemons.entries()) console.log(`  peer${i} ${d.peerId}  ${d.addresses[0] ?? ''}`)
  // the TypeScript client, as a program would use it (the CLI is a thin layer on it)
  const clients = await Promise.all(mesh.daemons.map(async d => await Client.connect({ repo: d.repo })))
  const ready = Date.now()
  let tables: PeerInfo[][] = []
  for (let tries = 0; tries < 600; tries++) {
    tables = await Promise.all(clients.map(async c => await c.peers()))
    if (tables.every(t => t.length === COUNT - 1)) break
    await sleep(50)
  }
  const full = tables.every(t => t.length === COUNT - 1)
  const formedMs = Date.now() - ready
  console.log(full
    ? `\nevery peer found the ${COUNT - 1} others ${formedMs} ms after all daemons were up (${Date.now() - started} ms after the first process started)${formedMs <= 10_000 ? ', within 10 s' : ', SLOWER than 10 s'}`
    : `\nthe mesh did not fully form within ${formedMs} ms`)
  await sleep(2000) // RTT estimates settle
  tables = await Promise.all(clients.map(async c => await c.peers()))
  const names = new Map(mesh.daemons.map((d, i) => [d.peerId, `peer${i}`]))
  console.log('\nRTT in ms (rows: measured by; columns: to)')
  console.log(`        ${mesh.daemons.map((_, j) => `peer${j}`.padStart(7)).join('')}`)
  for (const [i, d] of mesh.daemons.entries()) {
    const byPeer = new Map((tables[i] ?? []).map(p => [p.peerId, p.rttMs]))
    const cells = mesh.daemons.map(o => o.peerId === d.peerId ? '-' : (byPeer.get(o.peerId)?.toFixed(3) ?? '?'))
    console.log(`  peer${i}${cells.map(c => c.padStart(7)).join('')}`)
  }

  // the job: word count over a generated corpus
  const corpusPath = join(mesh.dir, 'corpus.txt')
  const text = generateCorpus(CORPUS_BYTES)
  await writeFile(corpusPath, text)
  const wordcount = await import(MODULE) as { map(input: string): unknown, reduce(values: unknown[]): unknown }
  let t = performance.now()
  const expected = wordcount.reduce([wordcount.map(text)])
  const localMs = performance.now() - t
  console.log(`\nword count over a ${(text.length / 1048576).toFixed(1)} MiB corpus: in this process ${localMs.toFixed(0)} ms`)

  t = performance.now()
  const job = await clients[0]?.submit({ module: MODULE, input: corpusPath, partitions: PARTITIONS })
  if (job == null) throw new Error('no client')
  if (process.stdout.isTTY) job.on('progress', (s) => { process.stdout.write(`\r  ${s.jobId}: ${s.tasks.done}/${s.tasks.total} tasks done, ${s.tasks.running} running\x1b[K`) })
  const result = await job.result()
  const meshMs = performance.now() - t
  if (process.stdout.isTTY) process.stdout.write('\n')
  const same = JSON.stringify(result.result) === JSON.stringify(expected)
  console.log(`on the mesh (lepton submit from peer0): ${meshMs.toFixed(0)} ms submit to result, job ${result.elapsedMs} ms`)
  console.log(`result ${result.resultCid}: ${same ? 'IDENTICAL to the single-process run' : 'DIFFERENT from the single-process run'} (${Object.keys(result.result as object).length} distinct words)`)
  console.log('tasks per worker: ' + Object.entries(result.workers).map(([w, n]) => `${names.get(w) ?? short(w)} ${n}`).join(', '))
  const detail = await clients[0]?.job(result.jobId)
  const workerMs = (detail?.taskList ?? []).map(x => x.workerMs ?? 0)
  const c = workerMs.reduce((a, b) => a + b, 0) / Math.max(1, workerMs.length)
  const n = result.tasks.total
  console.log(`P = N·C/T = ${n} tasks × ${c.toFixed(0)} ms each / ${result.elapsedMs} ms = ${(n * c / result.elapsedMs).toFixed(2)} (workers busy at once, on average; this machine has 2 cores)`)

  console.log('\nstopping: lepton stop on each daemon')
  await Promise.all(mesh.daemons.map(async d => await runCli(['stop', '--repo', d.repo])))
  const exits = await Promise.all(mesh.daemons.map(async d => await d.kill()))
  console.log(`all daemons exited (codes ${exits.map(e => e.code).join(', ')})`)
  if (!same) process.exitCode = 1
} finally {
  await mesh.stop()
}
