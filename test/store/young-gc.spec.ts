import { describe, expect, it } from 'vitest'
import { YoungGc } from '../../src/store/young-gc.ts'

describe('young-generation GC while blocks move', () => {
  it('collects once per `everyBytes` moved, not per block', () => {
    let collections = 0
    const young = new YoungGc({ everyBytes: 1024 * 1024, collect: () => { collections++ } })
    for (let i = 0; i < 3; i++) young.moved(256 * 1024)
    expect(collections).toBe(0)
    young.moved(256 * 1024) // 1 MiB in all
    expect(collections).toBe(1)
    for (let i = 0; i < 40; i++) young.moved(256 * 1024) // 10 MiB more
    expect(collections).toBe(11)
  })

  it('runs V8\'s own young collection without giving any context a gc global', async () => {
    const { runInNewContext } = await import('node:vm')
    const { PerformanceObserver, constants } = await import('node:perf_hooks')
    let minor = 0
    const observer = new PerformanceObserver(list => {
      for (const entry of list.getEntries()) if ((entry as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++
    })
    observer.observe({ entryTypes: ['gc'] })
    const young = new YoungGc({ everyBytes: 1 })
    for (let i = 0; i < 3; i++) young.moved(1)
    await new Promise(resolve => setTimeout(resolve, 100))
    observer.disconnect()
    expect(minor).toBeGreaterThanOrEqual(3)
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined()
    expect(runInNewContext('typeof gc')).toBe('undefined')
  })
})
