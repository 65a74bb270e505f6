/**
 * The daemon's datastore (libp2p's peer store and the DHT's records): every
 * key and value also held in memory, so reads never touch the disk; writes
 * go through to disk (datastore-fs: temp file + rename) before they resolve.
 *
 * libp2p reads a peer's record on every merge (identify, connections, every
 * peer in every DHT answer), under that peer's lock, and most merges change
 * nothing. Straight on datastore-fs each of those reads was a file read on
 * libuv's four threads, which the store and the job journals keep busy:
 * under load on a 20-daemon mesh the submitter carried ~150-190 merges
 * queued behind their locks, DHT requests waited behind them holding the peer
 * records they carried, and its heap grew with the queue. Writes still go
 * to disk before they resolve (a version that wrote behind every 5 s was
 * tried): a kill -9 loses nothing, and libp2p's writes keep their timing.
 * The one exception: libp2p writes a peer's record on every merge, changed or
 * not, stamping its `updated` time; a record whose only change is that time
 * goes to disk at most every PEER_RECORD_REFRESH_MS (and at close), so a
 * kill -9 can lose that much of a time stamp and nothing else.
 */
import { BaseDatastore } from 'datastore-core/base'
import { Key } from 'interface-datastore'
import { NotFoundError } from '@libp2p/interface'
import type { AbortOptions } from '@libp2p/interface'
import type { Datastore, Pair, Query, KeyQuery } from 'interface-datastore'
import { PEER_RECORD_REFRESH_MS, PROVIDER_RECORD_LIMITS } from './constants.ts'

/** Where libp2p's peer store keeps a peer's record (protobuf, its `updated` time last: field 8, a varint). */
const PEER_PREFIX = '/peers/'

/** Where kad-dht keeps provider records: `/dht/provider/<multihash base32>/<provider peer id>`. */
export const PROVIDER_PREFIX = '/dht/provider/'

export interface CachedDatastoreOptions {
  /** Provider records of other peers held at most, per provider and in all (PROVIDER_RECORD_LIMITS). */
  providerLimits?: { perPeer: number, total: number }
  /** This node's peer id: its own provider records are never dropped nor counted. */
  self?: string
  /** A peer record differing only in its `updated` time goes to disk at most this often (PEER_RECORD_REFRESH_MS). */
  peerRecordRefreshMs?: number
  /** The clock (tests). */
  now?: () => number
}

export interface BackingDatastore extends Datastore {
  open?(): Promise<void>
  close?(): Promise<void>
}

export class CachedDatastore extends BaseDatastore {
  /**
   * Values as latin1 strings of their bytes: a string costs its length and 16
   * bytes of heap, a Uint8Array ~200 more (its object, an ArrayBuffer, the
   * backing store malloc'd outside the heap). Every peer holds a DHT provider
   * record for what the mesh provides (~1.3 a job on a soak, for 48 h, up
   * to PROVIDER_RECORD_LIMITS). A read gets a copy of its own.
   */
  private readonly data = new Map<string, string>()
  /**
   * Every key, sorted: a prefix query visits only its own range. The DHT asks
   * for one CID's provider records by prefix on every provider message; a scan
   * of all keys there (thousands of records after a few minutes of jobs) would
   * make each ask O(all records).
   */
  private readonly sorted: string[] = []
  private readonly backing: BackingDatastore
  private readonly providerLimits: { perPeer: number, total: number }
  private readonly self: string | undefined
  /** Other peers' provider record keys by provider, oldest first (a rewrite makes a record the newest). */
  private readonly providersByPeer = new Map<string, Set<string>>()
  private otherProviderRecords = 0
  /** Provider records dropped to stay within providerLimits. */
  providerRecordsDropped = 0
  private readonly peerRecordRefreshMs: number
  private readonly now: () => number
  /** Peer record key -> when it was last written to disk, and that copy without its `updated` field. */
  private readonly peerRecordOnDisk = new Map<string, { at: number, withoutUpdated: string | undefined }>()
  /** Peer record writes that only changed `updated` and were kept in memory. */
  peerRecordWritesSkipped = 0
  /** Peer records whose `updated` in memory is newer than on disk (written at close). */
  private readonly peerRecordsBehind = new Set<string>()

