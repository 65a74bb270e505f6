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
