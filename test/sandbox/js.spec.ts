import { afterAll, describe, expect, it } from 'vitest'
import { createSandbox, detectRuntime } from '../../src/sandbox/index.ts'
import { rejection } from '../helpers/errors.ts'
import { LIMITS, codeIdOf, runJs, ticksDuring, utf8 } from './helpers.ts'

const sandbox = createSandbox()
afterAll(async () => { await sandbox.close() })

const ECHO = 'export function map (input, ctx) { return { input: typeof input === "string" ? input : Array.from(input), ctx } }'
const OK = 'export function map (input) { return input.length }'

describe('js runtime: running map/combine/reduce', () => {
  it('passes valid UTF-8 as a string, other bytes as a Uint8Array, and ctx as given', async () => {
    const ctx = { task: 3, tasks: 8, seed: 42, args: { k: 'v' } }
    expect(await runJs(sandbox, ECHO, { input: utf8('héllo'), ctx })).toEqual({ input: 'héllo', ctx })
    expect(await runJs(sandbox, ECHO, { input: new Uint8Array([0xff, 0xfe, 0x41]), ctx })).toEqual({ input: [0xff, 0xfe, 0x41], ctx })
  })

  it('runs combine and reduce on arrays of JSON values, and awaits async functions', async () => {
    const source = 'export function map () { return 0 }\nexport async function combine (v) { await null; return v.length }\nexport function reduce (v) { return v.reduce((a, b) => a + b.n, 0) }'
    expect(await runJs(sandbox, source, { fn: 'combine', input: [1, 2, 3] })).toBe(3)
    expect(await runJs(sandbox, source, { fn: 'reduce', input: [{ n: 1 }, { n: 41 }] })).toBe(42)
  })

  it('refuses results that are not JSON instead of changing them', async () => {
    for (const value of ['undefined', 'new Map()', '{ a: () => 1 }', '[NaN]', '{ d: new Date(0) }', '1n']) {
      const err = await rejection(runJs(sandbox, `export function map () { return ${value} }`))
      expect(err.name, value).toBe('TaskFailedError')
      expect(err.message).toMatch(/not JSON/)
    }
    expect(await runJs(sandbox, 'export function map () { return Object.assign(Object.create(null), { a: [1, "x", null, true] }) }')).toEqual({ a: [1, 'x', null, true] })
  })

  it('a throw becomes TaskFailedError with the message and where it was thrown', async () => {
    const err = await rejection(runJs(sandbox, 'export function map () {\n  throw new Error("no such record")\n}'))
    expect(err.name).toBe('TaskFailedError')
    expect(err.message).toContain('no such record')
    expect(err.message).toContain('job.js:2')
    expect((await rejection(runJs(sandbox, 'export async function map () { throw "plain string" }'))).message).toContain('plain string')
  })

  it('rejects modules that do not compile, import, lack map or a called function', async () => {
    expect((await rejection(runJs(sandbox, 'export function map ( {'))).name).toBe('InvalidModuleError')
    const imports = await rejection(runJs(sandbox, 'import { readFileSync } from "fs"\nexport function map () { return 1 }'))
    expect(imports.name).toBe('InvalidModuleError')
    expect(imports.message).toContain("'fs'")
    expect((await rejection(runJs(sandbox, 'export function reduce () { return 1 }'))).name).toBe('InvalidModuleError')
    expect((await rejection(runJs(sandbox, OK, { fn: 'combine', input: [] }))).name).toBe('InvalidModuleError')
    expect((await rejection(runJs(sandbox, 'throw new Error("top")\nexport function map () {}'))).message).toContain('top')
  })

  it('inspect lists the task functions', async () => {
    const source = 'export function map () {}\nexport const reduce = (v) => v\nexport const combine = 3'
    expect(await sandbox.inspect('js', utf8(source), codeIdOf(source))).toEqual({ runtime: 'js', exports: ['map', 'reduce'] })
    expect((await rejection(sandbox.inspect('js', utf8('export const x = 1'), 'x'))).name).toBe('InvalidModuleError')
  })

  it('detectRuntime tells wasm from JS by the magic number', () => {
    expect(detectRuntime(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toBe('wasm')
    expect(detectRuntime(utf8('export function map () {}'))).toBe('js')
  })
})

describe('js runtime: nothing but the language', () => {
  it('has no require, process, timers, fetch, module-level imports or dynamic imports', async () => {
    const names = ['require', 'process', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'fetch', 'Buffer', 'module', 'WebAssembly', 'SharedArrayBuffer', 'WeakRef']
    const source = `export function map () { return [${names.map(n => `typeof ${n}`).join(', ')}] }`
    expect(await runJs(sandbox, source)).toEqual(names.map(() => 'undefined'))
    const dynamic = await rejection(runJs(sandbox, 'export async function map () { const fs = await import("fs"); return typeof fs.readFileSync }'))
    expect(dynamic.name).toBe('TaskFailedError')
  })

  it('console exists and goes nowhere', async () => {
    expect(await runJs(sandbox, 'export function map () { console.log("x"); console.error("y"); return 1 }')).toBe(1)
  })
})

describe('js runtime: determinism', () => {
  const RANDOM = 'export function map () { return [Math.random(), Math.random()] }\nexport function reduce () { return Math.random() }'
  const ctx = (seed: number): { task: number, tasks: number, seed: number, args: Record<string, string> } => ({ task: 0, tasks: 1, seed, args: {} })

  it('Math.random is seeded by ctx.seed in map, fixed in reduce', async () => {
    const a = await runJs(sandbox, RANDOM, { ctx: ctx(7) })
    expect(await runJs(sandbox, RANDOM, { ctx: ctx(7) })).toEqual(a)
    expect(await runJs(sandbox, RANDOM, { ctx: ctx(8) })).not.toEqual(a)
    expect(await runJs(sandbox, RANDOM, { fn: 'reduce', input: [] })).toBe(await runJs(sandbox, RANDOM, { fn: 'reduce', input: [] }))
    // and it is not the host's generator: the same seed on a second sandbox gives the same numbers
    const other = createSandbox()
    try {
      expect(await runJs(other, RANDOM, { ctx: ctx(7) })).toEqual(a)
    } finally {
      await other.close()
    }
  })

  it('the clock stands at the epoch', async () => {
    expect(await runJs(sandbox, 'export function map () { return [Date.now(), new Date().getTime(), new Date(5).getTime(), new Date() instanceof Date, typeof Date()] }'))
      .toEqual([0, 0, 5, true, 'string'])
  })

  it('no module or global state survives from one task to the next', async () => {
    const source = 'let calls = 0\nexport function map () { globalThis.seen = (globalThis.seen ?? 0) + 1; return [++calls, globalThis.seen] }'
    for (let i = 0; i < 3; i++) expect(await runJs(sandbox, source)).toEqual([1, 1])
    // reuseContexts trades this for speed: state then persists
    const reusing = createSandbox({ reuseContexts: true })
    try {
      expect(await runJs(reusing, source)).toEqual([1, 1])
      expect(await runJs(reusing, source)).toEqual([2, 2])
    } finally {
      await reusing.close()
    }
  })
})

describe('js runtime: limits', () => {
  // keeps n arrays of 2^17 small integers (~0.5-1 MiB each): 40 of them need ~20-40 MiB
  const HOARD = 'export function map (_, ctx) { const keep = []; for (let i = 0; i < Number(ctx.args.n); i++) keep.push(new Array(1 << 17).fill(i)); return keep.length }'
  const ctx = (n: number): { task: number, tasks: number, seed: number, args: Record<string, string> } => ({ task: 0, tasks: 1, seed: 0, args: { n: String(n) } })

  it('a task over its memory cap fails with MemoryLimitError; under a larger cap it runs; the next task runs', async () => {
    expect(await runJs(sandbox, HOARD, { ctx: ctx(40), limits: { memoryMiB: 128, timeMs: 10_000 } })).toBe(40)
    const err = await rejection(runJs(sandbox, HOARD, { ctx: ctx(40), limits: { memoryMiB: 16, timeMs: 10_000 } }))
    expect(err.name).toBe('MemoryLimitError')
    expect(err.message).toBe('memory limit of 16 MiB exceeded')
    expect(await runJs(sandbox, OK, { input: utf8('abc') })).toBe(3)
    expect(await runJs(sandbox, HOARD, { ctx: ctx(4), limits: { memoryMiB: 16, timeMs: 10_000 } })).toBe(4)
  })

  it('an unbounded allocation (array or ArrayBuffers) ends with MemoryLimitError', async () => {
    const bomb = 'export function map () { const a = []; for (;;) a.push({ n: a.length, s: "x" + a.length }) }'
    expect((await rejection(runJs(sandbox, bomb, { limits: { memoryMiB: 16, timeMs: 20_000 } }))).name).toBe('MemoryLimitError')
    const buffers = 'export function map () { const a = []; for (;;) a.push(new Uint8Array(1 << 20)) }'
    expect((await rejection(runJs(sandbox, buffers, { limits: { memoryMiB: 16, timeMs: 20_000 } }))).name).toBe('MemoryLimitError')
    expect(await runJs(sandbox, OK, { input: utf8('ab'), limits: { memoryMiB: 16, timeMs: 1000 } })).toBe(2)
  })

  it('an endless loop ends with TimeLimitError at the limit, without blocking the host; the next task runs', async () => {
    const started = performance.now()
    const run = runJs(sandbox, 'export function map () { for (;;) {} }', { limits: { memoryMiB: 16, timeMs: 300 } })
    expect(await ticksDuring(run)).toBeGreaterThan(10)
    const err = await rejection(run)
    expect(err.name).toBe('TimeLimitError')
    expect(err.message).toBe('time limit of 300 ms exceeded')
    expect(performance.now() - started).toBeLessThan(1500)
    expect(await runJs(sandbox, OK, { input: utf8('a') })).toBe(1)
  })

  it('the time limit also covers async code and promises that never settle', async () => {
    const limits = { memoryMiB: 16, timeMs: 200 }
    expect((await rejection(runJs(sandbox, 'export async function map () { await null; for (;;) {} }', { limits }))).name).toBe('TimeLimitError')
    expect((await rejection(runJs(sandbox, 'export function map () { return new Promise(() => {}) }', { limits }))).name).toBe('TimeLimitError')
    expect((await rejection(runJs(sandbox, 'for (;;) {}\nexport function map () {}', { limits }))).name).toBe('TimeLimitError')
  })

  it('an abort ends a running task with SandboxAbortedError; an aborted signal refuses at once', async () => {
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 100)
    const started = performance.now()
    const err = await rejection(runJs(sandbox, 'export function map () { for (;;) {} }', { signal: controller.signal, limits: { memoryMiB: 16, timeMs: 10_000 } }))
    expect(err.name).toBe('SandboxAbortedError')
    expect(performance.now() - started).toBeLessThan(1000)
    expect((await rejection(runJs(sandbox, OK, { signal: AbortSignal.abort() }))).name).toBe('SandboxAbortedError')
    expect(await runJs(sandbox, OK, { input: utf8('a') })).toBe(1)
  })
})

describe('js runtime: warm isolates and concurrency', () => {
  it('4 concurrent CPU-bound runs all give their own result, in parallel with the event loop', async () => {
    const source = 'export function map (s, ctx) { let x = 0; for (let i = 0; i < 2e7; i++) x = (x + i * ctx.seed) % 1000003; return [s, x] }'
    const expected = (s: string, seed: number): [string, number] => {
      let x = 0
      for (let i = 0; i < 2e7; i++) x = (x + i * seed) % 1000003
      return [s, x]
    }
    const runs = Promise.all([1, 2, 3, 4].map(async seed => await runJs(sandbox, source, { input: utf8(`t${seed}`), ctx: { task: seed, tasks: 4, seed, args: {} }, limits: { memoryMiB: 32, timeMs: 10_000 } })))
    expect(await ticksDuring(runs)).toBeGreaterThan(3)
    expect(await runs).toEqual([1, 2, 3, 4].map(seed => expected(`t${seed}`, seed)))
  })

  it('keeps at most warmIsolates idle isolates, reused by code id', async () => {
    const small = createSandbox({ warmIsolates: 2 }) as ReturnType<typeof createSandbox> & { warm: { isolates: number } }
    try {
      for (let i = 0; i < 3; i++) await runJs(small, OK)
      expect(small.warm.isolates).toBe(1)
      for (let i = 0; i < 4; i++) await runJs(small, `${OK}\n// ${i}`)
      expect(small.warm.isolates).toBe(2)
    } finally {
      await small.close()
    }
    expect((await rejection(runJs(small, OK))).name).toBe('SandboxClosedError')
  })

  it('evict disposes a code id\'s idle isolates at once and its busy ones when their run ends', async () => {
    const small = createSandbox({ warmIsolates: 4 }) as ReturnType<typeof createSandbox> & { warm: { isolates: number } }
    const SLOW = 'export function map (s) { let x = 0; for (let i = 0; i < 3e7; i++) x = (x + i) % 1000003; return x }'
    try {
      // not evicted: the isolate stays warm after its run
      await runJs(small, SLOW, { limits: { memoryMiB: 32, timeMs: 10_000 } })
      expect(small.warm.isolates).toBe(1)
      small.evict(codeIdOf(SLOW))
      expect(small.warm.isolates).toBe(0)
      // evicted while running (the job's stream closed meanwhile): gone once the run ends
      const other = `${SLOW}\n// other job`
      const run = runJs(small, other, { limits: { memoryMiB: 32, timeMs: 10_000 } })
      await new Promise(resolve => setImmediate(resolve))
      expect(small.warm.isolates).toBe(1)
      small.evict(codeIdOf(other))
      expect(await run).toBeTypeOf('number')
      expect(small.warm.isolates).toBe(0)
      // the same code run again afterwards is live again: kept warm
      await runJs(small, other, { limits: { memoryMiB: 32, timeMs: 10_000 } })
      expect(small.warm.isolates).toBe(1)
    } finally {
      await small.close()
    }
  })

  it('inspect keeps no isolate warm (runs go by other ids) and inspects a module text once; a failure is not remembered', async () => {
    const small = createSandbox({ warmIsolates: 4 }) as ReturnType<typeof createSandbox> & { warm: { isolates: number } }
    try {
      for (let i = 0; i < 3; i++) expect((await small.inspect('js', utf8(`${OK}\n// ${i}`), `job-${i}`)).exports).toEqual(['map'])
      expect(small.warm.isolates).toBe(0)
      // a module inspected before is known by its text: no isolate for it again
      const created = (await small.memory()).isolatesCreated
      expect((await small.inspect('js', utf8(`${OK}\n// 1`), 'again')).exports).toEqual(['map'])
      expect((await small.memory()).isolatesCreated).toBe(created)
      for (let i = 0; i < 2; i++) expect((await rejection(small.inspect('js', utf8('export const x = 1'), 'x'))).name).toBe('InvalidModuleError')
      expect((await small.memory()).isolatesCreated).toBe(created + 2)
      expect(small.warm.isolates).toBe(0)
    } finally {
      await small.close()
    }
  })

  it('limits are checked', async () => {
    expect((await rejection(runJs(sandbox, OK, { limits: { memoryMiB: 0, timeMs: 100 } }))).name).toBe('RangeError')
    expect(LIMITS.memoryMiB).toBeGreaterThan(0)
  })
})
