import { describe, expect, it } from 'vitest'
import { PackIndex } from '../../src/store/pack-index.ts'

describe('PackIndex', () => {
  it('keeps each location exactly, past its first growth, and reuses freed slots', () => {
    const index = new PackIndex()
    const entry = (i: number): { pack: number, offset: number, length: number, codec: number } => ({ pack: i % 977, offset: i * 262_147 + 2 ** 33, length: 262_144 + (i % 5), codec: i % 2 })
    for (let i = 0; i < 5000; i++) index.set(`k${i}`, entry(i))
    expect(index.size).toBe(5000)
    for (const i of [0, 1023, 1024, 4999]) expect(index.get(`k${i}`)).toEqual(entry(i))
    // overwrite in place, delete, and insert again into the freed slots
    index.set('k7', entry(70))
    expect(index.get('k7')).toEqual(entry(70))
    for (let i = 0; i < 2000; i++) expect(index.delete(`k${i * 2 + 1}`)).toBe(true)
    expect(index.delete('k1')).toBe(false)
    expect(index.has('k1')).toBe(false)
    for (let i = 0; i < 2000; i++) index.set(`n${i}`, entry(i + 10_000))
    expect(index.size).toBe(5000)
    for (const i of [0, 2, 4000]) expect(index.get(`k${i}`)).toEqual(entry(i))
    for (const i of [0, 1999]) expect(index.get(`n${i}`)).toEqual(entry(i + 10_000))
    // iteration sees every entry once, with its location, and tolerates deletes as it goes
    let seen = 0
    for (const [key, value] of index) {
      expect(value).toEqual(index.get(key))
      if (key.startsWith('n')) index.delete(key)
      seen++
    }
    expect(seen).toBe(5000)
    expect(index.size).toBe(3000)
    index.clear()
    expect(index.size).toBe(0)
    expect(index.get('k0')).toBeUndefined()
  })
})
