/**
 * The daemon's memory upkeep collects V8's garbage on a timer with a `gc`
 * taken from a throwaway context: it must really collect, and leave `gc`
 * visible nowhere else (not in this process's globals, not in a task).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { loadFullGc } from '../../src/full-gc.ts'
import { createSandbox } from '../../src/sandbox/index.ts'
import { runJs } from '../sandbox/helpers.ts'

describe('full collection for the memory upkeep', () => {
  const sandbox = createSandbox()
  afterAll(async () => { await sandbox.close() })

  it('frees dead objects at once, and exposes gc to no context', async () => {
    const hadGc = typeof (globalThis as { gc?: unknown }).gc
    const gc = loadFullGc()
    expect(gc).toBeTypeOf('function')
    // ~40 MiB of objects, alive until the line before the measurement
    let junk: Array<{ i: number, s: string }> | null = Array.from({ length: 400_000 }, (_, i) => ({ i, s: `item ${i}` }))
    const live = process.memoryUsage().heapUsed
    expect(junk.length).toBe(400_000)
    junk = null
    gc?.()
    const after = process.memoryUsage().heapUsed
    expect(live - after).toBeGreaterThan(20 * 1024 * 1024)
    // nothing else got a gc: this process's globals as before, a vm context or a task made after it neither
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe(hadGc)
    const { runInNewContext } = await import('node:vm')
    expect(runInNewContext('typeof gc')).toBe('undefined')
    expect(await runJs(sandbox, 'export function map () { return typeof gc }')).toBe('undefined')
  })
})
