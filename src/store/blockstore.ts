/**
 * Blocks on disk: pack files (blocks/packs/<n>.pack) hold the stored payloads
 * of many blocks back to back; an append-only index log (blocks/index.log)
 * says where each CID lies and in which codec. A batch's first MiB goes to
 * the store's shared pack (open, appended to by every batch, until 64 MiB),
 * the rest of a large import or fetch to the batch's own packs; committing
 * the batch makes its bytes durable (fdatasync of each pack it wrote), then
 * appends and fsyncs the index records. A block is visible only once its
 * record is durable, so a crash leaves at worst a pack nobody points to,
 * removed at the next open, or bytes past the last committed block of a
 * shared pack, which no record points to and compaction reclaims. Every read
 * is hashed against its CID; a corrupt block is dropped from the index. gc's
 * deletes are records too; `compact` rewrites packs that are mostly dead.
 */
import { mkdir, readFile, readdir, rename, rm, stat, truncate, writeFile, open as openFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { BLOCKSTORE_VERSION, COMPACT_MIN_LIVE, INDEX_LOG_MAX_RECORDS_PER_BLOCK, INDEX_LOG_SLACK_RECORDS, PACK_MAX_BYTES, PACK_READ_HANDLES, SHARED_PACK_BATCH_BYTES } from './constants.ts'
import { BlockNotFoundError, CorruptBlockError, DiskFullError, StoreVersionError, UnsupportedHashError } from './errors.ts'
import { RECORD_DEL, RECORD_PUT, decodeRecords, encodeRecords } from './pack-log.ts'
import { PackIndex } from './pack-index.ts'
import { PackReaders, PackSegment, syncDir } from './packs.ts'
import { contiguous, decodeStored, encodeStored, verifyBlock } from './stored-form.ts'
import type { IndexRecord, PackEntry } from './pack-log.ts'
import type { PackItem } from './packs.ts'
import type { StoredBlock } from './stored-form.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Blockstore, InputPair, Pair } from 'interface-blockstore'
import type { FileHandle } from 'node:fs/promises'

export { contiguous, decodeStored, encodeStored, encodeStoredAsync, sampleEntropy, verifyBlock } from './stored-form.ts'
export type { StoredBlock } from './stored-form.ts'

export interface DiskBlockstoreEvents {
  /** A block on disk failed verification and was removed. */
  onCorrupt?(cid: CID): void
}

/** What a fetch or an import writes through: the store itself, or a batch. */
export interface BlockTarget {
  has(cid: CID): Promise<boolean>
  getBytes(cid: CID): Promise<Uint8Array>
  putStored(cid: CID, stored: StoredBlock): Promise<void>
}

interface PackStats {
  sizeBytes: number
  liveBytes: number
  liveBlocks: number
}

/** A shared pack not yet closed: the batches with blocks in it not yet committed or aborted. */
interface OpenShared {
  segment: PackSegment
  users: number
  /** The fsync of packs/ that makes the file's name durable, once, before its first records. */
  dirSynced?: Promise<void>
}

export interface CompactResult {
  packsRewritten: number
  packsRemoved: number
  /** Pack bytes deleted minus pack bytes written. */
  freedBytes: number
}

/**
 * Index key: the CIDv1's bytes as a latin1 string (36 one-byte characters for
 * sha2-256), not its base32 text. multiformats builds the text one character
 * at a time, and V8 keeps such a string as a chain of ~46 concatenation nodes
 * until something flattens it: keys decoded from the index log at start cost
 * ~1.6 KiB of heap each (a million blocks: 1.6 GiB). The index copies the
 * key's bytes into a typed array; the string lives only while it is used.
 */
const keyOf = (cid: CID): string => Buffer.from(cid.toV1().bytes).toString('latin1')
const cidOf = (key: string): CID => CID.decode(Buffer.from(key, 'latin1'))
const sameEntry = (a: PackEntry | undefined, b: PackEntry): boolean => a != null && a.pack === b.pack && a.offset === b.offset && a.length === b.length
const PACK_NAME = /^(\d+)\.pack$/

function diskFull (err: unknown, what: string): unknown {
  return (err as NodeJS.ErrnoException).code === 'ENOSPC' ? new DiskFullError(`no space left on device while storing ${what}`) : err
}

export class DiskBlockstore implements Blockstore, BlockTarget {
  readonly dir: string
  private readonly packDir: string
  private readonly logPath: string
  private readonly events: DiskBlockstoreEvents
  /**
   * CID (keyOf) -> where it lies (pack-index.ts): a 64-byte record (key and
   * location) in 128 KiB pages and 4-8 bytes of hash table a block, none on
   * the V8 heap. A million blocks (256 GiB of 256 KiB leaves) take ~70 MiB.
   */
  private readonly index = new PackIndex()
  private readonly packs = new Map<number, PackStats>()
  private readonly readers: PackReaders
  private nextPack = 1
  private log?: FileHandle
  private logBytes = 0
  private logRecords = 0
  /** Index changes (commit, delete) run one at a time, in log order. */
  private logTurn: Promise<unknown> = Promise.resolve()
  /** The shared pack new batches append to, and every shared pack still open (compaction leaves them alone). */
  private shared?: PackSegment
  private readonly openShared = new Map<number, OpenShared>()

  constructor (dir: string, events: DiskBlockstoreEvents = {}) {
    this.dir = dir
    this.packDir = join(dir, 'packs')
    this.logPath = join(dir, 'index.log')
    this.events = events
    this.readers = new PackReaders(pack => this.packPath(pack), PACK_READ_HANDLES)
  }

  private packPath (pack: number): string {
    return join(this.packDir, `${pack}.pack`)
  }

  /**
   * Creates the layout or checks its version; replays the index log (cutting
   * a torn tail); removes packs no committed record points to.
   */
  async open (): Promise<void> {
    await this.close()
    this.index.clear()
    this.packs.clear()
    await mkdir(this.dir, { recursive: true })
    const versionFile = join(this.dir, 'VERSION')
    let version: number
    try {
      version = Number((await readFile(versionFile, 'utf8')).trim())
    } catch {
      await writeFile(versionFile, `${BLOCKSTORE_VERSION}\n`)
      version = BLOCKSTORE_VERSION
    }
    if (version === 1) {
      throw new StoreVersionError(`blockstore ${this.dir} has format version 1 (one file per block); this lepton reads version ${BLOCKSTORE_VERSION} (pack files) and does not convert it. Move the folder aside (e.g. to ${this.dir}.v1) to start an empty store, then add or fetch the content again`)
    }
    if (version !== BLOCKSTORE_VERSION) {
      throw new StoreVersionError(`blockstore ${this.dir} has format version ${version}; this lepton reads version ${BLOCKSTORE_VERSION}`)
    }
    await mkdir(this.packDir, { recursive: true })

    const log = await readFile(this.logPath).catch(() => Buffer.alloc(0))
    const { records, validBytes } = decodeRecords(log)
    if (validBytes < log.byteLength) await truncate(this.logPath, validBytes) // a torn record from a crash
    for (const r of records) {
      const key = keyOf(CID.decode(r.cid))
      if (r.type === RECORD_PUT) this.index.set(key, r.entry as PackEntry)
      else this.index.delete(key)
    }
    this.logBytes = validBytes
    this.logRecords = records.length

    const files = new Map<number, number>()
    for (const name of await readdir(this.packDir)) {
      const m = PACK_NAME.exec(name)
      if (m == null) {
        await rm(join(this.packDir, name), { force: true })
        continue
      }
      const pack = Number(m[1])
      files.set(pack, (await stat(join(this.packDir, name))).size)
      this.nextPack = Math.max(this.nextPack, pack + 1)
    }
    let dropped = 0
    for (const [key, entry] of this.index) {
      this.nextPack = Math.max(this.nextPack, entry.pack + 1)
      const size = files.get(entry.pack)
      if (size == null || entry.offset + entry.length > size) {
        // its pack is gone (e.g. deleted after a delete record that was not yet durable)
        this.index.delete(key)
        dropped++
        continue
      }
      this.account(entry, 1, size)
    }
    for (const pack of files.keys()) {
      if (!this.packs.has(pack)) await rm(this.packPath(pack), { force: true }) // never committed, or dead
    }
    if (dropped > 0 || this.logNeedsRewrite()) await this.rewriteLog()
    this.log = await openFile(this.logPath, 'a', 0o644)
    if (this.logBytes === 0) await syncDir(this.dir)
  }

  /** Closes the log and the read handles. Batches must be finished first. */
  async close (): Promise<void> {
    await this.logTurn
    const shared = this.shared
    this.shared = undefined
    if (shared != null) await this.retireShared(shared)
    this.readers.closeAll()
    const log = this.log
    this.log = undefined
    await log?.close()
  }

  /** Adds (sign 1) or removes (sign -1) an entry's bytes from its pack's stats. */
  private account (entry: PackEntry, sign: 1 | -1, sizeBytes = 0): void {
    let stats = this.packs.get(entry.pack)
    if (stats == null) {
      stats = { sizeBytes, liveBytes: 0, liveBlocks: 0 }
      this.packs.set(entry.pack, stats)
    }
    stats.liveBytes += sign * entry.length
    stats.liveBlocks += sign
  }

  /** Runs `fn` when every earlier index change has finished. */
  private async inTurn<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.logTurn.then(fn)
    this.logTurn = run.catch(() => {})
    return await run
  }

  /** Appends records (in a turn); on failure cuts the log back so no torn record stays. */
  private async appendLog (records: IndexRecord[], sync: boolean): Promise<void> {
    const log = this.log
    if (log == null) throw new Error(`blockstore ${this.dir} is not open`)
    const bytes = encodeRecords(records)
    try {
      let done = 0
      while (done < bytes.byteLength) done += (await log.write(bytes, done)).bytesWritten
      if (sync) await log.datasync()
    } catch (err) {
      await log.truncate(this.logBytes).catch(() => {})
      throw err
    }
    this.logBytes += bytes.byteLength
    this.logRecords += records.length
  }

  private logNeedsRewrite (): boolean {
    return this.logRecords > this.index.size * INDEX_LOG_MAX_RECORDS_PER_BLOCK + INDEX_LOG_SLACK_RECORDS
  }

  /** Replaces the log with one PUT per live block (temp file, fsync, rename). */
  private async rewriteLog (): Promise<void> {
    const records: IndexRecord[] = []
    for (const [key, entry] of this.index) records.push({ type: RECORD_PUT, cid: cidOf(key).bytes, entry })
    const bytes = encodeRecords(records)
    const tmp = `${this.logPath}.tmp`
    const handle = await openFile(tmp, 'w', 0o644)
    try {
      await handle.writeFile(bytes)
      await handle.datasync()
    } finally {
      await handle.close()
    }
    const reopen = this.log != null
    await this.log?.close()
    await rename(tmp, this.logPath)
    await syncDir(this.dir)
    this.logBytes = bytes.byteLength
    this.logRecords = records.length
    if (reopen) this.log = await openFile(this.logPath, 'a', 0o644)
  }

  /** A new pack for a batch. */
  newSegment (): PackSegment {
    const pack = this.nextPack++
    return new PackSegment(pack, this.packPath(pack))
  }

  /**
   * Makes a segment's blocks visible: pack fsynced first, then its records
   * appended and fsynced. A compaction copy is committed only if the block
   * has not moved or gone meanwhile.
   */
  async commitSegment (segment: PackSegment): Promise<void> {
    try {
      await segment.sync()
      if (segment.items.length === 0) {
        await rm(segment.path, { force: true })
        return
      }
      await syncDir(this.packDir)
      await this.inTurn(async () => {
        const items = segment.items.filter(i => i.replaces == null || sameEntry(this.index.get(i.key), i.replaces))
        if (items.length === 0) {
          await rm(segment.path, { force: true })
          return
        }
        await this.recordPuts(segment, items)
      })
    } catch (err) {
      await rm(segment.path, { force: true })
      throw diskFull(err, `blocks in ${segment.path}`)
    }
  }

  /** A batch appends to the shared pack (a new one once the last is full or failed) and commits or leaves it later. */
  joinShared (): PackSegment {
    let segment = this.shared
    if (segment == null || segment.sizeBytes >= PACK_MAX_BYTES || segment.failed) {
      if (segment != null) this.retireShared(segment).catch(() => {})
      const pack = this.nextPack++
      segment = new PackSegment(pack, this.packPath(pack), true)
      this.shared = segment
      this.openShared.set(pack, { segment, users: 0 })
    }
    const open = this.openShared.get(segment.pack) as OpenShared
    open.users++
    return segment
  }

  /** The batch is done with the shared pack (committed or not); a retired pack closes with its last user. */
  async leaveShared (segment: PackSegment): Promise<void> {
    const open = this.openShared.get(segment.pack)
    if (open == null) return
    open.users--
    if (open.users <= 0 && this.shared !== segment) await this.closeShared(open)
  }

  /** No new batch appends to it; closed once its last user is done. */
  private async retireShared (segment: PackSegment): Promise<void> {
    if (this.shared === segment) this.shared = undefined
    const open = this.openShared.get(segment.pack)
    if (open != null && open.users <= 0) await this.closeShared(open)
  }

  private async closeShared (open: OpenShared): Promise<void> {
    const { segment } = open
    if (this.openShared.get(segment.pack) !== open) return
    this.openShared.delete(segment.pack)
    await segment.discard() // waits for writes in flight and closes; every commit made its bytes durable
    const stats = this.packs.get(segment.pack)
    if (stats != null) stats.sizeBytes = Math.max(stats.sizeBytes, segment.sizeBytes)
    else await rm(segment.path, { force: true }) // nothing in it was committed
  }

  /**
   * Makes a batch's blocks in a shared pack visible: the pack's writes so far
   * fdatasynced (one for every batch waiting at the time), then the batch's
   * records appended and fsynced. On failure the pack takes no more appends
   * (its committed blocks stay; the failed bytes are garbage no record names).
   */
  async commitShared (segment: PackSegment, items: PackItem[], writes: Array<Promise<void>>): Promise<void> {
    try {
      await Promise.all(writes)
      await segment.durable()
      const open = this.openShared.get(segment.pack)
      if (open != null) {
        open.dirSynced ??= syncDir(this.packDir)
        await open.dirSynced.catch((err: unknown) => {
          open.dirSynced = undefined
          throw err
        })
      }
      await this.inTurn(async () => { await this.recordPuts(segment, items) })
    } catch (err) {
      if (this.shared === segment) this.shared = undefined
      throw diskFull(err, `blocks in ${segment.path}`)
    }
  }

  /** In a turn: appends and fsyncs the PUT records of blocks now durable in `segment`, then indexes them. */
  private async recordPuts (segment: PackSegment, items: PackItem[]): Promise<void> {
    await this.appendLog(items.map(i => ({ type: RECORD_PUT, cid: i.cid.toV1().bytes, entry: i.entry })), true)
    // a batch's own pack is new here; a shared one may have records already, and has grown since
    let stats = this.packs.get(segment.pack)
    if (stats == null) {
      stats = { sizeBytes: 0, liveBytes: 0, liveBlocks: 0 }
      this.packs.set(segment.pack, stats)
    }
    stats.sizeBytes = Math.max(stats.sizeBytes, segment.sizeBytes)
    for (const i of items) {
      const old = this.index.get(i.key)
      if (old != null) this.account(old, -1)
      this.index.set(i.key, i.entry)
      this.account(i.entry, 1)
    }
  }

  async discardSegment (segment: PackSegment): Promise<void> {
    await segment.discard()
    this.readers.forget(segment.pack)
    await rm(segment.path, { force: true })
  }

  /**
   * A batch of writes, visible at commit: its first MiB in the shared pack,
   * the rest in packs of its own (one per 64 MiB); one fdatasync per pack.
   * `shared: false` writes only packs of its own (compaction).
   */
  batch (options: { shared?: boolean } = {}): BlockBatch {
    return new BlockBatch(this, options.shared ?? true)
  }

  /**
   * Runs `fn` with a batch and commits it. On failure the blocks written so
   * far are committed all the same (a fetch resumes from them), except on a
   * full disk, where the batch's uncommitted pack is removed.
   */
  async writeBatch<T> (fn: (batch: BlockBatch) => Promise<T>, options: { shared?: boolean } = {}): Promise<T> {
    const batch = this.batch(options)
    let result: T
    try {
      result = await fn(batch)
    } catch (err) {
      if (err instanceof DiskFullError) await batch.abort()
      else await batch.commit().catch(async () => { await batch.abort() })
      throw err
    }
    await batch.commit()
    return result
  }

  async has (cid: CID): Promise<boolean> {
    return this.index.has(keyOf(cid))
  }

  /** Synchronous presence check (batches use it to skip blocks already here). */
  hasKey (key: string): boolean {
    return this.index.has(key)
  }

  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID> {
    const data = bytes instanceof Uint8Array ? bytes : await collect(bytes)
    verifyBlock(cid, data)
    await this.putStored(cid, encodeStored(data), options)
    return cid
  }

  /** Stores one block (verified by the caller) in a batch of its own: prefer a batch for many. */
  async putStored (cid: CID, stored: StoredBlock, _options?: AbortOptions): Promise<void> {
    if (this.hasKey(keyOf(cid))) return
    await this.writeBatch(async batch => { await batch.putStored(cid, stored) })
  }

  /** The stored form, verified against the CID. */
  async getStored (cid: CID): Promise<StoredBlock> {
    const key = keyOf(cid)
    for (let attempt = 0; ; attempt++) {
      const entry = this.index.get(key)
      if (entry == null) throw new BlockNotFoundError(`block ${cid.toString()} is not in the local store`)
      let payload: Buffer
      try {
        payload = await this.readers.read(entry.pack, entry.offset, entry.length)
      } catch (err) {
        // moved by a compaction while we opened its old pack: read it where it is now
        if (attempt === 0 && !sameEntry(this.index.get(key), entry)) continue
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        await this.dropCorrupt(cid, key, entry)
        throw new CorruptBlockError(`block ${cid.toString()} on disk was lost (its pack file is missing) and has been removed from the index`)
      }
      const stored = { codec: entry.codec, payload }
      try {
        if (payload.byteLength !== entry.length) throw new CorruptBlockError('short read')
        verifyBlock(cid, decodeStored(stored))
      } catch (err) {
        if (err instanceof UnsupportedHashError) throw err
        // a wrong hash, an unknown codec or a broken DEFLATE stream: all corruption
        await this.dropCorrupt(cid, key, entry)
        throw new CorruptBlockError(`block ${cid.toString()} on disk was corrupt and has been removed`)
      }
      return stored
    }
  }

  /** Reads a stored payload where it lies, unverified (a batch's own pending blocks). */
  async readEntry (entry: PackEntry): Promise<StoredBlock> {
    return { codec: entry.codec, payload: await this.readers.read(entry.pack, entry.offset, entry.length) }
  }

  private async dropCorrupt (cid: CID, key: string, entry: PackEntry): Promise<void> {
    const removed = await this.inTurn(async () => {
      if (!sameEntry(this.index.get(key), entry)) return false // replaced meanwhile
      await this.removeEntry(key, entry)
      return true
    })
    if (removed) this.events.onCorrupt?.(cid)
  }

  /** In a turn: drops the entry and logs a delete record (not fsynced: a lost one only brings a deleted block back). */
  private async removeEntry (key: string, entry: PackEntry): Promise<void> {
    this.index.delete(key)
    this.account(entry, -1)
    await this.appendLog([{ type: RECORD_DEL, cid: cidOf(key).bytes }], false)
  }

  async getBytes (cid: CID): Promise<Uint8Array> {
    return contiguous(decodeStored(await this.getStored(cid)))
  }

  async * get (cid: CID): AsyncGenerator<Uint8Array> {
    yield await this.getBytes(cid)
  }

  /** Bytes the block takes in its pack (0 if absent). */
  async sizeOnDisk (cid: CID): Promise<number> {
    return this.index.get(keyOf(cid))?.length ?? 0
  }

  /** Where a block lies (diagnostics and tests). */
  locate (cid: CID): { file: string, offset: number, length: number, codec: number } | undefined {
    const entry = this.index.get(keyOf(cid))
    return entry == null ? undefined : { file: this.packPath(entry.pack), offset: entry.offset, length: entry.length, codec: entry.codec }
  }

  /** Drops a block from the index; its bytes are freed when `compact` rewrites or removes its pack. */
  async delete (cid: CID): Promise<void> {
    const key = keyOf(cid)
    await this.inTurn(async () => {
      const entry = this.index.get(key)
      if (entry != null) await this.removeEntry(key, entry)
    })
  }

  /**
   * Frees the space of deleted blocks: removes packs with nothing live, and
   * rewrites packs less than half live (their live blocks, verified, to a new
   * pack, committed before the old one is removed).
   */
  async compact (): Promise<CompactResult> {
    await this.inTurn(async () => { await this.log?.datasync() }) // deletes durable before any pack goes
    const result: CompactResult = { packsRewritten: 0, packsRemoved: 0, freedBytes: 0 }
    const sparse = new Set<number>()
    for (const [pack, stats] of this.packs) {
      // a shared pack still open is still being appended to: its turn comes once it is full
      if (this.openShared.has(pack)) continue
      if (stats.liveBlocks > 0 && stats.liveBytes < stats.sizeBytes * COMPACT_MIN_LIVE) sparse.add(pack)
    }
    if (sparse.size > 0) {
      const moving = [...this.index].filter(([, entry]) => sparse.has(entry.pack))
      let written = 0
      await this.writeBatch(async batch => {
        for (const [key, entry] of moving) {
          const cid = cidOf(key)
          let stored: StoredBlock
          try {
            stored = await this.getStored(cid)
          } catch (err) {
            if (err instanceof CorruptBlockError || err instanceof BlockNotFoundError) continue
            throw err
          }
          written += stored.payload.byteLength
          await batch.rewrite(cid, stored, entry)
        }
      }, { shared: false })
      result.packsRewritten = sparse.size
      result.freedBytes -= written
    }
    for (const [pack, stats] of [...this.packs]) {
      if (stats.liveBlocks > 0 || this.openShared.has(pack)) continue
      this.packs.delete(pack)
      this.readers.forget(pack)
      await rm(this.packPath(pack), { force: true })
      result.packsRemoved++
      result.freedBytes += stats.sizeBytes
    }
    if (result.packsRemoved > 0) await syncDir(this.packDir)
    if (this.logNeedsRewrite()) await this.inTurn(async () => { await this.rewriteLog() })
    return result
  }

  /** Bytes in pack files, and the share of them that live blocks take. */
  usage (): { packs: number, packBytes: number, liveBytes: number, blocks: number } {
    let packBytes = 0
    let liveBytes = 0
    for (const s of this.packs.values()) {
      packBytes += s.sizeBytes
      liveBytes += s.liveBytes
    }
    return { packs: this.packs.size, packBytes, liveBytes, blocks: this.index.size }
  }

  async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>, options?: AbortOptions): AsyncGenerator<CID> {
    const done: CID[] = []
    await this.writeBatch(async batch => {
      for await (const { cid, bytes } of source) {
        const data = bytes instanceof Uint8Array ? bytes : await collect(bytes)
        verifyBlock(cid, data)
        await batch.putStored(cid, encodeStored(data))
        done.push(cid)
      }
    })
    yield * done
  }

  async * getMany (source: Iterable<CID> | AsyncIterable<CID>): AsyncGenerator<Pair> {
    for await (const cid of source) yield { cid, bytes: this.get(cid) }
  }

  async * deleteMany (source: Iterable<CID> | AsyncIterable<CID>): AsyncGenerator<CID> {
    for await (const cid of source) {
      await this.delete(cid)
      yield cid
    }
  }

  /** Every CID in the index (not verified). */
  async * cids (): AsyncGenerator<CID> {
    for (const key of [...this.index.keys()]) {
      if (this.index.has(key)) yield cidOf(key)
    }
  }

  async * getAll (): AsyncGenerator<Pair> {
    for await (const cid of this.cids()) yield { cid, bytes: this.get(cid) }
  }
}

