import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { lineageKey, rawCid, taskContext } from '../../src/jobs/lineage.ts'
import { mulberry32 } from '../../src/random.ts'

const CODE = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const INPUT = 'bafkreidgvpkjawlxz6sffxzwgooowe5yt7i6wsyg236mfoks77nywkptdq'

describe('lineageKey', () => {
  it('is stable: the same task gives the same key', () => {
    const ctx = taskContext(3, 10, 7, { k: 'v' })
    expect(lineageKey(CODE, INPUT, ctx)).toBe(lineageKey(CODE, INPUT, taskContext(3, 10, 7, { k: 'v' })))
    const key = lineageKey(CODE, INPUT, ctx)
    // the raw digest: 32 characters, each a byte
    expect(key).toHaveLength(32)
    expect([...key].every(c => c.charCodeAt(0) <= 0xff)).toBe(true)
  })

  it('changes when the code, the input or the context changes', () => {
    const ctx = taskContext(0, 4, 1, {})
    const base = lineageKey(CODE, INPUT, ctx)
    expect(lineageKey(INPUT, INPUT, ctx)).not.toBe(base)
    expect(lineageKey(CODE, CODE, ctx)).not.toBe(base)
    expect(lineageKey(CODE, null, ctx)).not.toBe(base)
    expect(lineageKey(CODE, INPUT, taskContext(1, 4, 1, {}))).not.toBe(base)
    expect(lineageKey(CODE, INPUT, taskContext(0, 5, 1, {}))).not.toBe(base)
    expect(lineageKey(CODE, INPUT, taskContext(0, 4, 2, {}))).not.toBe(base)
    expect(lineageKey(CODE, INPUT, taskContext(0, 4, 1, { k: 'v' }))).not.toBe(base)
  })

  it('does not confuse fields whose concatenation is the same', () => {
    expect(lineageKey('ab', 'c', 'd')).not.toBe(lineageKey('a', 'bc', 'd'))
    expect(lineageKey('a', 'b', 'cd')).not.toBe(lineageKey('a', 'bc', 'd'))
    expect(lineageKey('a', null, 'x')).not.toBe(lineageKey('a', 'null', 'x'))
    expect(lineageKey('a', '', 'x')).not.toBe(lineageKey('a', null, 'x'))
    expect(lineageKey('a","b', 'c', 'd')).not.toBe(lineageKey('a', 'b","c', 'd'))
  })
})

describe('rawCid', () => {
  it('equals the CIDv1 (raw, sha2-256) multiformats computes', async () => {
    const rand = mulberry32(11)
    const samples = [
      new Uint8Array(0),
      new TextEncoder().encode('hello world\n'),
      Uint8Array.from({ length: 5000 }, () => Math.floor(rand() * 256))
    ]
    for (const bytes of samples) {
      const expected = CID.create(1, raw.code, await sha256.digest(bytes))
      const got = rawCid(bytes)
      expect(got.equals(expected)).toBe(true)
      expect(got.toString()).toBe(expected.toString())
      expect(got.toString().startsWith('bafkrei')).toBe(true)
    }
  })

  it('hashes only the bytes of a view, not the whole buffer under it', async () => {
    const whole = new TextEncoder().encode('prefix|payload|suffix')
    const view = whole.subarray(7, 14)
    const expected = CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode('payload')))
    expect(rawCid(view).toString()).toBe(expected.toString())
  })
})

describe('taskContext', () => {
  it('is the JSON of task, task count, seed and arguments', () => {
    const ctx = JSON.parse(taskContext(2, 5, 100, { n: '3' })) as { seed: number }
    expect(ctx).toEqual({ task: 2, tasks: 5, seed: ctx.seed, args: { n: '3' } })
    expect(taskContext(2, 5, 100, { n: '3' })).toBe(JSON.stringify(ctx))
  })

  it('gives every task of a job its own seed, a 32-bit unsigned integer', () => {
    for (const seed of [0, 1, 12345, 0xffffffff - 5, 0xffffffff]) {
      const seeds = Array.from({ length: 1000 }, (_, i) => (JSON.parse(taskContext(i, 1000, seed, {})) as { seed: number }).seed)
      expect(new Set(seeds).size).toBe(1000)
      expect(seeds.filter(s => !Number.isInteger(s) || s < 0 || s > 0xffffffff)).toEqual([])
    }
  })

  it('differs from the job seed itself, so task 0 does not replay a run seeded by the job seed', () => {
    expect((JSON.parse(taskContext(0, 1, 42, {})) as { seed: number }).seed).not.toBe(42)
  })
})

describe('task seeds across jobs', () => {
  it('jobs with nearby seeds do not share task sequences shifted by one', () => {
    const seeds = (jobSeed: number): number[] => Array.from({ length: 100 }, (_, i) => (JSON.parse(taskContext(i, 100, jobSeed, {})) as { seed: number }).seed)
    const a = new Set(seeds(7))
    const overlap = seeds(8).filter(s => a.has(s))
    expect(overlap).toEqual([])
  })
})
