import { describe, expect, it } from 'vitest'
import { LineageCache } from '../../src/jobs/lineage-cache.ts'

const entry = (bytes: number): { outputCid: string, output?: Uint8Array } => ({ outputCid: `cid${bytes}`, output: bytes > 0 ? new Uint8Array(bytes) : undefined })

describe('lineage cache', () => {
  it('keeps at most maxEntries, dropping the least recently used', () => {
    const cache = new LineageCache(3, 1 << 20)
    for (const k of ['a', 'b', 'c']) cache.set(k, entry(1))
    expect(cache.get('a')?.outputCid).toBe('cid1') // a is now the most recent
    cache.set('d', entry(1))
    expect([...cache.keys()]).toEqual(['c', 'a', 'd'])
    expect(cache.has('b')).toBe(false)
  })

  it('peek reads an entry without making it the most recent', () => {
    const cache = new LineageCache(2, 1 << 20)
    cache.set('a', entry(1))
    cache.set('b', entry(1))
    expect(cache.peek('a')?.outputCid).toBe('cid1')
    expect(cache.peek('x')).toBeUndefined()
    cache.set('c', entry(1))
    expect([...cache.keys()]).toEqual(['b', 'c'])
  })

  it('keeps at most maxBytes of inline outputs; outputs kept in the store cost nothing', () => {
    const cache = new LineageCache(100, 1000)
    cache.set('a', entry(400))
    cache.set('b', entry(400))
    cache.set('c', entry(0))
    expect(cache.outputBytes).toBe(800)
    cache.set('d', entry(400))
    expect(cache.has('a')).toBe(false)
    expect(cache.outputBytes).toBe(800)
    cache.set('b', entry(100)) // replacing an entry counts its new size only
    expect(cache.outputBytes).toBe(500)
    cache.delete('d')
    expect(cache.outputBytes).toBe(100)
    expect([...cache.keys()]).toEqual(['c', 'b'])
  })

  it('keeps a copy of an output that is a view into a larger buffer, not the buffer', () => {
    const cache = new LineageCache(10, 1000)
    const chunk = new Uint8Array(65536)
    cache.set('a', { outputCid: 'x', output: chunk.subarray(10, 20) })
    expect(cache.get('a')?.output?.buffer.byteLength).toBe(10)
  })
})

describe('lineage cache entries without an inline output', () => {
  it('read back the same output CID and stored flag, v1 and v0, and cost no output bytes', async () => {
    const { rawCid } = await import('../../src/jobs/lineage.ts')
    const { CID } = await import('multiformats/cid')
    const cache = new LineageCache(10, 0)
    const v1 = rawCid(new TextEncoder().encode('output')).toString()
    const v0 = CID.createV0(CID.parse(v1).multihash as Parameters<typeof CID.createV0>[0]).toString()
    cache.set('a', { outputCid: v1, stored: true })
    cache.set('b', { outputCid: v1, stored: false })
    cache.set('c', { outputCid: v0 })
    // text that would not read back the same (base36) is kept as it came
    const base36 = CID.parse(v1).toString((await import('multiformats/bases/base36')).base36)
    cache.set('d', { outputCid: base36, stored: true })
    expect(cache.get('a')).toEqual({ outputCid: v1, stored: true })
    expect(cache.get('b')).toEqual({ outputCid: v1, stored: false })
    expect(cache.get('c')).toEqual({ outputCid: v0, stored: false })
    expect(cache.get('d')).toEqual({ outputCid: base36, stored: true })
    expect(cache.outputBytes).toBe(0)
    expect(cache.size).toBe(4)
  })
})
