/**
 * The stored form of a block, on disk and on the wire: one codec byte (raw or
 * DEFLATE) and the payload. Compression is tried only where a sample of the
 * block looks compressible, and kept only where it saves at least 10%.
 */
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { deflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib'
import { CODEC_DEFLATE, CODEC_RAW, COMPRESS_MAX_ENTROPY, COMPRESS_MAX_RATIO, COMPRESS_MIN_BYTES, COMPRESS_SAMPLE_BYTES, MAX_BLOCK_BYTES } from './constants.ts'
import { CorruptBlockError, UnsupportedHashError } from './errors.ts'
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'

const deflateRawAsync = promisify(deflateRaw)

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
  if (worthTrying(bytes)) {
    const packed = deflateRawSync(bytes, { level: 1 })
    if (packed.byteLength <= bytes.byteLength * COMPRESS_MAX_RATIO) return { codec: CODEC_DEFLATE, payload: packed }
  }
  return { codec: CODEC_RAW, payload: bytes }
}

/**
 * The same choice as encodeStored, deflating on libuv's thread pool: an import
 * of text compresses several blocks at once instead of blocking the event loop.
 */
export async function encodeStoredAsync (bytes: Uint8Array): Promise<StoredBlock> {
  if (worthTrying(bytes)) {
    const packed = await deflateRawAsync(bytes, { level: 1 })
    if (packed.byteLength <= bytes.byteLength * COMPRESS_MAX_RATIO) return { codec: CODEC_DEFLATE, payload: packed }
  }
  return { codec: CODEC_RAW, payload: bytes }
}

function worthTrying (bytes: Uint8Array): boolean {
  return bytes.byteLength >= COMPRESS_MIN_BYTES && sampleEntropy(bytes.subarray(0, COMPRESS_SAMPLE_BYTES)) <= COMPRESS_MAX_ENTROPY
}

/** The block's bytes from its stored form (not yet verified). */
export function decodeStored (stored: StoredBlock): Uint8Array | Uint8ArrayList {
  if (stored.codec === CODEC_RAW) return stored.payload
  if (stored.codec === CODEC_DEFLATE) return inflateRawSync(contiguous(stored.payload), { maxOutputLength: MAX_BLOCK_BYTES })
  throw new CorruptBlockError(`unknown block codec ${stored.codec}`)
}
