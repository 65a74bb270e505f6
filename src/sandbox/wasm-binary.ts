/**
 * Reads and rewrites the memory section of a WebAssembly binary: the memory
 * cap is enforced by lowering each defined memory's maximum, so `memory.grow`
 * past the cap fails inside the module (it returns -1) instead of taking the
 * host's memory. Worker resourceLimits do not cover wasm memory.
 */
import { encodeVarint } from '../wire/index.ts'
import { WASM_PAGE_BYTES } from './constants.ts'

const MEMORY_SECTION = 5
/** wasm32 memories address at most 4 GiB. */
const MAX_PAGES_32 = 65536

export interface MemoryDeclaration {
  /** Pages at start. */
  min: number
  /** Declared maximum in pages (undefined: none, i.e. 4 GiB). */
  max?: number
}

export interface CappedModule {
  bytes: Uint8Array
  /** The module's memories as declared, before capping. */
  memories: MemoryDeclaration[]
  /** Whether the cap lowered a maximum (so a failed grow may be our doing). */
  lowered: boolean
}

export class WasmFormatError extends Error {}

/** Pages that fit in `memoryMiB`. */
export function capPages (memoryMiB: number): number {
  return Math.min(MAX_PAGES_32, Math.floor(memoryMiB * 1024 * 1024 / WASM_PAGE_BYTES))
}

/** Returns the binary with every defined memory's maximum at most `maxPages`. */
export function capMemory (bytes: Uint8Array, maxPages: number): CappedModule {
  if (bytes.byteLength < 8 || readU32le(bytes, 0) !== 0x6d736100) throw new WasmFormatError('no WebAssembly magic number')
  if (readU32le(bytes, 4) !== 1) throw new WasmFormatError(`unsupported WebAssembly binary version ${readU32le(bytes, 4)}`)
  let pos = 8
  while (pos < bytes.byteLength) {
    const id = bytes[pos] as number
    const [size, payloadStart] = readLeb(bytes, pos + 1)
    const payloadEnd = payloadStart + size
    if (payloadEnd > bytes.byteLength) throw new WasmFormatError('a section runs past the end of the binary')
    if (id === MEMORY_SECTION) {
      const { payload, memories, lowered } = rewriteMemories(bytes.subarray(payloadStart, payloadEnd), maxPages)
      const parts = [bytes.subarray(0, pos + 1), leb(payload.byteLength), payload, bytes.subarray(payloadEnd)]
      const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0))
      let at = 0
      for (const part of parts) {
        out.set(part, at)
        at += part.byteLength
      }
      return { bytes: out, memories, lowered }
    }
    pos = payloadEnd
  }
  return { bytes, memories: [], lowered: false }
}

function rewriteMemories (payload: Uint8Array, maxPages: number): { payload: Uint8Array, memories: MemoryDeclaration[], lowered: boolean } {
  const out: number[] = []
  const memories: MemoryDeclaration[] = []
  let lowered = false
  let [count, pos] = readLeb(payload, 0)
  out.push(...leb(count))
  while (count-- > 0) {
    const flags = payload[pos++] as number
    if ((flags & 0x04) !== 0) throw new WasmFormatError('64-bit memories (memory64) are not supported')
    if (flags > 0x03) throw new WasmFormatError(`unknown memory flags 0x${flags.toString(16)}`)
    const [min, afterMin] = readLeb(payload, pos)
    pos = afterMin
    let max: number | undefined
    if ((flags & 0x01) !== 0) {
      [max, pos] = readLeb(payload, pos)
    }
    memories.push(max != null ? { min, max } : { min })
    const newMax = Math.min(max ?? MAX_PAGES_32, maxPages)
    if (newMax < (max ?? MAX_PAGES_32)) lowered = true
    // a maximum below the minimum makes the module invalid; the caller refuses such a module first
    out.push(flags | 0x01, ...leb(min), ...leb(Math.max(newMax, min)))
  }
  if (pos !== payload.byteLength) throw new WasmFormatError('malformed memory section')
  return { payload: Uint8Array.from(out), memories, lowered }
}

function readU32le (bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16) | ((bytes[at + 3] as number) << 24)) >>> 0
}

/** Unsigned LEB128 (u32): [value, position after it]. */
export function readLeb (bytes: Uint8Array, at: number): [number, number] {
  let value = 0
  let shift = 0
  let pos = at
  for (;;) {
    if (pos >= bytes.byteLength || shift > 28) throw new WasmFormatError('malformed LEB128 number')
    const byte = bytes[pos++] as number
    value += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) return [value, pos]
    shift += 7
  }
}

/** Unsigned LEB128 encoding: the same varint as our wire frames. */
export const leb = encodeVarint
