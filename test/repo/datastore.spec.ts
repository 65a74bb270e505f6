import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BaseDatastore } from 'datastore-core/base'
import { Key } from 'interface-datastore'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CachedDatastore, initRepo, openRepo } from '../../src/repo/index.ts'
import type { Pair } from 'interface-datastore'

/** An in-memory backing store that counts what reaches it and can be made to fail. */
class CountingStore extends BaseDatastore {
  readonly data = new Map<string, Uint8Array>()
  puts = 0
  reads = 0
  failPuts = 0

  override put (key: Key, val: Uint8Array): Key {
    if (this.failPuts > 0) {
      this.failPuts--
      throw new Error('disk full')
    }
    this.puts++
    this.data.set(key.toString(), val)
    return key
  }

  override delete (key: Key): void {
    this.data.delete(key.toString())
  }

  override get (key: Key): Uint8Array {
    this.reads++
    const value = this.data.get(key.toString())
    if (value == null) throw new Error(`${key.toString()} not found`)
    return value
  }

  override has (key: Key): boolean {
    this.reads++
    return this.data.has(key.toString())
  }

  override * _all (): Generator<Pair> {
    for (const [key, value] of this.data) yield { key: new Key(key), value }
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

describe('CachedDatastore', () => {
  it('reads from memory and writes through to the backing store', async () => {
    const backing = new CountingStore()
    const ds = new CachedDatastore(backing)
    await ds.open()
    const key = new Key('/peers/a')
    for (let i = 0; i < 100; i++) {
      await ds.put(key, bytes(`v${i}`))
      expect(text(await ds.get(key))).toBe(`v${i}`)
      expect(await ds.has(key)).toBe(true)
    }
    expect(backing.puts).toBe(100)
    expect(backing.reads).toBe(0)
    expect(text(backing.get(key))).toBe('v99')
    await ds.delete(key)
    expect(await ds.has(key)).toBe(false)
    expect(backing.data.has('/peers/a')).toBe(false)
    await expect(ds.get(key)).rejects.toMatchObject({ name: 'NotFoundError' })
    await ds.close()
  })

  it('keeps a copy of each value, not the buffer it is a view of', async () => {
    const ds = new CachedDatastore(new CountingStore())
    await ds.open()
    // a record decoded from a received chunk is a small view of a large buffer
    const chunk = new Uint8Array(65_536).fill(7)
    await ds.put(new Key('/dht/provider/x'), chunk.subarray(100, 140))
    chunk.fill(0)
    const stored = await ds.get(new Key('/dht/provider/x'))
    expect(stored.buffer.byteLength).toBe(40)
    expect(stored.every(b => b === 7)).toBe(true)
    await ds.close()
  })

  it('a write that fails on disk changes nothing in memory', async () => {
    const backing = new CountingStore()
    const ds = new CachedDatastore(backing)
    await ds.open()
    backing.failPuts = 1
    await expect(ds.put(new Key('/peers/c'), bytes('y'))).rejects.toThrow('disk full')
    expect(await ds.has(new Key('/peers/c'))).toBe(false)
    await ds.close()
  })

  it('answers prefix queries from its sorted keys, including those loaded at open', async () => {
    const backing = new CountingStore()
    backing.put(new Key('/peers/b'), bytes('old'))
    const ds = new CachedDatastore(backing)
    await ds.open()
    const keys = ['/dht/provider/cid2/p1', '/dht/provider/cid1/p2', '/dht/provider/cid1/p1', '/dht/record/x', '/peers/a']
    for (const k of keys) await ds.put(new Key(k), bytes(k))
    await ds.delete(new Key('/dht/provider/cid1/p2'))
    await ds.put(new Key('/dht/provider/cid1/p3'), bytes('3'))
    await ds.put(new Key('/dht/provider/cid1/p1'), bytes('again')) // an overwrite adds no second key
    const query = async (prefix?: string): Promise<string[]> => {
      const out: string[] = []
      for await (const { key } of ds.query(prefix == null ? {} : { prefix })) out.push(key.toString())
      return out
    }
    expect(await query('/dht/provider/cid1')).toEqual(['/dht/provider/cid1/p1', '/dht/provider/cid1/p3'])
    expect(await query('/peers/')).toEqual(['/peers/a', '/peers/b'])
    expect(await query('/nothing')).toEqual([])
    expect((await query()).length).toBe(6)
    const keysOnly: string[] = []
    for await (const key of ds.queryKeys({ prefix: '/dht/' })) keysOnly.push(key.toString())
    expect(keysOnly).toEqual(['/dht/provider/cid1/p1', '/dht/provider/cid1/p3', '/dht/provider/cid2/p1', '/dht/record/x'])
    // the memory log's counts: all keys, and those under a prefix
    expect(ds.size).toBe(6)
    expect(ds.countPrefix('/dht/provider/')).toBe(3)
    expect(ds.countPrefix('/dht/provider/cid1/')).toBe(2)
    expect(ds.countPrefix('/peers/')).toBe(2)
    expect(ds.countPrefix('/nothing')).toBe(0)
    expect(ds.countPrefix('')).toBe(6)
    await ds.close()
  })
})

describe('the repo datastore', () => {
  let base: string
  beforeEach(async () => { base = await mkdtemp(join(tmpdir(), 'lepton-ds-')) })
  afterEach(async () => { await rm(base, { recursive: true, force: true }) })

  it('is on disk as soon as a write resolves, and the next open reads it back', async () => {
    await initRepo(join(base, 'r'))
    const repo = await openRepo(join(base, 'r'))
    const ds = await repo.openDatastore()
    const key = new Key('/peers/abc')
    await ds.put(key, bytes('addresses'))
    expect(await readdir(join(base, 'r', 'datastore'), { recursive: true })).toContain(join('peers', 'abc.data'))
    // a kill -9 here loses nothing: the next open reads it from disk
    const again = await repo.openDatastore()
    expect(text(await again.get(key))).toBe('addresses')
    await again.delete(key)
    await again.close()
    await ds.close()
    const third = await repo.openDatastore()
    expect(await third.has(key)).toBe(false)
    await third.close()
  })
})
