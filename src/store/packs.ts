/**
 * Pack files: blocks/packs/<n>.pack holds the stored payloads of many blocks
 * back to back, with nothing in between (where each block lies is the index
 * log's business). A pack is written once, by one batch (or, the store's
 * shared pack, by many until it is full), then only read and eventually
 * deleted: blocks are appended at offsets reserved in call order, so writes
 * overlap one another and the hashing of the next blocks.
 */
import { open } from 'node:fs/promises'
import { PACK_FLUSH_BYTES, PACK_WRITE_GROUP_BYTES } from './constants.ts'
import type { PackEntry } from './pack-log.ts'
import type { FileHandle } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'

/** A block appended to a pack that is not committed yet. */
export interface PackItem {
  key: string
  cid: CID
  entry: PackEntry
  /** Compaction: the entry this copy replaces, if it is still current at commit. */
  replaces?: PackEntry
}

interface WriteGroup {
  offset: number
  bytes: number
  chunks: Uint8Array[]
  done: PromiseWithResolvers<void>
}

/** Fewer than IOV_MAX (1024 on Linux) buffers per writev. */
const MAX_IOVECS = 512

/** The chunks after the first `skip` bytes (for partial readv/writev). */
export function remainder (chunks: Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const chunk of chunks) {
    if (skip >= chunk.byteLength) {
      skip -= chunk.byteLength
      continue
    }
    out.push(skip > 0 ? chunk.subarray(skip) : chunk)
    skip = 0
  }
  return out
}

/**
 * A pack being written. Nothing in it is visible until the store commits it.
 * Most are written by one batch and closed at its commit; a shared one (the
 * store's pack for small writes) takes the appends of many batches, each
 * committing its own blocks, and stays open until it is full.
 */
export class PackSegment {
  readonly pack: number
  readonly path: string
  readonly shared: boolean
  sizeBytes = 0
  /** The blocks appended (not kept for a shared pack: each batch keeps its own). */
  readonly items: PackItem[] = []
  private readonly handle: Promise<FileHandle>
  private readonly writes = new Set<Promise<void>>()
  private failure?: Error
  private group?: WriteGroup
  private writtenBytes = 0
  private flushedAt = 0
  private flushing?: Promise<void>
  /** Shared packs: the fdatasync that callers arriving now will share, and the one before it. */
  private syncQueued?: Promise<void>
  private syncLast: Promise<void> = Promise.resolve()

  constructor (pack: number, path: string, shared = false) {
    this.pack = pack
    this.path = path
    this.shared = shared
    this.handle = open(path, 'wx', 0o644)
    this.handle.catch(() => {}) // reported by the first append
  }

  /**
   * Reserves room for the payload (synchronously, so offsets follow call
   * order) and queues it. Blocks appended in the same turn of the event loop
   * (up to PACK_WRITE_GROUP_BYTES) go out in one writev: contiguous in the
   * file, one syscall and one thread-pool trip for several blocks.
   * `written` resolves once the bytes are in the file, not yet durable.
   */
  append (key: string, cid: CID, codec: number, payload: Uint8Array | Uint8ArrayList, replaces?: PackEntry): { entry: PackEntry, written: Promise<void> } {
    const entry: PackEntry = { pack: this.pack, offset: this.sizeBytes, length: payload.byteLength, codec }
    this.sizeBytes += payload.byteLength
    if (!this.shared) this.items.push({ key, cid, entry, replaces })
    let group = this.group
    if (group == null) {
      group = { offset: entry.offset, bytes: 0, chunks: [], done: Promise.withResolvers<void>() }
      group.done.promise.catch(() => {}) // the appenders await it
      this.group = group
      const queued = group
      setImmediate(() => { if (this.group === queued) this.dispatch() })
    }
    if (payload instanceof Uint8Array) group.chunks.push(payload)
    else for (const chunk of payload) group.chunks.push(chunk)
    group.bytes += payload.byteLength
    const written = group.done.promise
    if (group.bytes >= PACK_WRITE_GROUP_BYTES || group.chunks.length >= MAX_IOVECS) this.dispatch()
    return { entry, written }
  }