/**
 * Writes of one import or fetch. Blocks go to the batch's pack as they come
 * and are visible to the batch at once, to everyone else at commit. A pack
 * that reaches PACK_MAX_BYTES is committed in the background while the next
 * one fills.
 */
export class BlockBatch implements BlockTarget {
  private readonly store: DiskBlockstore
  private segment?: PackSegment
  private readonly committing: Array<Promise<void>> = []
  private readonly pending = new Map<string, { entry: PackEntry, written: Promise<void> }>()
  private failure?: unknown
  private finished = false
  /** The shared pack this batch appends its first blocks to, what it put there, and their writes. */
  private readonly useShared: boolean
  private shared?: PackSegment
  private readonly sharedItems: PackItem[] = []
  private readonly sharedWrites: Array<Promise<void>> = []
  private sharedBytes = 0

  constructor (store: DiskBlockstore, useShared = true) {
    this.store = store
    this.useShared = useShared
  }

  async has (cid: CID): Promise<boolean> {
    const key = keyOf(cid)
    return this.pending.has(key) || this.store.hasKey(key)
  }

  async getStored (cid: CID): Promise<StoredBlock> {
    const mine = this.pending.get(keyOf(cid))
    if (mine == null) return await this.store.getStored(cid)
    await mine.written
    const stored = await this.store.readEntry(mine.entry)
    verifyBlock(cid, decodeStored(stored))
    return stored
  }

