/**
 * Length-prefixed frames (unsigned varint, then the bytes) on a libp2p stream.
 * The length is checked against a limit before a single byte of the body is
 * buffered, so a peer cannot make us allocate what it claims.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameTooLargeError, ProtocolViolationError } from './errors.ts'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

export function encodeVarint (value: number): Uint8Array {
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** Splits incoming bytes into frames; throws on an oversized or malformed length. */
export class FrameDecoder {
  private readonly buffer = new Uint8ArrayList()
  private readonly maxFrameBytes: number

  constructor (maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes
  }

  /** Appends bytes and returns every complete frame they finish. */
  push (data: Uint8Array | Uint8ArrayList): Uint8Array[] {
    this.append(data)
    const frames: Uint8Array[] = []
    for (let frame = this.nextFrame(); frame != null; frame = this.nextFrame()) frames.push(frame)
    return frames
  }

  append (data: Uint8Array | Uint8ArrayList): void {
    this.buffer.append(data)
  }

  /** The next complete frame, or undefined until more bytes arrive. */
  nextFrame (): Uint8Array | undefined {
    let length = 0
    let shift = 1
    let pos = 0
    let complete = false
    while (pos < this.buffer.byteLength) {
      const byte = this.buffer.get(pos++)
      length += (byte & 0x7f) * shift
      shift *= 0x80
      if ((byte & 0x80) === 0) {
        complete = true
        break
      }
      if (pos >= 8) throw new ProtocolViolationError('malformed frame length')
    }
    if (!complete) return undefined
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`)
    if (this.buffer.byteLength < pos + length) return undefined
    const frame = this.buffer.subarray(pos, pos + length)
    this.buffer.consume(pos + length)
    return frame
  }

  /** The next `length` raw bytes as a list of the chunks they arrived in (no copy), or undefined until they are all here. */
  nextBytes (length: number): Uint8ArrayList | undefined {
    if (this.buffer.byteLength < length) return undefined
    const bytes = this.buffer.sublist(0, length)
    this.buffer.consume(length)
    return bytes
  }

  get bufferedBytes (): number {
    return this.buffer.byteLength
  }
}

/**
 * Sends one frame (and optionally raw bytes right after it, in the same write),
 * waiting for the stream's `drain` event when its buffer is
 * full (never `onDrain()`: it resolves at once after the first drain).
 */
export async function sendFrame (stream: Stream, frame: Uint8Array, signal?: AbortSignal, rawAfter?: Uint8Array | Uint8ArrayList): Promise<void> {
  const list = new Uint8ArrayList(encodeVarint(frame.byteLength), frame)
  if (rawAfter != null) list.append(rawAfter)
  if (stream.send(list)) return
  await waitForDrain(stream, signal)
}

export async function waitForDrain (stream: Stream, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => { cleanup(); resolve() }
    const onClose = (): void => { cleanup(); reject(new ProtocolViolationError('stream closed while sending')) }
    const onAbort = (): void => { cleanup(); reject(signal?.reason) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

/**
 * The chunks a stream receives until the remote closes its writable end (or
 * the stream closes). Use it instead of `for await (const chunk of stream)`:
 * libp2p's own iterator (@libp2p/utils 7.4.1) ends only on a
 * 'remoteCloseWrite' event, so when a peer sends its data and closes before
 * the handler starts reading (the event has already fired) it never ends, and
 * the handler holds the stream for as long as the connection lives.
 */
export async function * readChunks (stream: Stream): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  if (stream.readStatus !== 'readable' && stream.readStatus !== 'paused') return
  const queue: Array<Uint8Array | Uint8ArrayList> = []
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = (): void => { wake?.(); wake = undefined }
  const end = (err?: Error): void => { ended = true; failure ??= err; notify() }
  // remote already done and nothing left in libp2p's buffer: no event will come
  const endIfDrained = (): void => { if (stream.remoteWriteStatus === 'closed' && stream.readBufferLength === 0) end() }
  const onMessage = (evt: StreamMessageEvent): void => { queue.push(evt.data); notify(); endIfDrained() }
  const onClose = (evt: Event): void => { end((evt as StreamCloseEvent).error) }
  const onRemoteCloseWrite = (): void => { end() }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', onClose)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  endIfDrained()
  try {
    for (;;) {
      const chunk = queue.shift()
      if (chunk != null) {
        yield chunk
        continue
      }
      if (ended) break
      await new Promise<void>(resolve => { wake = resolve })
    }
    if (failure != null) throw failure
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('close', onClose)
    stream.removeEventListener('remoteCloseWrite', onRemoteCloseWrite)
  }
}
