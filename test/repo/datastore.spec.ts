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

describe('CachedDatastore peer records', () => {
  /** A peer record as libp2p's peer store encodes it: its fields, then `updated` (field 8, a varint) last. */
  const record = (fields: string, updatedMs: number): Uint8Array => {
    const tail = [0x40]
    for (let v = updatedMs; ; v = Math.floor(v / 128)) {
      if (v < 128) { tail.push(v); break }
      tail.push((v % 128) | 0x80)
    }
    return new Uint8Array([...bytes(fields), ...tail])
  }

  it('writes a record whose only change is its updated time to disk at most every peerRecordRefreshMs', async () => {
    const backing = new CountingStore()
    let t = 1_800_000_000_000
    const ds = new CachedDatastore(backing, { peerRecordRefreshMs: 60_000, now: () => t })
    await ds.open()
    const key = new Key('/peers/a')
    await ds.put(key, record('addrs:x', t))
    expect(backing.puts).toBe(1)
    // libp2p merges with nothing new: only `updated` moves; reads see it, the disk is not touched
    t += 1000
    await ds.put(key, record('addrs:x', t))
    expect(backing.puts).toBe(1)
    expect(ds.peerRecordWritesSkipped).toBe(1)
    expect(new Uint8Array(await ds.get(key))).toEqual(record('addrs:x', t))
    // a real change goes to disk at once
    t += 1000
    await ds.put(key, record('addrs:y', t))
    expect(backing.puts).toBe(2)
    expect(new Uint8Array(backing.data.get('/peers/a') as Uint8Array)).toEqual(record('addrs:y', t))
    // and so does an unchanged one once the disk copy is peerRecordRefreshMs old
    t += 30_000
    await ds.put(key, record('addrs:y', t))
    expect(backing.puts).toBe(2)
    t += 30_000
    await ds.put(key, record('addrs:y', t))
    expect(backing.puts).toBe(3)
    // other keys are always written, equal or not
    await ds.put(new Key('/dht/record/r'), record('v', t))
    await ds.put(new Key('/dht/record/r'), record('v', t + 1))
    expect(backing.puts).toBe(5)
    // a value that does not end in an `updated` time is always written
    await ds.put(new Key('/peers/b'), bytes('no time'))
    await ds.put(new Key('/peers/b'), bytes('no time'))
    expect(backing.puts).toBe(7)
    await ds.close()
    expect(backing.puts).toBe(7)
  })

  it('writes the records whose updated time it held back when it closes, and no deleted one', async () => {
    const backing = new CountingStore()
    let t = 1_800_000_000_000
    const ds = new CachedDatastore(backing, { peerRecordRefreshMs: 60_000, now: () => t })
    await ds.open()
    await ds.put(new Key('/peers/a'), record('addrs:x', t))
    await ds.put(new Key('/peers/b'), record('addrs:z', t))
    t += 1000
    await ds.put(new Key('/peers/a'), record('addrs:x', t))
    await ds.put(new Key('/peers/b'), record('addrs:z', t))
    await ds.delete(new Key('/peers/b'))
    expect(backing.puts).toBe(2)
    await ds.close()
    expect(new Uint8Array(backing.data.get('/peers/a') as Uint8Array)).toEqual(record('addrs:x', t))
    expect(backing.data.has('/peers/b')).toBe(false)
    expect(backing.puts).toBe(3)
  })
})

describe('CachedDatastore provider record limits', () => {
  const provider = (cid: string, peer: string): Key => new Key(`/dht/provider/${cid}/${peer}`)
  const held = async (ds: CachedDatastore, backing: CountingStore, peer: string): Promise<string[]> => {
    const inMemory: string[] = []
    for await (const { key } of ds.query({ prefix: '/dht/provider/' })) if (key.toString().endsWith(`/${peer}`)) inMemory.push(key.toString())
    // what memory holds is what the disk holds
    expect([...backing.data.keys()].filter(k => k.startsWith('/dht/provider/') && k.endsWith(`/${peer}`)).sort()).toEqual(inMemory)
    return inMemory.map(k => k.split('/')[3] as string)
  }

  it('keeps at most perPeer records of one provider, dropping its oldest from memory and disk', async () => {
    const backing = new CountingStore()
    const ds = new CachedDatastore(backing, { providerLimits: { perPeer: 3, total: 100 }, self: 'me' })
    await ds.open()
    await ds.put(provider('b1', 'pB'), bytes('t'))
    // a peer announcing one CID after another: only its newest 3 stay
    for (const c of ['a1', 'a2', 'a3', 'a4', 'a5']) await ds.put(provider(c, 'pA'), bytes('t'))
    expect(await held(ds, backing, 'pA')).toEqual(['a3', 'a4', 'a5'])
    expect(await held(ds, backing, 'pB')).toEqual(['b1'])
    expect(ds.providerRecordsDropped).toBe(2)
    // announcing a held CID again makes it the newest
    await ds.put(provider('a3', 'pA'), bytes('t2'))
    await ds.put(provider('a6', 'pA'), bytes('t'))
    expect(await held(ds, backing, 'pA')).toEqual(['a3', 'a5', 'a6'])
    expect(ds.otherProviders).toBe(4)
    // other keys are never touched
    await ds.put(new Key('/peers/pA'), bytes('addrs'))
    expect(await ds.has(new Key('/peers/pA'))).toBe(true)
    await ds.close()
  })

  it('over the total the largest holder loses its oldest; the daemon\'s own records are neither dropped nor counted', async () => {
    const backing = new CountingStore()
    const ds = new CachedDatastore(backing, { providerLimits: { perPeer: 10, total: 5 }, self: 'me' })
    await ds.open()
    for (const c of ['a1', 'a2', 'a3', 'a4']) await ds.put(provider(c, 'pA'), bytes('t'))
    for (const c of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']) await ds.put(provider(c, 'me'), bytes('t'))
    await ds.put(provider('b1', 'pB'), bytes('t'))
    expect(ds.otherProviders).toBe(5)
    await ds.put(provider('b2', 'pB'), bytes('t'))
    expect(await held(ds, backing, 'pA')).toEqual(['a2', 'a3', 'a4'])
    expect(await held(ds, backing, 'pB')).toEqual(['b1', 'b2'])
    expect(await held(ds, backing, 'me')).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'])
    expect(ds.otherProviders).toBe(5)
    // a deleted record (kad-dht expiring it) frees its place
    await ds.delete(provider('b1', 'pB'))
    await ds.put(provider('c1', 'pC'), bytes('t'))
    expect(await held(ds, backing, 'pA')).toEqual(['a2', 'a3', 'a4'])
    expect(ds.otherProviders).toBe(5)
    await ds.close()
  })

  it('drops what is over the limits when it opens a datastore written with larger ones', async () => {
    const backing = new CountingStore()
    for (const c of ['a1', 'a2', 'a3', 'a4']) backing.put(provider(c, 'pA'), bytes('t'))
    backing.put(provider('b1', 'pB'), bytes('t'))
    const ds = new CachedDatastore(backing, { providerLimits: { perPeer: 2, total: 100 } })
    await ds.open()
    expect((await held(ds, backing, 'pA')).length).toBe(2)
    expect(await held(ds, backing, 'pB')).toEqual(['b1'])
    expect(ds.otherProviders).toBe(3)
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