  async getBytes (cid: CID): Promise<Uint8Array> {
    return contiguous(decodeStored(await this.getStored(cid)))
  }

  async * get (cid: CID): AsyncGenerator<Uint8Array> {
    yield await this.getBytes(cid)
  }

  /** Appends a block (verified by the caller) unless it is here already. */
  async putStored (cid: CID, stored: StoredBlock): Promise<void> {
    const key = keyOf(cid)
    if (this.pending.has(key) || this.store.hasKey(key)) return
    await this.append(key, cid, stored)
  }

  /** Compaction: a new copy of a block that replaces `old` if it is still current at commit. */
  async rewrite (cid: CID, stored: StoredBlock, old: PackEntry): Promise<void> {
    await this.append(keyOf(cid), cid, stored, old)
  }

  private async append (key: string, cid: CID, stored: StoredBlock, replaces?: PackEntry): Promise<void> {
    if (this.failure != null) throw this.failure
    if (this.finished) throw new Error('block batch already finished')
    // small batches share one pack; a large one moves to packs of its own after its first MiB, for good
    if (this.useShared && replaces == null && this.segment == null && this.sharedBytes + stored.payload.byteLength <= SHARED_PACK_BATCH_BYTES) {
      this.shared ??= this.store.joinShared()
      const { entry, written } = this.shared.append(key, cid, stored.codec, stored.payload)
      this.sharedItems.push({ key, cid, entry })
      this.sharedWrites.push(written)
      this.sharedBytes += stored.payload.byteLength
      this.pending.set(key, { entry, written })
      try {
        await written
      } catch (err) {
        throw diskFull(err, `block ${cid.toString()}`)
      }
      return
    }
    if (this.segment == null || this.segment.sizeBytes >= PACK_MAX_BYTES) this.seal()
    const segment = this.segment as PackSegment
    const { entry, written } = segment.append(key, cid, stored.codec, stored.payload, replaces)
    this.pending.set(key, { entry, written })
    try {
      await written
    } catch (err) {
      throw diskFull(err, `block ${cid.toString()}`)
    }
  }

