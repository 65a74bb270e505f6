/**
 * Blocks on disk: blocks/<2-char shard>/<cid>. Each file is one byte of codec
 * (raw or DEFLATE) and the block in that form. Writes go to blocks/tmp, are
 * fsynced and renamed into place, so a crash never leaves a partial block under
 * a CID. Every read is hashed against its CID; a corrupt file is removed.
 */
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { CID } from 'multiformats/cid'
import { BLOCKSTORE_VERSION, CODEC_DEFLATE, CODEC_RAW, COMPRESS_MAX_ENTROPY, COMPRESS_MAX_RATIO, COMPRESS_MIN_BYTES, COMPRESS_SAMPLE_BYTES, MAX_BLOCK_BYTES } from './constants.ts'
import { BlockNotFoundError, CorruptBlockError, DiskFullError, StoreVersionError, UnsupportedHashError } from './errors.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Blockstore, InputPair, Pair } from 'interface-blockstore'

const SHA2_256 = 0x12
const IDENTITY = 0x00

/**
 * A block as stored (and as sent on the wire): codec byte and payload. Off the
 * wire the payload is the list of chunks it arrived in, so it is never copied.
 */
export interface StoredBlock {
  codec: number
  payload: Uint8Array | Uint8ArrayList
}

/** One contiguous buffer (copies only a multi-chunk list). */
export function contiguous (bytes: Uint8Array | Uint8ArrayList): Uint8Array {
  return bytes instanceof Uint8Array ? bytes : bytes.subarray()
}

/** Hashes `bytes` and throws CorruptBlockError unless they match `cid`. */
export function verifyBlock (cid: CID, bytes: Uint8Array | Uint8ArrayList): void {
  const { code, digest } = cid.multihash
  if (code === SHA2_256) {
    const hash = createHash('sha256')
    if (bytes instanceof Uint8Array) hash.update(bytes)
    else for (const chunk of bytes) hash.update(chunk)
    const actual = hash.digest()
    if (actual.length === digest.length && actual.equals(digest)) return
  } else if (code === IDENTITY) {
    if (Buffer.from(digest).equals(contiguous(bytes))) return
  } else {
    throw new UnsupportedHashError(`block ${cid.toString()} uses multihash 0x${code.toString(16)}; lepton verifies sha2-256 only`)
  }
  throw new CorruptBlockError(`block ${cid.toString()} does not match its hash`)
}

/**
 * Shannon entropy of a sample in bits per byte. Random or already-compressed
 * data is near 8; text is around 4-5. Costs a few microseconds, where deflating
 * a sample of incompressible data costs a hundred times more.
 */
export function sampleEntropy (sample: Uint8Array): number {
  const counts = new Uint32Array(256)
  for (let i = 0; i < sample.length; i++) counts[sample[i] as number] = (counts[sample[i] as number] as number) + 1
  let bits = 0
  for (let i = 0; i < 256; i++) {
    const c = counts[i] as number
    if (c === 0) continue
    const p = c / sample.length
    bits -= p * Math.log2(p)
  }
  return bits
}

/**
 * Chooses the stored form: DEFLATE only where it saves at least 10%. A block
 * whose sample looks random is stored as it is without trying.
 */
export function encodeStored (bytes: Uint8Array): StoredBlock {
  if (bytes.byteLength >= COMPRESS_MIN_BYTES && sampleEntropy(bytes.subarray(0, COMPRESS_SAMPLE_BYTES)) <= COMPRESS_MAX_ENTROPY) {
    const packed = deflateRawSync(bytes, { level: 1 })
    if (packed.byteLength <= bytes.byteLength * COMPRESS_MAX_RATIO) return { codec: CODEC_DEFLATE, payload: packed }
  }
  return { codec: CODEC_RAW, payload: bytes }
}

/** The block's bytes from its stored form (not yet verified). */
export function decodeStored (stored: StoredBlock): Uint8Array | Uint8ArrayList {
  if (stored.codec === CODEC_RAW) return stored.payload
  if (stored.codec === CODEC_DEFLATE) return inflateRawSync(contiguous(stored.payload), { maxOutputLength: MAX_BLOCK_BYTES })
  throw new CorruptBlockError(`unknown block codec ${stored.codec}`)
}

export interface DiskBlockstoreEvents {
  /** A block on disk failed verification and was removed. */
  onCorrupt?(cid: CID): void
}

export class DiskBlockstore implements Blockstore {
  readonly dir: string
  private readonly tmpDir: string
  private readonly events: DiskBlockstoreEvents
  private tmpCounter = 0
  /** Shard folders known to exist. */
  private readonly shards = new Set<string>()

