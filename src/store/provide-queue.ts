/**
 * DHT announcements (provide records) in the background, a few at a time.
 *
 * A provide is a DHT query plus an ADD_PROVIDER message to each of the k
 * closest peers: tens of streams. Fired all at once (every pin at the
 * reprovide, every add of a busy submitter) they took the CPU of the whole
 * mesh for a moment; measured: a job of 6 tasks took 200-400 ms with its
 * module re-announced at each submit, 70-130 ms without. So: one queue,
 * `concurrency` at a time, and a CID announced less than `freshMs` ago is not
 * announced again (its records live far longer) unless the reprovide forces it.
 */
import type { Logger } from '../log.ts'
import type { CID } from 'multiformats/cid'

export interface ProvideQueueInit {
  /** Announces one CID (the DHT's provide). */
  provide(cid: CID, signal: AbortSignal): Promise<void>
  log: Logger
  /** Aborts what runs and stops the queue (the store stopping). */
  signal: AbortSignal
  /** A CID announced less than this long ago is skipped unless forced (counted in whole seconds). */
  freshMs: number
  /** Bound on one announcement. */
  timeoutMs: number
  /** Announcements at once. @default 2 */
  concurrency?: number
  /** CIDs remembered as announced (oldest forgotten first). @default 100000 */
  maxRemembered?: number
  /**
   * CIDs waiting at most; beyond, the oldest waiting one is dropped (pinned
   * content is announced again at the next reprovide). A busy submitter added
   * CIDs faster than two announcements at a time could go out: 4000 waited
   * after 8 minutes of the soak, and every announcement's DHT lookup queued
   * more peer-store merges. @default 1024
   */
  maxWaiting?: number
}

export class ProvideQueue {
  private readonly init: ProvideQueueInit
  /**
   * CID -> when its last announcement succeeded, in whole seconds since the
   * queue started; insertion order is time order. Keyed by the CID's bytes as
   * latin1 (56 bytes of heap, its base32 text 80) and valued in small
   * integers (a millisecond timestamp is a 16-byte heap number): a busy
   * submitter remembers one or two CIDs a job, up to maxRemembered.
   */
  private readonly providedAt = new Map<string, number>()
  private readonly startedMs = Date.now()
  private readonly waiting = new Map<string, CID>()
  private readonly running = new Set<string>()
  /** Announcements dropped because too many waited. */
  dropped = 0

  constructor (init: ProvideQueueInit) {
    this.init = init
  }

  /** Queues an announcement of `cid` (no-op when it is fresh or already queued, unless `force`). */
  add (cid: CID, force = false): void {
    const key = cid.toString()
    if (this.init.signal.aborted || this.waiting.has(key) || this.running.has(key)) return
    const at = this.providedAt.get(bytesKey(cid))
    if (!force && at != null && (this.nowS() - at) * 1000 < this.init.freshMs) return
    this.waiting.set(key, cid)
    const max = this.init.maxWaiting ?? 1024
    for (const oldest of this.waiting.keys()) {
      if (this.waiting.size <= max) break
      this.waiting.delete(oldest)
      this.dropped++
    }
    this.pump()
  }

  /** Announcements waiting or running. */
  get pending (): number {
    return this.waiting.size + this.running.size
  }

  private pump (): void {
    const concurrency = this.init.concurrency ?? 2
    while (this.running.size < concurrency && this.waiting.size > 0 && !this.init.signal.aborted) {
      const [key, cid] = this.waiting.entries().next().value as [string, CID]
      this.waiting.delete(key)
      this.running.add(key)
      this.init.provide(cid, AbortSignal.any([this.init.signal, AbortSignal.timeout(this.init.timeoutMs)]))
        .then(() => {
          this.remember(cid)
          this.init.log.debug('provided', { cid: key })
        }, (err: Error) => {
          this.init.log.debug('provide failed', { cid: key, err })
        })
        .finally(() => {
          this.running.delete(key)
          this.pump()
        })
    }
  }

  private nowS (): number {
    return Math.floor((Date.now() - this.startedMs) / 1000)
  }

  private remember (cid: CID): void {
    const key = bytesKey(cid)
    const now = this.nowS()
    this.providedAt.delete(key)
    this.providedAt.set(key, now)
    const max = this.init.maxRemembered ?? 100_000
    for (const [k, at] of this.providedAt) {
      if (this.providedAt.size <= max && (now - at) * 1000 < this.init.freshMs) break
      this.providedAt.delete(k)
    }
  }
}

/** A flat one-byte string of the CID's bytes. */
function bytesKey (cid: CID): string {
  return Buffer.from(cid.bytes.buffer, cid.bytes.byteOffset, cid.bytes.byteLength).toString('latin1')
}
