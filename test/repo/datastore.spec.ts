import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BaseDatastore } from 'datastore-core/base'
import { Key } from 'interface-datastore'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WriteBehindDatastore, initRepo, openRepo } from '../../src/repo/index.ts'
import type { Pair } from 'interface-datastore'

/** An in-memory backing store that counts what reaches it and can be made to fail. */
class CountingStore extends BaseDatastore {
  readonly data = new Map<string, Uint8Array>()
  puts = 0
  deletes = 0
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
    this.deletes++
    this.data.delete(key.toString())
  }

  override get (key: Key): Uint8Array {
    const value = this.data.get(key.toString())
    if (value == null) throw new Error(`${key.toString()} not found`)
    return value
  }

  override has (key: Key): boolean {
    return this.data.has(key.toString())
  }

  override * _all (): Generator<Pair> {
    for (const [key, value] of this.data) yield { key: new Key(key), value }
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

describe('WriteBehindDatastore', () => {
  it('serves reads and repeated writes from memory and writes each changed key once per flush', async () => {
    const backing = new CountingStore()
    const ds = new WriteBehindDatastore(backing, { flushIntervalMs: 60_000 })
    await ds.open()
    const key = new Key('/peers/a')
    for (let i = 0; i < 1000; i++) {
      await ds.put(key, bytes(`v${i}`))
      expect(text(await ds.get(key))).toBe(`v${i}`)
    }
    expect(backing.puts).toBe(0)
    await ds.flush()
    expect(backing.puts).toBe(1)
    expect(text(await backing.get(key))).toBe('v999')
    await ds.delete(key)
    expect(await ds.has(key)).toBe(false)
    await expect(async () => await ds.get(key)).rejects.toMatchObject({ name: 'NotFoundError' })
    await ds.close()
    expect(backing.deletes).toBe(1)
    expect(await backing.has(key)).toBe(false)
  })

  it('keeps a copy of each value, not the buffer it is a view of', async () => {
    const ds = new WriteBehindDatastore(new CountingStore())
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

  it('answers prefix queries from its sorted keys, through puts and deletes', async () => {
    const ds = new WriteBehindDatastore(new CountingStore())
    await ds.open()
    const keys = ['/peers/b', '/dht/provider/cid2/p1', '/dht/provider/cid1/p2', '/dht/provider/cid1/p1', '/dht/record/x', '/peers/a']
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
    await ds.close()
  })

  it('writes behind on its own after the interval', async () => {
    const backing = new CountingStore()
    const ds = new WriteBehindDatastore(backing, { flushIntervalMs: 20 })
    await ds.open()
    await ds.put(new Key('/peers/b'), bytes('x'))
    for (let i = 0; i < 100 && backing.puts === 0; i++) await sleep(20)
    expect(backing.puts).toBe(1)
    await ds.close()
  })

  it('keeps a key whose write failed and writes it on the next flush', async () => {
    const backing = new CountingStore()
    const errors: Error[] = []
    const ds = new WriteBehindDatastore(backing, { flushIntervalMs: 20, onError: (err) => errors.push(err) })
    await ds.open()
    backing.failPuts = 1
    await ds.put(new Key('/peers/c'), bytes('y'))
    for (let i = 0; i < 100 && backing.puts === 0; i++) await sleep(20)
    expect(errors.map(e => e.message)).toEqual(['disk full'])
    expect(text(await backing.get(new Key('/peers/c')))).toBe('y')
    await ds.close()
  })

  it('queries what it holds, including what it loaded at open', async () => {
    const backing = new CountingStore()
    await backing.put(new Key('/peers/old'), bytes('1'))
    const ds = new WriteBehindDatastore(backing)
    await ds.open()
    await ds.put(new Key('/peers/new'), bytes('2'))
    const keys: string[] = []
    for await (const { key } of ds.query({ prefix: '/peers' })) keys.push(key.toString())
    expect(keys.sort()).toEqual(['/peers/new', '/peers/old'])
    await ds.close()
  })
})

describe('the repo datastore', () => {
  let base: string
  beforeEach(async () => { base = await mkdtemp(join(tmpdir(), 'lepton-ds-')) })
  afterEach(async () => { await rm(base, { recursive: true, force: true }) })

  it('writes to disk behind, and close writes what changed: the next open reads it back', async () => {
    await initRepo(join(base, 'r'))
    const repo = await openRepo(join(base, 'r'))
    const ds = await repo.openDatastore()
    const key = new Key('/peers/abc')
    await ds.put(key, bytes('addresses'))
    // not yet on disk: a peer-store merge costs no file write
    expect(await readdir(join(base, 'r', 'datastore'), { recursive: true })).not.toContain(join('peers', 'abc.data'))
    await ds.close()
    expect(await readdir(join(base, 'r', 'datastore'), { recursive: true })).toContain(join('peers', 'abc.data'))

    const again = await repo.openDatastore()
    expect(text(await again.get(key))).toBe('addresses')
    await again.delete(key)
    await again.close()
    const third = await repo.openDatastore()
    expect(await third.has(key)).toBe(false)
    await third.close()
  })
})
