/**
 * `npm run bench [-- SUITE...]`: each figure is printed next to a ceiling
 * measured in the same run on this machine, as a ratio.
 *
 *   store    add vs sha256 (random bytes, then text); two-process fetch vs one raw libp2p stream; 3-provider fetch
 *   jobs     dispatch of 1000 no-op tasks (tasks/s, ms/task); 2-worker speedup vs one process
 *   routing  mean E = (T0 - T) / T0 of chosen routes vs the best one-hop E on the ground truth
 *   sandbox  job functions warm in the sandbox vs called directly in V8 (scripts/bench/sandbox.ts)
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Client } from '../src/api/index.ts'
import { DAEMON_NODE_FLAGS } from '../src/cli/node-flags.ts'
import { createNode } from '../src/node/index.ts'
import { Router } from '../src/routing/index.ts'
import type { LeptonNode } from '../src/node/index.ts'
import type { Multiaddr } from '@multiformats/multiaddr'
import { seededText } from './bench/text.ts'
import { LocalMesh, watchRss } from './local-mesh.ts'
import { benchJobs } from './bench/jobs.ts'
import { benchSandbox } from './bench/sandbox.ts'

const MIB = 1024 * 1024
const rate = (bytes: number, ms: number): number => bytes / MIB / (ms / 1000)
const fmt = (x: number): string => x.toFixed(1)

function line (name: string, value: number, ceilingName: string, ceiling: number, extra = ''): void {
  console.log(`${name.padEnd(34)} ${fmt(value).padStart(8)} MiB/s   ${ceilingName.padEnd(28)} ${fmt(ceiling).padStart(8)} MiB/s   ratio ${(value / ceiling).toFixed(2)}${extra}`)
}

/** One raw noise+yamux stream between two processes started with the daemon's Node flags (bench/raw-peer.ts). */
async function rawStreamCeiling (frames: number): Promise<number> {
  const peer = join(import.meta.dirname, 'bench/raw-peer.ts')
  const sender = spawn(process.execPath, [...DAEMON_NODE_FLAGS, peer, 'send', String(frames)], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const addr = await firstLine(sender)
    const receiver = spawn(process.execPath, [...DAEMON_NODE_FLAGS, peer, 'receive', addr], { stdio: ['ignore', 'pipe', 'inherit'] })
    const [bytes, ms] = (await firstLine(receiver)).split(' ').map(Number) as [number, number]
    return rate(bytes, ms)
  } finally {
    sender.kill('SIGTERM')
  }
}

/** The first line a child prints (rejects if it exits first). */
async function firstLine (child: ChildProcess): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0] as string) })
    child.once('exit', code => { reject(new Error(`bench/raw-peer.ts exited with ${code} before printing a line`)) })
  })
}

/**
 * Writes a bench input file and makes it durable before anything is timed:
 * otherwise the kernel is still writing these 256 MiB back while the first add
 * runs, and that add pays for the bench's own input.
 */
async function writeInput (path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'w')
  try {
    await handle.writeFile(bytes)
    await handle.datasync()
  } finally {
    await handle.close()
  }
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number

/**
 * `runs` adds of the same file, each timed next to a sha256 of the same bytes
 * in this process; between runs the file is unpinned and gc'd, so every add
 * writes all its blocks again (none is already there). Prints the medians and
 * every run (the first is a cold daemon's). The last add stays pinned.
 */
async function benchAdd (client: Client, name: string, file: string, bytes: Uint8Array, runs: number): Promise<{ cid: string }> {
  const adds: number[] = []
  const shas: number[] = []
  let added = { cid: '' }
  for (let i = 0; i < runs; i++) {
    if (i > 0) {
      await client.pinRm(added.cid)
      await client.gc()
    }
    let t = performance.now()
    createHash('sha256').update(bytes).digest()
    shas.push(rate(bytes.byteLength, performance.now() - t))
    t = performance.now()
    added = await client.add(file)
    adds.push(rate(bytes.byteLength, performance.now() - t))
  }
  line(name, median(adds), 'sha256 (node:crypto)', median(shas), `   (median of ${runs}: add ${adds.map(fmt).join(' / ')}, sha256 ${shas.map(fmt).join(' / ')})`)
  return added
}

async function benchStore (): Promise<void> {
  const sizeMiB = Number(process.env.BENCH_STORE_MIB ?? 256)
  console.log(`\nstore: ${sizeMiB} MiB of random bytes (and ${sizeMiB} MiB of seeded text for a second add), daemons on 127.0.0.1`)
  const mesh = await LocalMesh.start(4)
  try {
    const file = join(mesh.dir, 'data.bin')
    const data = randomBytes(sizeMiB * MIB)
    await writeInput(file, data)

    const clients = await Promise.all(mesh.daemons.map(async d => await Client.connect({ repo: d.repo })))
    const [a, b, c, d] = clients as [Client, Client, Client, Client]
    const runs = Number(process.env.BENCH_ADD_RUNS ?? 5)
    const added = await benchAdd(a, 'add (daemon reads the file)', file, data, runs)

    // text: every leaf is deflated (level 1) before it is stored
    const textFile = join(mesh.dir, 'text.txt')
    const text = seededText(sizeMiB * MIB)
    await writeInput(textFile, text)
    await benchAdd(a, 'add, text (stored deflated)', textFile, text, runs)
    await rm(textFile, { force: true })

    const raw = await rawStreamCeiling(sizeMiB * 4)
    const watch = watchRss(mesh.daemons[1]?.process.pid ?? 0)
    let t = performance.now()
    await b.pinAdd(added.cid)
    const fetch = rate(data.byteLength, performance.now() - t)
    const peak = await watch.stop()
    line('fetch, 2 daemon processes', fetch, 'raw libp2p stream, 2 procs', raw, `   (fetcher peak RSS ${fmt(peak)} MiB)`)

    await c.pinAdd(added.cid)
    t = performance.now()
    await d.pinAdd(added.cid)
    const fetch3 = rate(data.byteLength, performance.now() - t)
    line('fetch from 3 providers', fetch3, 'raw libp2p stream, 2 procs', raw)
    await rm(file, { force: true })
  } finally {
    await mesh.stop()
  }
}