  /** Writes the queued group. */
  private dispatch (): void {
    const group = this.group
    if (group == null) return
    this.group = undefined
    const write = (async () => {
      const handle = await this.handle
      let done = 0
      let chunks = group.chunks
      while (done < group.bytes) {
        const { bytesWritten } = await handle.writev(chunks, group.offset + done)
        done += bytesWritten
        // writev may write less than asked (rare): go on from where it stopped
        if (done < group.bytes) chunks = remainder(group.chunks, done)
      }
      this.writtenBytes += group.bytes
      this.flushSome(handle)
    })()
    write.then(() => { group.done.resolve() }, (err: Error) => {
      this.failure ??= err
      group.done.reject(err)
    })
    this.writes.add(write)
    write.finally(() => { this.writes.delete(write) }).catch(() => {})
  }

  /**
   * Starts writeback of what is written so far, one fdatasync at a time, every
   * PACK_FLUSH_BYTES: the disk writes while the import goes on, and the
   * fdatasync of the commit only has the tail left (the kernel would wait
   * until gigabytes are dirty). Durability still comes from that last one.
   */
  private flushSome (handle: FileHandle): void {
    if (this.flushing != null || this.writtenBytes - this.flushedAt < PACK_FLUSH_BYTES) return
    this.flushedAt = this.writtenBytes
    this.flushing = handle.datasync()
      .catch((err: Error) => { this.failure ??= err })
      .finally(() => { this.flushing = undefined })
  }

  /** A write to this pack has failed: a shared pack takes no more appends. */
  get failed (): boolean {
    return this.failure != null
  }

  /**
   * Shared packs: makes every write that has finished so far durable; the
   * file stays open. Callers arriving while an fdatasync runs share the next.
   */
  async durable (): Promise<void> {
    if (this.failure != null) throw this.failure
    let queued = this.syncQueued
    if (queued == null) {
      const next: Promise<void> = this.syncLast.catch(() => {}).then(async () => {
        // from here on, new callers need a later fdatasync than this one
        if (this.syncQueued === next) this.syncQueued = undefined
        await (await this.handle).datasync()
      })
      queued = next
      this.syncQueued = next
      this.syncLast = next
    }
    await queued
    if (this.failure != null) throw this.failure
  }

  /** Waits for every write, makes the pack durable, and closes it. */
  async sync (): Promise<void> {
    this.dispatch()
    await Promise.allSettled([...this.writes])
    await this.flushing
    const handle = await this.handle
    try {
      if (this.failure != null) throw this.failure
      await handle.datasync()
    } finally {
      await handle.close()
    }
  }

  /** Waits for writes in flight, then closes (the caller removes the file). */
  async discard (): Promise<void> {
    this.dispatch()
    await Promise.allSettled([...this.writes])
    await this.flushing
    const handle = await this.handle.catch(() => undefined)
    await handle?.close().catch(() => {})
  }
}

interface Reader {
  handle: Promise<FileHandle>
  refs: number
  retired: boolean
}

/** Open read handles of packs, a bounded number, shared by concurrent reads. */
export class PackReaders {
  private readonly readers = new Map<number, Reader>()
  private readonly pathOf: (pack: number) => string
  private readonly max: number

  constructor (pathOf: (pack: number) => string, max: number) {
    this.pathOf = pathOf
    this.max = max
  }

  /** `length` bytes at `offset` (fewer if the file is shorter). */
  async read (pack: number, offset: number, length: number): Promise<Buffer> {
    let reader = this.readers.get(pack)
    if (reader == null) {
      const created: Reader = { handle: open(this.pathOf(pack), 'r'), refs: 0, retired: false }
      reader = created
      this.readers.set(pack, created)
      created.handle.catch(() => { if (this.readers.get(pack) === created) this.readers.delete(pack) })
      this.evict()
    }
    reader.refs++
    try {
      const handle = await reader.handle
      const buf = Buffer.allocUnsafe(length)
      let done = 0
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return done === length ? buf : buf.subarray(0, done)
    } finally {
      reader.refs--
      if (reader.retired && reader.refs === 0) this.close(reader)
    }
  }

  /** The pack is gone or going: close its handle once no read uses it. */
  forget (pack: number): void {
    const reader = this.readers.get(pack)
    if (reader == null) return
    this.readers.delete(pack)
    reader.retired = true
    if (reader.refs === 0) this.close(reader)
  }

  closeAll (): void {
    for (const pack of [...this.readers.keys()]) this.forget(pack)
  }

  private evict (): void {
    for (const [pack, reader] of this.readers) {
      if (this.readers.size <= this.max) return
      if (reader.refs === 0) this.forget(pack)
    }
  }

  private close (reader: Reader): void {
    reader.handle.then(async h => { await h.close() }).catch(() => {})
  }
}

/** fsync of a folder: makes the names created or removed in it durable. */
export async function syncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
