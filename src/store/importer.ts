/**
 * The UnixFS import with kubo's settings for `ipfs add --cid-version 1
 * --raw-leaves --chunker size-262144`, tuned for throughput without changing a
 * CID:
 *
 * - files are read straight into 256 KiB buffers from a small pool, which the
 *   chunker passes on without copying; buffers come back to the pool once
 *   their leaf is written. Fresh memory is what made imports slow here: the
 *   page faults of a new buffer per chunk cost more than hashing it.
 * - leaves are hashed, encoded and written while the next ones are read: our
 *   leaf importer keeps a window of leaves in flight and hands them to the
 *   importer in order (its own parallel batches wait for the slowest of each
 *   batch before reading on).
 */
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { CHUNK_BYTES, FILE_READAHEAD, FILE_READ_GROUP, IMPORT_WINDOW, MAX_CHILDREN_PER_NODE } from './constants.ts'
import { remainder } from './packs.ts'
import type { ImporterOptions } from 'ipfs-unixfs-importer'

/** Reusable chunk buffers: at most `max` are kept. */
export class ChunkPool {
  private readonly free: Buffer[] = []
  private readonly size: number
  private readonly max: number

  constructor (size = CHUNK_BYTES, max = IMPORT_WINDOW * 2) {
    this.size = size
    this.max = max
  }

  take (): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size)
  }

  /** Takes back a buffer from `take` (a view of all or the start of it) once nothing uses it. */
  give (buf: Uint8Array): void {
    if (this.free.length < this.max && buf.byteOffset === 0 && buf.buffer.byteLength === this.size) {
      this.free.push(Buffer.from(buf.buffer, 0, this.size))
    }
  }
}

/**
 * A file's bytes in chunks of exactly `pool`'s size (the last may be
 * shorter), read into pooled buffers, FILE_READ_GROUP chunks per readv and
 * `readahead` of those in flight, so that reading overlaps the hashing of the
 * chunks before.
 */
export async function * readFileChunks (path: string, pool: ChunkPool, readahead = FILE_READAHEAD): AsyncGenerator<Uint8Array> {
  const handle = await open(path, 'r')
  const size = (await handle.stat()).size
  const groupBytes = CHUNK_BYTES * FILE_READ_GROUP
  const readAt = async (position: number): Promise<Uint8Array[]> => {
    const want = Math.min(groupBytes, size - position)
    const buffers = Array.from({ length: Math.ceil(want / CHUNK_BYTES) }, () => pool.take())
    let filled = 0
    while (filled < want) {
      const bytesRead = filled === 0
        ? await handle.readv(buffers, position)
        : await handle.readv(remainder(buffers, filled), position + filled)
      if (bytesRead.bytesRead === 0) throw new Error(`${path} shrank while being read`)
      filled += bytesRead.bytesRead
    }
    const last = buffers.length - 1
    const tail = want - last * CHUNK_BYTES
    if (tail < CHUNK_BYTES) buffers[last] = (buffers[last] as Buffer).subarray(0, tail)
    return buffers
  }
  const reads: Array<Promise<Uint8Array[]>> = []
  let next = 0
  try {
    while (true) {
      while (reads.length < readahead && next < size) {
        const read = readAt(next)
        read.catch(() => {}) // awaited in order below
        reads.push(read)
        next += groupBytes
      }
      const read = reads.shift()
      if (read == null) return
      yield * await read
    }
  } finally {
    await Promise.allSettled(reads)
    await handle.close()
  }
}

export interface LeafWriter {
  /** Stores a leaf (its CID computed by the caller from these bytes). */
  put(cid: CID, bytes: Uint8Array): Promise<void>
  /** Called once a leaf's buffer is no longer needed. */
  release?(bytes: Uint8Array): void
}

interface LeafResult {
  cid: CID
  size: bigint
  block: Uint8Array
  unixfs: undefined
}

type BufferImporter = NonNullable<ImporterOptions['bufferImporter']>
type ImportFile = Parameters<BufferImporter>[0]

/**
 * The importer's leaf stage for raw leaves: hash (sha2-256), store, in a
 * window of `window` leaves, results in file order. Gives the same CIDs as
 * the default leaf stage with `rawLeaves: true, cidVersion: 1`.
 */
export function windowedLeafImporter (writer: LeafWriter, window = IMPORT_WINDOW): BufferImporter {
  return async function * leafImporter (file: ImportFile) {
    const inflight: Array<Promise<LeafResult>> = []
    const source = file.content[Symbol.asyncIterator]()
    let ended = false
    let first = true
    try {
      while (true) {
        while (!ended && inflight.length < window) {
          const next = await source.next()
          if (next.done === true) {
            ended = true
            break
          }
          // the first leaf of a file may become the file's root: the importer keeps its bytes
          const recycle = !first
          first = false
          const work = (async (): Promise<LeafResult> => {
            const bytes = next.value
            const cid = CID.createV1(raw.code, Digest.create(sha256.code, createHash('sha256').update(bytes).digest()))
            await writer.put(cid, bytes)
            if (recycle) writer.release?.(bytes)
            return { cid, size: BigInt(bytes.byteLength), block: bytes, unixfs: undefined }
          })()
          work.catch(() => {}) // awaited below, in order
          inflight.push(work)
        }
        const head = inflight.shift()
        if (head == null) return
        const result = await head
        yield async () => result
      }
    } finally {
      await Promise.allSettled(inflight)
    }
  }
}

type ImporterModules = [typeof import('ipfs-unixfs-importer'), typeof import('ipfs-unixfs-importer/chunker'), typeof import('ipfs-unixfs-importer/layout')]
let modules: Promise<ImporterModules> | undefined

/**
 * Loads the importer's modules (once). Loading takes ~150 ms here, as much as
 * importing 100 MiB: the store calls this in the background soon after start,
 * so that an idle daemon starts light and the first add does not pay it.
 */
export async function preloadImporter (): Promise<ImporterModules> {
  modules ??= Promise.all([import('ipfs-unixfs-importer'), import('ipfs-unixfs-importer/chunker'), import('ipfs-unixfs-importer/layout')])
  return await modules
}

/** The importer and its options. */
export async function loadImporter (writer: LeafWriter): Promise<{ importer: typeof import('ipfs-unixfs-importer').importer, options: ImporterOptions }> {
  const [{ importer }, { fixedSize }, { balanced }] = await preloadImporter()
  return {
    importer,
    options: {
      cidVersion: 1,
      rawLeaves: true,
      reduceSingleLeafToSelf: true,
      chunker: fixedSize({ chunkSize: CHUNK_BYTES }),
      layout: balanced({ maxChildrenPerNode: MAX_CHILDREN_PER_NODE }),
      shardSplitStrategy: 'links-bytes',
      fieldOrder: 'links-first',
      bufferImporter: windowedLeafImporter(writer),
      // our leaf stage runs its own window; its results are ready when handed over
      blockWriteConcurrency: 1
    }
  }
}