  constructor (backing: BackingDatastore, options: CachedDatastoreOptions = {}) {
    super()
    this.backing = backing
    this.providerLimits = options.providerLimits ?? PROVIDER_RECORD_LIMITS
    this.self = options.self
    this.peerRecordRefreshMs = options.peerRecordRefreshMs ?? PEER_RECORD_REFRESH_MS
    this.now = options.now ?? Date.now
  }

  /** Keys held. */
  get size (): number {
    return this.data.size
  }

  /** Keys starting with `prefix` (two binary searches: no scan). */
  countPrefix (prefix: string): number {
    // every key with the prefix sorts before the prefix followed by the highest code unit
    return lowerBound(this.sorted, prefix + '\uffff') - lowerBound(this.sorted, prefix)
  }

  /** Opens the backing store and loads every key from it (provider records over the limits are dropped). */
  async open (): Promise<void> {
    await this.backing.open?.()
    for await (const { key, value } of this.backing.query({})) {
      const k = key.toString()
      this.set(k, latin1(value))
      this.countProvider(k)
    }
    await this.enforceProviderLimits()
  }

  /**
   * True when the peer record at `k`, `stripped` of its `updated` field, is
   * what its disk copy, written less than peerRecordRefreshMs ago, holds.
   */
  private onlyUpdatedChanged (k: string, stripped: string | undefined): boolean {
    const disk = this.peerRecordOnDisk.get(k)
    if (disk?.withoutUpdated == null || this.now() - disk.at >= this.peerRecordRefreshMs) return false
    return stripped === disk.withoutUpdated
  }

  /** Provider records held for other peers (the daemon's own not counted). */
  get otherProviders (): number {
    return this.otherProviderRecords
  }

  /**
   * Counts `k` if it is another peer's provider record (moving it to the
   * newest place if held already); true when it was counted.
   */
  private countProvider (k: string): boolean {
    if (!k.startsWith(PROVIDER_PREFIX)) return false
    const peer = providerOf(k)
    if (peer === this.self) return false
    let keys = this.providersByPeer.get(peer)
    if (keys == null) this.providersByPeer.set(peer, keys = new Set())
    if (keys.delete(k)) this.otherProviderRecords--
    keys.add(k)
    this.otherProviderRecords++
    return true
  }

  /**
   * Drops the oldest records of `peer` (of every provider without one) while
   * it holds more than perPeer, then those of the largest holder while all
   * hold more than total.
   */
  private async enforceProviderLimits (peer?: string, options?: AbortOptions): Promise<void> {
    const check = peer == null ? [...this.providersByPeer.values()] : [this.providersByPeer.get(peer) ?? new Set<string>()]
    for (const keys of check) {
      // dropOldest shrinks `keys`
      while (keys.size > this.providerLimits.perPeer) await this.dropOldest(keys, options)
    }
    while (this.otherProviderRecords > this.providerLimits.total) {
      let largest: Set<string> | undefined
      for (const keys of this.providersByPeer.values()) if (largest == null || keys.size > largest.size) largest = keys
      if (largest == null) break
      await this.dropOldest(largest, options)
    }
  }

  private async dropOldest (keys: Set<string>, options?: AbortOptions): Promise<void> {
    const oldest = keys.values().next().value
    if (oldest == null) return
    this.forget(oldest)
    this.providerRecordsDropped++
    // a record the disk failed to delete is loaded again at the next open, and dropped again there
    try {
      await this.backing.delete(new Key(oldest), options)
    } catch {}
  }

  /** Drops `k` from memory and from the provider counts. */
  private forget (k: string): void {
    if (this.data.delete(k)) this.sorted.splice(lowerBound(this.sorted, k), 1)
    this.peerRecordOnDisk.delete(k)
    this.peerRecordsBehind.delete(k)
    if (!k.startsWith(PROVIDER_PREFIX)) return
    const peer = providerOf(k)
    const keys = this.providersByPeer.get(peer)
    if (keys?.delete(k) !== true) return
    this.otherProviderRecords--
    if (keys.size === 0) this.providersByPeer.delete(peer)
  }

