/**
 * Protobuf messages from a small schema, encoded and decoded by protons-runtime.
 * (protons' generated code uses TypeScript namespaces, which Node's type
 * stripping cannot run; a schema table gives the same wire format.)
 */
import { decodeMessage, encodeMessage, message } from 'protons-runtime'
import { ProtocolViolationError } from './errors.ts'
import type { Codec, Reader, Writer } from 'protons-runtime'

type Scalar = 'uint32' | 'uint64' | 'bool' | 'double' | 'bytes' | 'string'

export interface FieldSpec {
  /** Field number on the wire. */
  no: number
  type: Scalar
  /** A repeated field: decoded as an array of at most `maxItems`. */
  repeated?: boolean
  maxItems?: number
}

export type Schema = Record<string, FieldSpec>

const WIRE_TYPE: Record<Scalar, number> = { uint32: 0, uint64: 0, bool: 0, double: 1, bytes: 2, string: 2 }

const DEFAULTS: Record<Scalar, () => unknown> = {
  uint32: () => 0, uint64: () => 0, bool: () => false, double: () => 0, bytes: () => new Uint8Array(0), string: () => ''
}

function write (w: Writer, type: Scalar, value: unknown): void {
  switch (type) {
    case 'uint32': w.uint32(value as number); break
    case 'uint64': w.uint64Number(value as number); break
    case 'bool': w.bool(value as boolean); break
    case 'double': w.double(value as number); break
    case 'bytes': w.bytes(value as Uint8Array); break
    case 'string': w.string(value as string); break
  }
}

function read (r: Reader, type: Scalar): unknown {
  switch (type) {
    case 'uint32': return r.uint32()
    case 'uint64': return r.uint64Number()
    case 'bool': return r.bool()
    case 'double': return r.double()
    case 'bytes': return r.bytes()
    case 'string': return r.string()
  }
}

function isDefault (type: Scalar, value: unknown): boolean {
  if (value == null) return true
  if (type === 'bytes') return (value as Uint8Array).byteLength === 0
  return value === DEFAULTS[type]()
}

export interface MessageCodec<T> {
  encode(value: T): Uint8Array
  /** Decodes or throws ProtocolViolationError; unknown fields are skipped. */
  decode(bytes: Uint8Array): T
}

export function defineMessage<T> (schema: Schema): MessageCodec<T> {
  const fields = Object.entries(schema)
  const byNumber = new Map(fields.map(([name, spec]) => [spec.no, [name, spec] as const]))
  const codec: Codec<T, T> = message<T, T>((obj, w, opts = {}) => {
    if (opts.lengthDelimited !== false) w.fork()
    for (const [name, spec] of fields) {
      const value = (obj as Record<string, unknown>)[name]
      const values = spec.repeated === true ? (value as unknown[] | undefined ?? []) : [value]
      for (const v of values) {
        if (spec.repeated !== true && isDefault(spec.type, v)) continue
        w.uint32((spec.no << 3) | WIRE_TYPE[spec.type])
        write(w, spec.type, v)
      }
    }
    if (opts.lengthDelimited !== false) w.ldelim()
  }, (reader, length) => {
    const obj: Record<string, unknown> = {}
    for (const [name, spec] of fields) obj[name] = spec.repeated === true ? [] : DEFAULTS[spec.type]()
    const end = length == null ? reader.len : reader.pos + length
    while (reader.pos < end) {
      const tag = reader.uint32()
      const field = byNumber.get(tag >>> 3)
      if (field == null || (tag & 7) !== WIRE_TYPE[field[1].type]) {
        reader.skipType(tag & 7)
        continue
      }
      const [name, spec] = field
      const value = read(reader, spec.type)
      if (spec.repeated === true) {
        const list = obj[name] as unknown[]
        if (list.length >= (spec.maxItems ?? 1024)) throw new ProtocolViolationError(`field ${name} has more than ${spec.maxItems ?? 1024} items`)
        list.push(value)
      } else {
        obj[name] = value
      }
    }
    return obj as T
  }, function * () {})
  return {
    encode: (value) => encodeMessage(value, codec),
    decode: (bytes) => {
      try {
        return decodeMessage(bytes, codec)
      } catch (err) {
        if (err instanceof ProtocolViolationError) throw err
        throw new ProtocolViolationError(`malformed message: ${(err as Error).message}`)
      }
    }
  }
}