/**
 * Route choice on a seeded overlay of in-process nodes: ground-truth RTTs from
 * points in a plane, with some direct links made 5x slower (a bad peering, as
 * RON found on the Internet); delays injected into the RTT monitors' echoes.
 * The seed's metric E = (T0 - T) / T0 is compared with the best E a one-hop
 * detour offers on the ground truth (the forwarder's reach; two hops shown too).
 */
async function benchRouting (): Promise<void> {
  const count = Number(process.env.BENCH_ROUTING_PEERS ?? 8)
  const settleMs = Number(process.env.BENCH_ROUTING_SETTLE_MS ?? 12_000)
  let seed = 1234
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  const points = Array.from({ length: count }, () => [rand() * 60, rand() * 60] as const)
  const truth: number[][] = points.map(a => points.map(b => 2 + Math.hypot(a[0] - b[0], a[1] - b[1])))
  for (let i = 0; i < count; i++) {
    for (let j = i + 1; j < count; j++) {
      if (rand() < 0.25) {
        const slow = (truth[i]?.[j] ?? 0) * 5
        ;(truth[i] as number[])[j] = slow
        ;(truth[j] as number[])[i] = slow
      }
    }
  }
  console.log(`\nrouting: ${count} in-process nodes, seeded plane, 25% of direct links 5x slower, ${settleMs / 1000} s to settle`)
  const index = new Map<string, number>()
  const nodes: LeptonNode[] = []
  const routers: Router[] = []
  try {
    for (let i = 0; i < count; i++) {
      const node = await createNode({
        rtt: { intervalMs: 250, echoDelayMs: (peer) => truth[i]?.[index.get(peer.toString()) ?? i] ?? 0 },
        connector: { intervalMs: 500 }
      })
      index.set(node.peerId.toString(), i)
      nodes.push(node)
    }
    for (let i = 1; i < count; i++) {
      for (let j = 0; j < i; j++) await (nodes[i] as LeptonNode).dial((nodes[j] as LeptonNode).getMultiaddrs()[0] as Multiaddr)
    }
    for (const node of nodes) {
      const router = new Router(node, { gossipIntervalMs: 1000, updateIntervalMs: 250 })
      router.start()
      routers.push(router)
    }
    await new Promise(resolve => setTimeout(resolve, settleMs))
    let achieved = 0
    let best = 0
    let best2 = 0
    let pairs = 0
    let detours = 0
    for (let i = 0; i < count; i++) {
      for (const r of (routers[i] as Router).routes()) {
        const j = index.get(r.destination) as number
        const t0 = truth[i]?.[j] as number
        // the chosen path priced on the ground truth, not on its own estimate
        const hops = [i, ...r.path.map(p => index.get(p) as number)]
        let t = 0
        for (let h = 1; h < hops.length; h++) t += truth[hops[h - 1] as number]?.[hops[h] as number] as number
        let optimal = t0 // one intermediate at most: what the forwarder follows
        let optimal2 = t0 // two: what overlay routing could do with chaining
        for (let a = 0; a < count; a++) {
          if (a === i || a === j) continue
          optimal = Math.min(optimal, (truth[i]?.[a] as number) + (truth[a]?.[j] as number))
          for (let b = 0; b < count; b++) {
            if (b === i || b === j || b === a) continue
            optimal2 = Math.min(optimal2, (truth[i]?.[a] as number) + (truth[a]?.[b] as number) + (truth[b]?.[j] as number))
          }
        }
        optimal2 = Math.min(optimal2, optimal)
        achieved += (t0 - t) / t0
        best += (t0 - optimal) / t0
        best2 += (t0 - optimal2) / t0
        pairs++
        if (r.path.length > 1) detours++
      }
    }
    console.log(`${'mean E over all pairs'.padEnd(34)} ${(achieved / pairs).toFixed(3).padStart(8)}       ${'best 1-hop E (ground truth)'.padEnd(28)} ${(best / pairs).toFixed(3).padStart(8)}         ratio ${(achieved / Math.max(best, 1e-9)).toFixed(2)}   (${detours}/${pairs} routes take a detour; best with 2 hops: ${(best2 / pairs).toFixed(3)})`)
  } finally {
    for (const r of routers) r.stop()
    await Promise.all(nodes.map(async n => { await n.stop() }))
  }
}

const suites: Record<string, () => Promise<void>> = { store: benchStore, routing: benchRouting, jobs: benchJobs, sandbox: benchSandbox }
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(suites)
console.log(`lepton bench ${new Date().toISOString()} node ${process.version}`)
for (const name of wanted) {
  const suite = suites[name]
  if (suite == null) {
    console.error(`unknown suite "${name}"; suites: ${Object.keys(suites).join(', ')}`)
    process.exit(2)
  }
  await suite()
}
