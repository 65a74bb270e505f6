/**
 * `npm run bench -- sandbox`: the sandbox's cost against plain V8 in this
 * process. The same job functions (examples/) run warm in the sandbox and
 * called directly in the host; figures are medians.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import ivm from 'isolated-vm'
import { createSandbox } from '../../src/sandbox/index.ts'
import { mulberry32 } from '../../src/random.ts'
import type { RunRequest, Sandbox, TaskContext } from '../../src/sandbox/index.ts'

const EXAMPLES = join(import.meta.dirname, '../../examples')
const LIMITS = { memoryMiB: 256, timeMs: 60_000 }

interface JobModule {
  map(input: string | Uint8Array, ctx: TaskContext): unknown
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

async function timeMs (runs: number, fn: () => unknown): Promise<number> {
  await fn() // warm-up: JIT, warm isolate
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
  }
  return median(times)
}

async function perCallUs (calls: number, fn: () => Promise<unknown>, gapMs = 0): Promise<number> {
  await fn()
  const times: number[] = []
  for (let i = 0; i < calls; i++) {
    if (gapMs > 0) await new Promise(resolve => setTimeout(resolve, gapMs))
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
  }
  return median(times) * 1000
}

function row (name: string, sandboxMs: number, hostName: string, hostMs: number): void {
  console.log(`${name.padEnd(34)} ${sandboxMs.toFixed(1).padStart(8)} ms   ${hostName.padEnd(28)} ${hostMs.toFixed(1).padStart(8)} ms   ratio ${(sandboxMs / hostMs).toFixed(2)}`)
}

function text (bytes: number): string {
  const words = ['mesh', 'Peer', 'block', 'lepton', 'route', 'the', 'of', 'and', 'compute', 'vérify', 'naïve', 'Ωmega']
  const rand = mulberry32(7)
  const parts: string[] = []
  let size = 0
  while (size < bytes) {
    const w = (words[Math.floor(rand() * words.length)] as string) + (rand() < 0.1 ? '.\n' : ' ')
    parts.push(w)
    size += w.length
  }
  return parts.join('')
}

export async function benchSandbox (): Promise<void> {
  const mib = Number(process.env.BENCH_SANDBOX_MIB ?? 4)
  console.log('\nsandbox: examples/ run warm in the sandbox vs called directly in this process (medians)')

  // what the JS runtime is made of
  const isolates: ivm.Isolate[] = []
  const isolateUs = await perCallUs(30, async () => { isolates.push(new ivm.Isolate({ memoryLimit: 64 })) })
  const iso = isolates[0] as ivm.Isolate
  const contextUs = await perCallUs(50, async () => { (await iso.createContext()).release() })
  for (const i of isolates) i.dispose()
  console.log(`${'isolate creation'.padEnd(34)} ${(isolateUs / 1000).toFixed(2).padStart(8)} ms   ${'context creation'.padEnd(28)} ${(contextUs / 1000).toFixed(2).padStart(8)} ms`)

  const fresh = createSandbox()
  const reusing = createSandbox({ reuseContexts: true })
  try {
    const noop = new TextEncoder().encode('export function map () { return null }')
    const call = (sandbox: Sandbox) => async (): Promise<unknown> => await sandbox.run({ runtime: 'js', code: noop, codeId: 'noop', fn: 'map', input: new Uint8Array(0), limits: LIMITS })
    const back = await perCallUs(300, call(fresh))
    const spaced = await perCallUs(100, call(fresh), 5)
    const reused = await perCallUs(1000, call(reusing))
    console.log(`${'no-op map, per call'.padEnd(34)} fresh context: ${back.toFixed(0)} µs back to back, ${spaced.toFixed(0)} µs with 5 ms between calls (context prepared ahead); reuseContexts: ${reused.toFixed(0)} µs`)

    const wordcountPath = join(EXAMPLES, 'wordcount.js')
    const wordcountCode = await readFile(wordcountPath)
    const wordcount = await import(wordcountPath) as JobModule
    const corpus = text(mib * 1024 * 1024)
    const corpusBytes = new TextEncoder().encode(corpus)
    const ctx: TaskContext = { task: 0, tasks: 1, seed: 1, args: { samples: '1000000' } }
    const run = (req: Pick<RunRequest, 'code' | 'codeId' | 'input'>) => async (): Promise<unknown> => await fresh.run({ runtime: 'js', fn: 'map', ctx, limits: LIMITS, ...req })
    const wcSandbox = await timeMs(5, run({ code: wordcountCode, codeId: 'wordcount', input: corpusBytes }))
    // the host gets the same input work: decoding the partition's bytes
    const wcHost = await timeMs(5, () => wordcount.map(new TextDecoder().decode(corpusBytes), ctx))
    row(`wordcount map, ${mib} MiB`, wcSandbox, 'same function, host V8', wcHost)

    const piPath = join(EXAMPLES, 'pi.js')
    const pi = await import(piPath) as JobModule
    const piSandbox = await timeMs(7, run({ code: await readFile(piPath), codeId: 'pi', input: new Uint8Array(0) }))
    const piHostNative = await timeMs(7, () => pi.map('', ctx))
    const realRandom = Math.random
    Math.random = mulberry32(ctx.seed) // the sandbox's generator, for the same work
    const piHostSeeded = await timeMs(7, () => pi.map('', ctx))
    Math.random = realRandom
    row('pi map, 1e6 samples', piSandbox, 'host V8, same seeded random', piHostSeeded)
    row('pi map, 1e6 samples', piSandbox, 'host V8, native Math.random', piHostNative)

    const linecount = await readFile(join(EXAMPLES, 'linecount.wasm'))
    const wasmRun = (input: Uint8Array) => async (): Promise<unknown> => await fresh.run({ runtime: 'wasm', code: linecount, codeId: 'linecount', fn: 'map', input, limits: LIMITS })
    const wasmNoop = await perCallUs(200, wasmRun(new Uint8Array(0)))
    const wasmBig = await timeMs(5, wasmRun(corpusBytes))
    const jsLines = await timeMs(5, () => { let n = 0; for (const b of corpusBytes) if (b === 10) n++; return n })
    row(`wasm linecount, ${mib} MiB`, wasmBig, 'JS byte loop, host V8', jsLines)
    console.log(`${'wasm empty input, per call'.padEnd(34)} ${wasmNoop.toFixed(0)} µs (warm worker, module compiled once)`)
  } finally {
    await fresh.close()
    await reusing.close()
  }
}
