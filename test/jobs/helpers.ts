import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '../../src/log.ts'
import { createJobs } from '../../src/jobs/index.ts'
import { createNode } from '../../src/node/index.ts'
import { defaultWorkerConfig } from '../../src/repo/index.ts'
import { createSandbox } from '../../src/sandbox/index.ts'
import { createStore } from '../../src/store/index.ts'
import type { JobsInit, JobsService } from '../../src/jobs/index.ts'
import type { LeptonNode } from '../../src/node/index.ts'
import type { Sandbox } from '../../src/sandbox/index.ts'
import type { Store } from '../../src/store/index.ts'

export interface JobPeer {
  node: LeptonNode
  store: Store
  sandbox: Sandbox
  jobs: JobsService
  dir: string
}

/** A node with a store, a sandbox and the jobs service, in a fresh repo folder. */
export async function startJobPeer (options: { bootstrap?: string[], slots?: number, tamper?: JobsInit['tamper'], dir?: string, accept?: 'any' | string[], reuseContexts?: boolean } = {}): Promise<JobPeer> {
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'lepton-jobs-'))
  const node = await createNode({ connector: { bootstrap: options.bootstrap, intervalMs: 200 }, rtt: { intervalMs: 200 } })
  const store = createStore({ node, repoPath: dir, log: silentLogger })
  await store.start()
  // reuseContexts: as a daemon with worker.isolation "job" (the default) runs
  const sandbox = createSandbox({ reuseContexts: options.reuseContexts })
  const jobs = createJobs({
    node,
    store,
    sandbox,
    repoPath: dir,
    worker: { ...defaultWorkerConfig(), slots: options.slots ?? 2, accept: options.accept ?? 'any' },
    log: silentLogger,
    openStream: async (peer, protocol, signal) => await node.dialProtocol(peer, protocol, { signal }),
    tamper: options.tamper
  })
  await jobs.start()
  return { node, store, sandbox, jobs, dir }
}

export async function stopJobPeer (peer: JobPeer, keepDir = false): Promise<void> {
  await peer.jobs.stop()
  await peer.sandbox.close()
  await peer.store.stop()
  await peer.node.stop()
  if (!keepDir) await rm(peer.dir, { recursive: true, force: true })
}

/** Writes `text` to a file in `dir` and returns its path. */
export async function writeModule (dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, text)
  return path
}

/** Waits until every peer is subscribed to `topic` on each node's view (gossip mesh formed enough to publish). */
export async function waitForMesh (peers: JobPeer[], count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (peers.every(p => p.node.getPeers().length >= count)) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error('mesh did not form')
}

export const WORDCOUNT = `
export function map (input) {
  const counts = {}
  for (const w of input.toLowerCase().split(/[^\\p{L}]+/u)) if (w !== '') counts[w] = (counts[w] ?? 0) + 1
  return counts
}
export function reduce (values) {
  const out = {}
  for (const v of values) for (const [w, n] of Object.entries(v)) out[w] = (out[w] ?? 0) + n
  return out
}
`

export function wordcountLocal (text: string): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const w of text.toLowerCase().split(/[^\p{L}]+/u)) if (w !== '') counts[w] = (counts[w] ?? 0) + 1
  return counts
}

/** Deterministic text of about `bytes` bytes from a small vocabulary. */
export function corpus (bytes: number, seed = 1): string {
  const words = ['mesh', 'peer', 'task', 'lepton', 'gossip', 'block', 'hash', 'route', 'über', 'naïve', 'data', 'map', 'reduce', 'worker', 'lease']
  let s = seed >>> 0
  const lines: string[] = []
  let size = 0
  while (size < bytes) {
    const n = 4 + (s % 9)
    const line: string[] = []
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0
      line.push(words[s % words.length] as string)
    }
    const text = line.join(' ')
    lines.push(text)
    size += text.length + 1
  }
  return lines.join('\n') + '\n'
}