  constructor (dir: string, events: DiskBlockstoreEvents = {}) {
    this.dir = dir
    this.tmpDir = join(dir, 'tmp')
    this.events = events
  }

  /** Creates the layout or checks its version; clears writes a crash left half done. */
  async open (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const versionFile = join(this.dir, 'VERSION')
    let version: number
    try {
      version = Number((await readFile(versionFile, 'utf8')).trim())
    } catch {
      await writeFile(versionFile, `${BLOCKSTORE_VERSION}\n`)
      version = BLOCKSTORE_VERSION
    }
    if (version !== BLOCKSTORE_VERSION) {
      throw new StoreVersionError(`blockstore ${this.dir} has format version ${version}; this lepton reads version ${BLOCKSTORE_VERSION}`)
    }
    await rm(this.tmpDir, { recursive: true, force: true })
    await mkdir(this.tmpDir, { recursive: true })
  }

  private pathOf (cid: CID): string {
    const key = cid.toV1().toString()
    return join(this.dir, key.slice(-3, -1), key)
  }

  async has (cid: CID): Promise<boolean> {
    try {
      await stat(this.pathOf(cid))
      return true
    } catch {
      return false
    }
  }

  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID> {
    const data = bytes instanceof Uint8Array ? bytes : await collect(bytes)
    verifyBlock(cid, data)
    await this.putStored(cid, encodeStored(data), options)
    return cid
  }

  /** Stores a block already in stored form (e.g. as it came off the wire, verified by the caller). */
  async putStored (cid: CID, stored: StoredBlock, _options?: AbortOptions): Promise<void> {
    // no existence check first: the same CID always has the same bytes, and rename replaces atomically
    const file = this.pathOf(cid)
    const tmp = join(this.tmpDir, `${process.pid}-${this.tmpCounter++}`)
    try {
      const handle = await open(tmp, 'w', 0o644)
      try {
        await handle.writev([Uint8Array.of(stored.codec), ...(stored.payload instanceof Uint8Array ? [stored.payload] : stored.payload)])
        await handle.sync()
      } finally {
        await handle.close()
      }
      const shard = join(file, '..')
      if (!this.shards.has(shard)) {
        await mkdir(shard, { recursive: true })
        this.shards.add(shard)
      }
      await rename(tmp, file)
    } catch (err) {
      await rm(tmp, { force: true })
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new DiskFullError(`no space left on device while storing block ${cid.toString()}`)
      throw err
    }
  }

  /** The stored form, verified against the CID. */
  async getStored (cid: CID): Promise<StoredBlock> {
    const file = this.pathOf(cid)
    let raw: Buffer
    try {
      raw = await readFile(file)
    } catch {
      throw new BlockNotFoundError(`block ${cid.toString()} is not in the local store`)
    }
    const stored = { codec: raw[0] ?? -1, payload: raw.subarray(1) }
    try {
      verifyBlock(cid, decodeStored(stored))
    } catch (err) {
      if (err instanceof UnsupportedHashError) throw err
      // a wrong hash, an unknown codec byte or a broken DEFLATE stream: all corruption
      await rm(file, { force: true })
      this.events.onCorrupt?.(cid)
      throw new CorruptBlockError(`block ${cid.toString()} on disk was corrupt and has been removed`)
    }
    return stored
  }

  async getBytes (cid: CID): Promise<Uint8Array> {
    return contiguous(decodeStored(await this.getStored(cid)))
  }

  async * get (cid: CID): AsyncGenerator<Uint8Array> {
    yield await this.getBytes(cid)
  }

  async sizeOnDisk (cid: CID): Promise<number> {
    try {
      return (await stat(this.pathOf(cid))).size
    } catch {
      return 0
    }
  }

  async delete (cid: CID): Promise<void> {
    await rm(this.pathOf(cid), { force: true })
  }

  async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>, options?: AbortOptions): AsyncGenerator<CID> {
    for await (const { cid, bytes } of source) yield await this.put(cid, bytes, options)
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

  /** Every CID on disk (not verified). */
  async * cids (): AsyncGenerator<CID> {
    for (const shard of await readdir(this.dir)) {
      if (shard === 'tmp' || shard === 'VERSION') continue
      for (const name of await readdir(join(this.dir, shard)).catch(() => [] as string[])) {
        try {
          yield CID.parse(name)
        } catch {}
      }
    }
  }

  async * getAll (): AsyncGenerator<Pair> {
    for await (const cid of this.cids()) yield { cid, bytes: this.get(cid) }
  }
}

async function collect (source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of source) chunks.push(chunk)
  return Buffer.concat(chunks)
}
