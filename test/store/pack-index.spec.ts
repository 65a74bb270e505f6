import { describe, expect, it } from 'vitest'
import { mulberry32 } from '../../src/random.ts'
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

describe('PackIndex against a Map', () => {
  it('agrees with a Map over 200,000 random sets and deletes of CID-like, short and long keys', () => {
    const random = mulberry32(7)
    // a CIDv1 (raw, sha2-256) as latin1, a few shorter and longer keys; 3000 keys so sets hit existing ones
    const keys = Array.from({ length: 3000 }, (_, i) => {
      const len = i % 50 === 0 ? 45 + (i % 7) : i % 31 === 0 ? 1 + (i % 9) : 36
      return String.fromCharCode(...Array.from({ length: len }, (_, j) => j < 4 && len === 36 ? [1, 0x55, 0x12, 0x20][j] as number : Math.floor(random() * 256)))
    })
    const index = new PackIndex()
    const model = new Map<string, { pack: number, offset: number, length: number, codec: number }>()
    for (let op = 0; op < 200_000; op++) {
      const key = keys[Math.floor(random() * keys.length)] as string
      // phases: mostly inserts, then mostly deletes, so the table grows, empties and refills
      const deleting = random() < ((op >> 14) % 2 === 0 ? 0.3 : 0.7)
      if (deleting) {
        expect(index.delete(key)).toBe(model.delete(key))
      } else {
        const entry = { pack: op % 1000, offset: op * 3, length: op % 777, codec: op % 2 === 0 ? 0x55 : 0x70 }
        index.set(key, entry)
        model.set(key, entry)
      }
      if (op % 5000 === 0) {
        expect(index.size).toBe(model.size)
        for (const k of keys) expect(index.get(k)).toEqual(model.get(k))
      }
    }
    expect(index.size).toBe(model.size)
    const seen = new Map([...index])
    expect(seen).toEqual(model)
    expect(new Set(index.keys())).toEqual(new Set(model.keys()))
  })

  it('refuses a key that is not a latin1 string of bytes', () => {
    expect(() => new PackIndex().set('\u0100abc', { pack: 1, offset: 0, length: 1, codec: 0x55 })).toThrow(TypeError)
  })
})
