/**
 * The daemon's datastore (libp2p's peer store and the DHT's records): served
 * from memory, written to disk behind.
 *
 * libp2p reads and merges a peer's record on every identify, connection and
 * DHT response, each under that peer's lock. Straight on datastore-fs every
 * read was a file read and every merge a file write and rename, all through
 * libuv's 4 threads that the store and the job journals keep busy: under load
 * on a 20-daemon mesh the submitter carried ~150-190 merges queued behind
 * their locks, DHT requests waited behind them holding the peer records they
 * carried, and its heap grew with the queue. Here reads and writes are a Map
 * (of copies); changed keys go to disk at most once per `flushIntervalMs`
 * (the last value of each), on `flush()` and on `close()`. A crash loses at
 * most that interval of peer-address updates: each file is replaced whole
 * (temp file + rename), never left half-written.
 */
import { BaseDatastore } from 'datastore-core/base'
import { Key } from 'interface-datastore'
import { NotFoundError } from '@libp2p/interface'
import type { AbortOptions } from '@libp2p/interface'
import type { Datastore, Pair, Query, KeyQuery } from 'interface-datastore'

/** @default 5000 */
export const DATASTORE_FLUSH_INTERVAL_MS = 5000

export interface BackingDatastore extends Datastore {
  open?(): Promise<void>
  close?(): Promise<void>
}

export class WriteBehindDatastore extends BaseDatastore {
  private readonly data = new Map<string, Uint8Array>()
  /**
   * Every key, sorted: a prefix query visits only its own range. The DHT asks
   * for one CID's provider records by prefix on every provider message; a scan
   * of all keys there (thousands of records after a few minutes of jobs) made
   * each ask O(all records) and starved a 20-daemon mesh of CPU.
   */
  private readonly sorted: string[] = []
  private readonly backing: BackingDatastore
  private readonly flushIntervalMs: number
  /** Keys changed in memory since they were last written to `backing`. */
  private readonly dirty = new Set<string>()
  private timer: ReturnType<typeof setTimeout> | undefined
  /** The flush in progress: flushes run one at a time. */
  private flushing: Promise<void> = Promise.resolve()
  private closed = false
  private readonly onError: (err: Error) => void

  /** `onError` hears of background writes that failed (their keys are retried). */
  constructor (backing: BackingDatastore, options: { flushIntervalMs?: number, onError?: (err: Error) => void } = {}) {
    super()
    this.backing = backing
    this.flushIntervalMs = options.flushIntervalMs ?? DATASTORE_FLUSH_INTERVAL_MS
    this.onError = options.onError ?? (() => {})
  }

  /** Opens the backing store and loads every key from it. */
  async open (): Promise<void> {
    await this.backing.open?.()
    for await (const { key, value } of this.backing.query({})) {
      this.set(key.toString(), value)
    }
  }

  override put (key: Key, val: Uint8Array, options?: AbortOptions): Key {
    options?.signal?.throwIfAborted()
    // a copy: values are small views into the 64 KiB buffers they were decoded
    // from (a provider record kept its whole received chunk alive)
    this.set(key.toString(), val.slice())
    this.changed(key)
    return key
  }

  override get (key: Key, options?: AbortOptions): Uint8Array {
    options?.signal?.throwIfAborted()
    const value = this.data.get(key.toString())
    if (value == null) throw new NotFoundError(`${key.toString()} is not in the datastore`)
    return value
  }

  override has (key: Key, options?: AbortOptions): boolean {
    options?.signal?.throwIfAborted()
    return this.data.has(key.toString())
  }

  override delete (key: Key, options?: AbortOptions): void {
    options?.signal?.throwIfAborted()
    const k = key.toString()
    if (this.data.delete(k)) this.sorted.splice(lowerBound(this.sorted, k), 1)
    this.changed(key)
  }

  override * _all (q: Query, options?: AbortOptions): Generator<Pair> {
    for (const key of this.range(q.prefix)) {
      options?.signal?.throwIfAborted()
      const value = this.data.get(key)
      if (value != null) yield { key: new Key(key), value }
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

  private set (k: string, value: Uint8Array): void {
    if (!this.data.has(k)) this.sorted.splice(lowerBound(this.sorted, k), 0, k)
    this.data.set(k, value)
  }

  /** Writes every changed key to disk; throws if a write failed (the key stays changed). */
  async flush (): Promise<void> {
    const run = this.flushing.then(async () => { await this.writeDirty() })
    this.flushing = run.catch(() => {})
    await run
  }

  /** Flushes and closes the backing store. Later changes stay in memory only. */
  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    try {
      await this.flush()
    } finally {
      await this.backing.close?.()
    }
  }

  private changed (key: Key): void {
    this.dirty.add(key.toString())
    this.schedule()
  }

  private schedule (): void {
    if (this.timer != null || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flush().catch((err: Error) => {
        // the keys that failed stay dirty: try again later
        this.onError(err)
        this.schedule()
      })
    }, this.flushIntervalMs)
    this.timer.unref()
  }

  private async writeDirty (): Promise<void> {
    const keys = [...this.dirty]
    this.dirty.clear()
    let failure: Error | undefined
    for (const k of keys) {
      const value = this.data.get(k)
      try {
        if (value != null) await this.backing.put(new Key(k), value)
        else await this.backing.delete(new Key(k))
      } catch (err) {
        this.dirty.add(k)
        failure = err as Error
      }
    }
    if (failure != null) throw failure
  }
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
