/**
 * The blockstore's index: an append-only log of records "CID is at (pack,
 * offset, length, codec)" and "CID deleted". Each record carries its length and
 * a CRC-32, so a record torn by a crash (or any damage) ends the log there: the
 * rest is truncated at open. Replaying the log in order gives the index.
 *
 *   record = u32 bodyLength, u32 crc32(body), body
 *   body   = u8 type, u8 cidLength, cid bytes,
 *            PUT only: u32 pack, u48 offset, u32 length, u8 codec    (little-endian)
 */
import { crc32 } from 'node:zlib'

export const RECORD_PUT = 1
export const RECORD_DEL = 2

/** Where a block's stored form lies: payload bytes in a pack file, and its codec. */
export interface PackEntry {
  pack: number
  offset: number
  length: number
  codec: number
}

export interface IndexRecord {
  type: typeof RECORD_PUT | typeof RECORD_DEL
  cid: Uint8Array
  /** PUT only. */
  entry?: PackEntry
}

const HEADER_BYTES = 8
const PUT_TAIL_BYTES = 4 + 6 + 4 + 1

export function encodeRecords (records: IndexRecord[]): Buffer {
  let total = 0
  for (const r of records) total += HEADER_BYTES + 2 + r.cid.byteLength + (r.type === RECORD_PUT ? PUT_TAIL_BYTES : 0)
  const out = Buffer.allocUnsafe(total)
  let at = 0
  for (const r of records) {
    const bodyLength = 2 + r.cid.byteLength + (r.type === RECORD_PUT ? PUT_TAIL_BYTES : 0)
    const body = at + HEADER_BYTES
    out[body] = r.type
    out[body + 1] = r.cid.byteLength
    out.set(r.cid, body + 2)
    let p = body + 2 + r.cid.byteLength
    if (r.type === RECORD_PUT) {
      const e = r.entry as PackEntry
      p = out.writeUInt32LE(e.pack, p)
      p = out.writeUIntLE(e.offset, p, 6)
      p = out.writeUInt32LE(e.length, p)
      out[p] = e.codec
    }
    out.writeUInt32LE(bodyLength, at)
    out.writeUInt32LE(crc32(out.subarray(body, body + bodyLength)), at + 4)
    at = body + bodyLength
  }
  return out
}

/**
 * Records up to the first one that is torn or damaged; `validBytes` is where
 * that one starts (the length of the sound log).
 */
export function decodeRecords (log: Uint8Array): { records: IndexRecord[], validBytes: number } {
  const buf = Buffer.from(log.buffer, log.byteOffset, log.byteLength)
  const records: IndexRecord[] = []
  let at = 0
  while (at + HEADER_BYTES <= buf.length) {
    const bodyLength = buf.readUInt32LE(at)
    const body = at + HEADER_BYTES
    if (bodyLength < 2 || body + bodyLength > buf.length) break
    if (crc32(buf.subarray(body, body + bodyLength)) !== buf.readUInt32LE(at + 4)) break
    const type = buf[body] as number
    const cidLength = buf[body + 1] as number
    const tail = body + 2 + cidLength
    const cid = buf.subarray(body + 2, tail)
    if (type === RECORD_DEL && bodyLength === 2 + cidLength) {
      records.push({ type, cid })
    } else if (type === RECORD_PUT && bodyLength === 2 + cidLength + PUT_TAIL_BYTES) {
      records.push({
        type,
        cid,
        entry: { pack: buf.readUInt32LE(tail), offset: buf.readUIntLE(tail + 4, 6), length: buf.readUInt32LE(tail + 10), codec: buf[tail + 14] as number }
      })
    } else {
      break
    }
    at = body + bodyLength
  }
  return { records, validBytes: at }
}
