import { describe, expect, it } from 'vitest'
import { MAX_PARTITIONS, TARGET_PARTITION_BYTES, defaultPartitions, splitRecords } from '../../src/jobs/partition.ts'
import { mulberry32 } from '../../src/random.ts'

const NL = 0x0a
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** Records of `bytes`: each ends just after a separator, the last one may not. */
function records (bytes: Uint8Array, separator = NL): number {
  let n = 0
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] === separator && i < bytes.byteLength - 1) n++
  return bytes.byteLength === 0 ? 0 : n + 1
}

/** The invariants every split must keep; returns the parts for further checks. */
function checkSplit (bytes: Uint8Array, count: number, separator = NL): Uint8Array[] {
  const parts = splitRecords(bytes, count, separator)
  expect(parts.length).toBeGreaterThanOrEqual(1)
  expect(parts.length).toBeLessThanOrEqual(count)
  // byte-exact: nothing lost, duplicated or reordered
  expect(Buffer.from(concat(parts)).equals(Buffer.from(bytes))).toBe(true)
  if (bytes.byteLength > 0) {
    // no empty parts, and never more parts than records
    expect(parts.filter(p => p.byteLength === 0)).toEqual([])
    expect(parts.length).toBeLessThanOrEqual(records(bytes, separator))
  }
  // every part but the last ends with the separator: no record is cut in two
  expect(parts.slice(0, -1).map(p => p[p.byteLength - 1]).filter(b => b !== separator)).toEqual([])
  return parts
}

describe('defaultPartitions', () => {
  it('aims at ~1 MiB a partition, at least 1, at most MAX_PARTITIONS', () => {
    expect(defaultPartitions(0)).toBe(1)
    expect(defaultPartitions(1)).toBe(1)
    expect(defaultPartitions(TARGET_PARTITION_BYTES)).toBe(1)
    expect(defaultPartitions(TARGET_PARTITION_BYTES + 1)).toBe(2)
    expect(defaultPartitions(10 * TARGET_PARTITION_BYTES)).toBe(10)
    expect(defaultPartitions(1e15)).toBe(MAX_PARTITIONS)
  })
})

describe('splitRecords', () => {
  it('splits equal records into equal parts', () => {
    const bytes = utf8('aa\nbb\ncc\ndd\n')
    const parts = checkSplit(bytes, 2)
    expect(parts.map(p => Buffer.from(p).toString())).toEqual(['aa\nbb\n', 'cc\ndd\n'])
  })

  it('keeps multi-byte UTF-8 and a missing trailing newline byte-exact', () => {
    const text = 'héllo wörld\n日本語のテキスト\n🙂🙃 emoji\nΩmega\nlast line without newline'
    const bytes = utf8(text)
    for (let count = 1; count <= 8; count++) {
      const parts = checkSplit(bytes, count)
      // each part decodes on its own: no code point cut in two
      expect(parts.map(p => new TextDecoder('utf-8', { fatal: true }).decode(p)).join('')).toBe(text)
      expect(Buffer.from(parts.at(-1) as Uint8Array).toString().endsWith('without newline')).toBe(true)
    }
  })

  it('gives fewer parts when there are fewer records than parts', () => {
    const parts = checkSplit(utf8('one\ntwo\nthree\n'), 10)
    expect(parts.map(p => Buffer.from(p).toString())).toEqual(['one\n', 'two\n', 'three\n'])
    expect(checkSplit(utf8('a single record with no separator'), 5)).toHaveLength(1)
  })

  it('gives one empty part for empty input', () => {
    const parts = splitRecords(new Uint8Array(0), 4)
    expect(parts).toHaveLength(1)
    expect(parts[0]?.byteLength).toBe(0)
  })

  it('gives the whole input as one part for count 1', () => {
    const bytes = utf8('a\nb\nc\n')
    const parts = checkSplit(bytes, 1)
    expect(parts).toHaveLength(1)
    expect(parts[0]?.byteLength).toBe(bytes.byteLength)
  })

  it('returns views of the input, not copies', () => {
    const bytes = utf8('a\nb\nc\nd\n')
    for (const p of splitRecords(bytes, 3)) expect(p.buffer).toBe(bytes.buffer)
  })

  it('splits on another separator when given one', () => {
    const bytes = utf8('a,b,c,d,e,f')
    const parts = checkSplit(bytes, 3, 0x2c)
    expect(parts.map(p => Buffer.from(p).toString())).toEqual(['a,b,', 'c,d,', 'e,f'])
  })

  it('does not cut a record longer than a whole partition', () => {
    const bytes = utf8('x'.repeat(100) + '\nb\nc\nd\n')
    const parts = checkSplit(bytes, 4)
    expect(Buffer.from(parts[0] as Uint8Array).toString()).toBe('x'.repeat(100) + '\n')
  })

  it('throws RangeError on a count that is not a positive integer', () => {
    const bytes = utf8('a\nb\n')
    for (const count of [0, -1, 1.5, Number.NaN, Infinity]) expect(() => splitRecords(bytes, count)).toThrow(RangeError)
    // checked even for empty input
    expect(() => splitRecords(new Uint8Array(0), 0)).toThrow(RangeError)
  })

  it('keeps its invariants over 200 seeded random inputs and counts', () => {
    const rand = mulberry32(0xC0FFEE)
    const int = (n: number): number => Math.floor(rand() * n)
    const alphabet = ['a', 'b', 'é', '日', '🙂', ' ', '\n']
    for (let round = 0; round < 200; round++) {
      const kind = int(3)
      let bytes: Uint8Array
      if (kind === 0) {
        // random text, separators anywhere (runs of empty records, none at all, ...)
        bytes = utf8(Array.from({ length: int(400) }, () => alphabet[int(alphabet.length)]).join(''))
      } else if (kind === 1) {
        // random bytes, the separator about one byte in 20
        bytes = Uint8Array.from({ length: int(2000) }, () => rand() < 0.05 ? NL : int(256))
      } else {
        // equal records: all parts asked for come back (up to the record count)
        const n = 1 + int(60)
        const size = 1 + int(20)
        bytes = utf8(('r'.repeat(size - 1) + '\n').repeat(n))
        const count = 1 + int(80)
        expect(checkSplit(bytes, count)).toHaveLength(Math.min(count, n))
        continue
      }
      const count = 1 + int(rand() < 0.2 ? 500 : 30)
      const parts = checkSplit(bytes, count)
      if (bytes.byteLength === 0) continue
      // about equal: a part never exceeds its share by more than the longest record
      let longest = 0
      let at = 0
      for (let i = 0; i < bytes.byteLength; i++) {
        if (bytes[i] === NL) {
          longest = Math.max(longest, i + 1 - at)
          at = i + 1
        }
      }
      longest = Math.max(longest, bytes.byteLength - at)
      const share = Math.ceil(bytes.byteLength / count) + longest + 1
      expect(parts.filter(p => p.byteLength > share)).toEqual([])
    }
  })
})