  override async put (key: Key, val: Uint8Array, options?: AbortOptions): Promise<Key> {
    // the latin1 string is a copy (the caller may reuse its bytes), and so is what goes to disk
    const text = latin1(val)
    const k = key.toString()
    const stripped = k.startsWith(PEER_PREFIX) ? withoutUpdated(text) : undefined
    if (stripped != null && this.onlyUpdatedChanged(k, stripped)) {
      this.peerRecordWritesSkipped++
      this.set(k, text)
      this.peerRecordsBehind.add(k)
      return key
    }
    await this.backing.put(key, val.slice(), options)
    this.set(k, text)
    if (k.startsWith(PEER_PREFIX)) {
      this.peerRecordOnDisk.set(k, { at: this.now(), withoutUpdated: stripped })
      this.peerRecordsBehind.delete(k)
    }
    if (this.countProvider(k)) await this.enforceProviderLimits(providerOf(k), options)
    return key
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    const value = this.data.get(key.toString())
    if (value == null) throw new NotFoundError(`${key.toString()} is not in the datastore`)
    return bytesOf(value)
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    return this.data.has(key.toString())
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    await this.backing.delete(key, options)
    this.forget(key.toString())
  }

  override * _all (q: Query, options?: AbortOptions): Generator<Pair> {
    for (const key of this.range(q.prefix)) {
      options?.signal?.throwIfAborted()
      const value = this.data.get(key)
      if (value != null) yield { key: new Key(key), value: bytesOf(value) }
    }
  }

  override * _allKeys (q: KeyQuery, options?: AbortOptions): Generator<Key> {
    for (const key of this.range(q.prefix)) {
      options?.signal?.throwIfAborted()
      if (this.data.has(key)) yield new Key(key)
    }
  }

  /** The keys starting with `prefix` (all without one), a snapshot: changes while iterating are safe. */
  private range (prefix: string | undefined): string[] {
    if (prefix == null || prefix === '') return [...this.sorted]
    const start = lowerBound(this.sorted, prefix)
    let end = start
    while (end < this.sorted.length && (this.sorted[end] as string).startsWith(prefix)) end++
    return this.sorted.slice(start, end)
  }

  private set (k: string, text: string): void {
    if (!this.data.has(k)) this.sorted.splice(lowerBound(this.sorted, k), 0, k)
    this.data.set(k, text)
  }

  async close (): Promise<void> {
    // a clean stop loses no time stamp: the held-back records go in one batch (datastore-fs writes them in parallel)
    const batch = this.backing.batch()
    for (const k of this.peerRecordsBehind) {
      const value = this.data.get(k)
      if (value != null) batch.put(new Key(k), bytesOf(value))
    }
    await batch.commit()
    this.peerRecordsBehind.clear()
    await this.backing.close?.()
  }
}

/**
 * A value's bytes in a buffer of their own: not a slice of Buffer's shared 8
 * KiB pool, which a decoded record's views (a multiaddr, a key) would keep
 * alive whole.
 */
function bytesOf (value: string): Uint8Array {
  const bytes = Buffer.allocUnsafeSlow(value.length)
  bytes.write(value, 'latin1')
  return bytes
}

/** A value's bytes as the latin1 string the datastore holds (a copy). */
function latin1 (value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1')
}

/**
 * A peer record (latin1) without its trailing `updated` field (tag 0x40, a
 * varint holding a millisecond time), or undefined when it does not end in one.
 */
function withoutUpdated (record: string): string | undefined {
  // the varint's last byte has its top bit clear, the ones before it set
  let i = record.length - 1
  if (i < 1 || record.charCodeAt(i) >= 0x80) return undefined
  i--
  while (i >= 0 && record.charCodeAt(i) >= 0x80) i--
  if (i < 0 || record.charCodeAt(i) !== 0x40) return undefined
  let ms = 0
  for (let j = record.length - 1; j > i; j--) ms = ms * 128 + (record.charCodeAt(j) & 0x7f)
  // a time after 2001 (10^12 ms): not the tail of some other field that happens to look like one
  return ms > 1e12 ? record.slice(0, i) : undefined
}

/** The provider's peer id, the last part of a provider record's key. */
function providerOf (k: string): string {
  return k.slice(k.lastIndexOf('/') + 1)
}

/** The first index in sorted `keys` whose key is >= `k`. */
function lowerBound (keys: string[], k: string): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((keys[mid] as string) < k) lo = mid + 1
    else hi = mid
  }
  return lo
}
