import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadMallocInfo, loadMallocTrim } from '../../src/malloc-trim.ts'

const glibc = process.platform === 'linux' && (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime != null

/**
 * A child process frees three quarters of 96 MiB of 32 KiB buffers (below
 * glibc's mmap threshold: they come from the malloc heap) while every fourth
 * stays live, so no freed run reaches the top of the heap and nothing goes
 * back by itself; then it calls the helper. Prints RssAnon (KiB) before and
 * after, and what the helper returned.
 */
const CHILD = `
const { readFileSync } = require('node:fs')
const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1])
const { mallocTrim } = require(${JSON.stringify(resolve(import.meta.dirname, '../../native/malloc-trim/build/Release/malloc_trim.node'))})
let bufs = Array.from({ length: 3072 }, () => Buffer.allocUnsafeSlow(32 * 1024).fill(1))
bufs = bufs.filter((_, i) => i % 4 === 0)
globalThis.gc(); globalThis.gc()
const before = anon()
const released = mallocTrim()
console.log(JSON.stringify({ before, after: anon(), released, kept: bufs.length }))
`

/**
 * A child process takes 16 MiB of 32 KiB buffers (from the malloc heap), then
 * frees every other one; prints the helper's accounting at each step.
 */
const INFO_CHILD = `
const { mallocInfo } = require(${JSON.stringify(resolve(import.meta.dirname, '../../native/malloc-trim/build/Release/malloc_trim.node'))})
const at = mallocInfo()
let bufs = Array.from({ length: 512 }, () => Buffer.allocUnsafeSlow(32 * 1024).fill(1))
globalThis.gc(); globalThis.gc()
const live = mallocInfo()
bufs = bufs.filter((_, i) => i % 2 === 0)
globalThis.gc(); globalThis.gc()
const half = mallocInfo()
console.log(JSON.stringify({ at, live, half, kept: bufs.length }))
`

async function runChild (script: string): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', '-e', script], { env: { ...process.env, MALLOC_ARENA_MAX: '2' } }, (err, stdout) => { if (err != null) reject(err); else resolve(stdout) })
  })
}

describe('malloc_trim helper (native/malloc-trim, built by npm ci)', () => {
  it.runIf(glibc)('is built and loads on Linux with glibc', () => {
    expect(loadMallocTrim()).toBeTypeOf('function')
  })

  it.runIf(glibc)('gives the free pages between live allocations back to the system', async () => {
    const out = await runChild(CHILD)
    const { before, after, released } = JSON.parse(out) as { before: number, after: number, released: boolean }
    expect(released).toBe(true)
    // ~72 MiB were freed in 96 KiB runs between live buffers; most of it comes back
    expect(before - after).toBeGreaterThan(40 * 1024)
  })

  it.runIf(glibc)('reports malloc\'s accounting: live bytes as in use, freed ones as free', async () => {
    expect(loadMallocInfo()).toBeTypeOf('function')
    const out = await runChild(INFO_CHILD)
    const { at, live, half } = JSON.parse(out) as Record<'at' | 'live' | 'half', { heap: number, inUse: number, free: number }>
    const MiB = 1024 * 1024
    expect(live.inUse - at.inUse).toBeGreaterThan(12 * MiB)
    expect(live.heap).toBeGreaterThanOrEqual(live.inUse)
    expect(live.inUse - half.inUse).toBeGreaterThan(6 * MiB)
    expect(half.free - live.free).toBeGreaterThan(6 * MiB)
  })
})

describe('trim after a full collection', () => {
  it('trims once, the delay after a full collection, however many came within it, and not after stop', async () => {
    const { trimAfterMajorGc } = await import('../../src/malloc-trim.ts')
    let fire: () => void = () => {}
    let observing = false
    const onMajorGc = (callback: () => void): () => void => {
      fire = callback
      observing = true
      return () => { observing = false }
    }
    let trims = 0
    const stop = trimAfterMajorGc(() => { trims++ }, 30, onMajorGc)
    fire(); fire(); fire()
    await new Promise(resolve => setTimeout(resolve, 80))
    expect(trims).toBe(1)
    fire()
    await new Promise(resolve => setTimeout(resolve, 80))
    expect(trims).toBe(2)
    fire()
    stop()
    await new Promise(resolve => setTimeout(resolve, 80))
    expect(trims).toBe(2)
    expect(observing).toBe(false)
  })

  it('sees a real full collection and no young one (a child process with --expose-gc)', async () => {
    // the loop is kept turning (a 10 ms interval), as a busy daemon's is: Node hands gc entries over on its next turn
    const script = `
      import { trimAfterMajorGc } from ${JSON.stringify(resolve(import.meta.dirname, '../../src/malloc-trim.ts'))}
      const busy = setInterval(() => {}, 10)
      const wait = ms => new Promise(r => setTimeout(r, ms))
      let trims = 0
      const stop = trimAfterMajorGc(() => { trims++ }, 20)
      await wait(100)
      const atStart = trims
      globalThis.gc({ type: 'minor' })
      await wait(300)
      const afterMinor = trims
      globalThis.gc()
      await wait(300)
      stop()
      clearInterval(busy)
      console.log(JSON.stringify({ atStart, afterMinor, afterMajor: trims }))
    `
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { timeout: 30_000 }, (err, stdout) => { if (err != null) reject(err); else resolve(stdout) })
    })
    expect(JSON.parse(out)).toEqual({ atStart: 0, afterMinor: 0, afterMajor: 1 })
  })
})
