/**
 * `npm start [-- --peers N]`: a local mesh of N daemons (default 6) in a
 * temporary folder, each bootstrapped only to the first. Prints each peer, whom
 * it found through the DHT and the measured RTTs, then stops them.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from '../src/api/index.ts'
import { LocalMesh, runCli } from './local-mesh.ts'
import type { PeerInfo } from '../src/api/index.ts'

const peersFlag = process.argv.indexOf('--peers')
const COUNT = peersFlag >= 0 ? Number(process.argv[peersFlag + 1]) : 6
if (!Number.isInteger(COUNT) || COUNT < 2 || COUNT > 20) {
  console.error('usage: npm start [-- --peers N]   (2 <= N <= 20)')
  process.exit(2)
}
const short = (id: string): string => `${id.slice(0, 8)}…${id.slice(-6)}`

const started = Date.now()
console.log(`starting ${COUNT} lepton daemons on 127.0.0.1, each bootstrapped only to the first…`)
const mesh = await LocalMesh.start(COUNT)
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
  console.log('letting RTT estimates settle for 3 s…\n')
  await sleep(3000)
  tables = await Promise.all(clients.map(async c => await c.peers()))
  const names = new Map(mesh.daemons.map((d, i) => [d.peerId, `peer${i}`]))
  for (const [i, d] of mesh.daemons.entries()) {
    console.log(`peer${i} (${short(d.peerId)}) found ${tables[i]?.length ?? 0} peers:`)
    for (const p of tables[i] ?? []) {
      console.log(`  ${(names.get(p.peerId) ?? short(p.peerId)).padEnd(6)} rtt ${p.rttMs == null ? '   -  ' : p.rttMs.toFixed(3)} ms  ${p.addresses[0] ?? ''}`)
    }
  }
  console.log('\nstopping: lepton stop on each daemon')
  await Promise.all(mesh.daemons.map(async d => await runCli(['stop', '--repo', d.repo])))
  const exits = await Promise.all(mesh.daemons.map(async d => await d.kill()))
  console.log(`all daemons exited (codes ${exits.map(e => e.code).join(', ')})`)
} finally {
  await mesh.stop()
}
