import { availableParallelism } from 'node:os'
import { describe, expect, it } from 'vitest'
import { CONFIG_VERSION, defaultConfig, defaultWorkerConfig, parseConfig } from '../../src/repo/index.ts'

const parse = (worker: unknown): ReturnType<typeof parseConfig> =>
  parseConfig(JSON.stringify({ version: CONFIG_VERSION, worker }), '/repo/config.json')

describe('worker config', () => {
  it('defaults to a slot per CPU, 256 MiB, 60 s, any submitter, both runtimes, a context per job', () => {
    expect(defaultWorkerConfig()).toEqual({ slots: availableParallelism(), memoryMiB: 256, timeMs: 60_000, accept: 'any', runtimes: ['js', 'wasm'], isolation: 'job' })
    expect(defaultConfig().worker).toEqual(defaultWorkerConfig())
  })

  it('hands out a fresh default each time (callers may change it)', () => {
    const a = defaultWorkerConfig()
    a.runtimes.push('js')
    expect(defaultWorkerConfig().runtimes).toEqual(['js', 'wasm'])
  })

  it('fills in the defaults when the section or some fields are missing', () => {
    expect(parseConfig(JSON.stringify({ version: CONFIG_VERSION }), 'c.json').worker).toEqual(defaultWorkerConfig())
    expect(parse({ slots: 2 })).toMatchObject({ worker: { ...defaultWorkerConfig(), slots: 2 } })
  })

  it('accepts every valid value', () => {
    const worker = { slots: 0, memoryMiB: 8, timeMs: 1, accept: ['12D3KooWabc', '12D3KooWdef'], runtimes: ['wasm'], isolation: 'task' }
    expect(parse(worker).worker).toEqual(worker)
    expect(parse({ slots: 1024, accept: 'any', runtimes: [] }).worker.slots).toBe(1024)
  })

  const bad: Array<[string, Record<string, unknown>]> = [
    ['worker.slots', { slots: -1 }],
    ['worker.slots', { slots: 1025 }],
    ['worker.slots', { slots: 1.5 }],
    ['worker.slots', { slots: '4' }],
    ['worker.slots', { slots: null }],
    ['worker.memoryMiB', { memoryMiB: 7 }],
    ['worker.memoryMiB', { memoryMiB: 0 }],
    ['worker.memoryMiB', { memoryMiB: 256.5 }],
    ['worker.memoryMiB', { memoryMiB: '256' }],
    ['worker.timeMs', { timeMs: 0 }],
    ['worker.timeMs', { timeMs: -5 }],
    ['worker.timeMs', { timeMs: 1.5 }],
    ['worker.timeMs', { timeMs: '60s' }],
    ['worker.accept', { accept: 'all' }],
    ['worker.accept', { accept: [1, 2] }],
    ['worker.accept', { accept: null }],
    ['worker.runtimes', { runtimes: ['python'] }],
    ['worker.runtimes', { runtimes: 'js' }],
    ['worker.runtimes', { runtimes: ['js', 'JS'] }],
    ['worker.isolation', { isolation: 'process' }],
    ['worker.isolation', { isolation: null }]
  ]
  for (const [field, worker] of bad) {
    it(`rejects ${JSON.stringify(worker)}, naming ${field}`, () => {
      expect(() => parse(worker)).toThrow(expect.objectContaining({ name: 'ConfigError', message: expect.stringContaining(`"${field}"`) }))
      expect(() => parse(worker)).toThrow('/repo/config.json')
    })
  }

  // Bug (src/repo/config.ts, parseConfig: `{ ...defaults.worker, ...(obj.worker as object ?? {}) }`):
  // a worker section that is not an object is spread instead of checked, so
  // `"worker": 4` (or "lots", or [8]) passes silently and the daemon runs with the
  // defaults. Expected: ConfigError naming "worker". (connections has the same flaw.)
  it('rejects a worker section that is not an object', () => {
    expect(() => parse(4)).toThrow(/"worker"/)
  })
})
