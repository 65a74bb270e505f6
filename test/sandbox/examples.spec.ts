import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createSandbox } from '../../src/sandbox/index.ts'
import { mulberry32 } from '../../src/random.ts'
import { rejection } from '../helpers/errors.ts'
import { utf8 } from './helpers.ts'
import type { RunRequest, TaskContext } from '../../src/sandbox/index.ts'

const sandbox = createSandbox()
afterAll(async () => { await sandbox.close() })

const example = async (name: string): Promise<Uint8Array> => await readFile(join(import.meta.dirname, '../../examples', name))
const LIMITS = { memoryMiB: 64, timeMs: 10_000 }
const ctx = (args: Record<string, string> = {}, seed = 1, task = 0): TaskContext => ({ task, tasks: 4, seed, args })

async function run (code: Uint8Array, name: string, req: Partial<RunRequest>): Promise<unknown> {
  return await sandbox.run({ runtime: 'js', code, codeId: name, fn: 'map', input: new Uint8Array(0), limits: LIMITS, ...req })
}

/** A seeded text with mixed case, punctuation, accents and tricky words. */
function corpus (words: number, seed: number): string {
  const vocabulary = ['Mesh', 'peer', 'BLOCK', 'lepton', "route's", 'the', 'of', 'Ünïcode', 'naïve', 'constructor', '__proto__', 'toString', 'Καλημέρα', 'x2y']
  const rand = mulberry32(seed)
  const out: string[] = []
  for (let i = 0; i < words; i++) out.push((vocabulary[Math.floor(rand() * vocabulary.length)] ?? '') + (rand() < 0.1 ? '.\n' : rand() < 0.2 ? ', ' : ' '))
  return out.join('')
}

function plainWordCount (text: string): Record<string, number> {
  const counts = new Map<string, number>()
  for (const word of text.toLowerCase().split(/[^\p{L}\p{M}]+/u)) if (word !== '') counts.set(word, (counts.get(word) ?? 0) + 1)
  return Object.fromEntries([...counts].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
}

describe('examples', () => {
  it('wordcount: map per partition, combine, reduce equal a plain single-process count', async () => {
    const code = await example('wordcount.js')
    const partitions = [corpus(20_000, 1), corpus(15_000, 2), corpus(1, 3), '']
    const mapped = await Promise.all(partitions.map(async (text, task) => await run(code, 'wordcount', { input: utf8(text), ctx: ctx({}, 0, task) })))
    const combined = await run(code, 'wordcount', { fn: 'combine', input: mapped.slice(0, 2) })
    const total = await run(code, 'wordcount', { fn: 'reduce', input: [combined, ...mapped.slice(2)] })
    const expected = plainWordCount(partitions.join(''))
    expect(total).toEqual(expected)
    expect(JSON.stringify(total)).toBe(JSON.stringify(expected)) // same key order: same output bytes
    expect((total as Record<string, number>).constructor).toBeGreaterThan(0)
  })

  it('pi: seeded tasks are reproducible and the estimate is close', async () => {
    const code = await example('pi.js')
    const args = { samples: '200000' }
    const maps = await Promise.all([1, 2, 3, 4].map(async seed => await run(code, 'pi', { ctx: ctx(args, seed, seed) })))
    expect(await run(code, 'pi', { ctx: ctx(args, 1, 1) })).toEqual(maps[0])
    expect(maps[0]).not.toEqual(maps[1])
    const result = await run(code, 'pi', { fn: 'reduce', input: maps }) as { pi: number, inside: number, total: number }
    expect(result.total).toBe(800_000)
    expect(Math.abs(result.pi - Math.PI)).toBeLessThan(0.02)
    expect((await rejection(run(code, 'pi', { ctx: ctx({ samples: '-3' }) }))).message).toContain('samples must be a positive integer')
  })

  it('grep: matching lines in order, across partitions', async () => {
    const code = await example('grep.js')
    const parts = ['ok 1\nERROR disk\nok 2\n', 'warn\r\nerror net\n', 'fine']
    const args = { pattern: '^error', flags: 'gi' }
    const mapped = await Promise.all(parts.map(async text => await run(code, 'grep', { input: utf8(text), ctx: ctx(args) })))
    expect(await run(code, 'grep', { fn: 'reduce', input: mapped })).toEqual(['ERROR disk', 'error net'])
    expect((await rejection(run(code, 'grep', { input: utf8('x'), ctx: ctx() }))).message).toContain('--arg pattern=')
  })

  it('every example passes inspect', async () => {
    for (const name of ['wordcount.js', 'pi.js', 'grep.js']) {
      expect((await sandbox.inspect('js', await example(name), name)).exports).toEqual(['map', 'combine', 'reduce'])
    }
    expect(await sandbox.inspect('wasm', await example('linecount.wasm'), 'linecount')).toEqual({ runtime: 'wasm', exports: ['map'] })
  })
})