  /** Commits the current pack in the background and starts the next. */
  private seal (): void {
    const full = this.segment
    this.segment = this.store.newSegment()
    if (full == null) return
    const done = this.store.commitSegment(full).then(() => {
      for (const item of full.items) this.pending.delete(item.key)
    })
    done.catch((err: unknown) => { this.failure ??= err })
    this.committing.push(done)
  }

  /** Makes every block of the batch durable and visible. */
  async commit (): Promise<void> {
    if (this.finished) return
    this.finished = true
    if (this.segment != null) {
      const last = this.segment
      this.segment = undefined
      this.committing.push(this.store.commitSegment(last))
    }
    const shared = this.shared
    if (shared != null) {
      this.shared = undefined
      const done = this.sharedItems.length === 0 ? Promise.resolve() : this.store.commitShared(shared, this.sharedItems, this.sharedWrites)
      this.committing.push(done.finally(async () => { await this.store.leaveShared(shared) }))
    }
    const results = await Promise.allSettled(this.committing)
    this.pending.clear()
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed != null) throw failed.reason
  }

  /** Drops the uncommitted pack (packs already committing finish). */
  async abort (): Promise<void> {
    this.finished = true
    const current = this.segment
    this.segment = undefined
    if (current != null) await this.store.discardSegment(current)
    // what it put in the shared pack stays there unnamed (compaction reclaims it)
    const shared = this.shared
    this.shared = undefined
    if (shared != null) {
      await Promise.allSettled(this.sharedWrites)
      await this.store.leaveShared(shared)
    }
    await Promise.allSettled(this.committing)
    this.pending.clear()
  }
}

async function collect (source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of source) chunks.push(chunk)
  return Buffer.concat(chunks)
}
