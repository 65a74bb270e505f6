/**
 * `npm run bench [-- SUITE...]`: each figure is printed next to a ceiling
 * measured in the same run on this machine, as a ratio.
 *
 *   store   add vs sha256; two-process fetch vs one raw libp2p stream; 3-provider fetch
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { Client } from '../src/api/index.ts'
import { createNode } from '../src/node/index.ts'
import { RAW_PROTOCOL } from './bench/raw-peer.ts'
import { LocalMesh, watchRss } from './local-mesh.ts'

const MIB = 1024 * 1024
const rate = (bytes: number, ms: number): number => bytes / MIB / (ms / 1000)
const fmt = (x: number): string => x.toFixed(1)

function line (name: string, value: number, ceilingName: string, ceiling: number, extra = ''): void {
  console.log(`${name.padEnd(34)} ${fmt(value).padStart(8)} MiB/s   ${ceilingName.padEnd(28)} ${fmt(ceiling).padStart(8)} MiB/s   ratio ${(value / ceiling).toFixed(2)}${extra}`)
}

async function rawStreamCeiling (frames: number): Promise<number> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'bench/raw-peer.ts'), String(frames)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const addr = await new Promise<string>((resolve) => {
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('\n')) resolve(out.trim()) })
  })
  const node = await createNode()
  try {
    const started = performance.now()
    const stream = await node.dialProtocol(multiaddr(addr), RAW_PROTOCOL)
    let bytes = 0
    for await (const chunk of stream) bytes += chunk.byteLength
    return rate(bytes, performance.now() - started)
  } finally {
    await node.stop()
    child.kill('SIGTERM')
  }
}

async function benchStore (): Promise<void> {
  const sizeMiB = Number(process.env.BENCH_STORE_MIB ?? 256)
  console.log(`\nstore: ${sizeMiB} MiB of random bytes, daemons on 127.0.0.1`)
  const mesh = await LocalMesh.start(4)
  try {
    const file = join(mesh.dir, 'data.bin')
    const data = randomBytes(sizeMiB * MIB)
    await writeFile(file, data)

    let t = performance.now()
    createHash('sha256').update(data).digest()
    const sha = rate(data.byteLength, performance.now() - t)
    const clients = await Promise.all(mesh.daemons.map(async d => await Client.connect({ repo: d.repo })))
    const [a, b, c, d] = clients as [Client, Client, Client, Client]
    t = performance.now()
    const added = await a.add(file)
    const add = rate(data.byteLength, performance.now() - t)
    line('add (daemon reads the file)', add, 'sha256 (node:crypto)', sha)

    const raw = await rawStreamCeiling(sizeMiB * 4)
    const watch = watchRss(mesh.daemons[1]?.process.pid ?? 0)
    t = performance.now()
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

const suites: Record<string, () => Promise<void>> = { store: benchStore }
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
