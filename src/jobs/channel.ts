/**
 * One task stream (/lepton/tasks/1.0.0) from either end: framed TaskMessages
 * in, an ordered send queue out. A frame that does not decode closes the
 * stream (the peer broke the protocol); nothing throws out of a handler.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, ProtocolViolationError, encodeVarint, waitForDrain } from '../wire/index.ts'
import { MAX_TASK_FRAME_BYTES, TaskMessageCodec } from '../market/index.ts'
import type { TaskMessage } from '../market/index.ts'
import type { Stream, StreamCloseEvent } from '@libp2p/interface'

/** Messages kept before the stream's owner takes it up (a bid, maybe a heartbeat, is all an honest peer sends). */
const MAX_EARLY_MESSAGES = 64

export interface ChannelHandlers {
  onMessage(msg: TaskMessage): void
  onClose(err?: Error): void
}

export class TaskChannel {
  private readonly stream: Stream
  private readonly decoder = new FrameDecoder(MAX_TASK_FRAME_BYTES)
  private sending: Promise<void> = Promise.resolve()
  private readonly outbox: Uint8Array[] = []
  private readonly lingerMs: number
  /** Ends the current linger early (flush). */
  private wake?: () => void
  /** flush() was asked for: the next batch leaves without lingering. */
  private urgent = false
  private handlers?: ChannelHandlers
  /** Messages that arrived before handlers were attached. */
  private early: TaskMessage[] = []
  closed = false
  private finished = false
  private closeError?: Error

  /**
   * `lingerMs`: how long a message may wait for others to share its write
   * (0: until the end of the current tick).
   */
  constructor (stream: Stream, lingerMs = 0) {
    this.stream = stream
    this.lingerMs = lingerMs
    stream.addEventListener('message', (evt) => {
      // after we closed, a peer that keeps sending must not make us decode and keep its frames
      if (this.closed) return
      try {
        this.decoder.append(evt.data)
        for (let frame = this.decoder.nextFrame(); frame != null && !this.closed; frame = this.decoder.nextFrame()) this.deliver(TaskMessageCodec.decode(frame))
      } catch (err) {
        this.close(err as Error)
      }
    })
    // the peer closed its side: the conversation is over, so close ours (a half-closed task
    // stream otherwise stayed open for good on both ends: 200 of them on a soak's submitter)
    stream.addEventListener('remoteCloseWrite', () => { this.close() })
    stream.addEventListener('close', (evt) => {
      this.finish((evt as StreamCloseEvent).error)
    })
  }

  attach (handlers: ChannelHandlers): void {
    this.handlers = handlers
    const early = this.early
    this.early = []
    for (const msg of early) this.deliverSafely(msg)
    if (this.finished) handlers.onClose(this.closeError)
  }

  /** The first message, for the protocol handler to decide who this stream is for. */
  async first (timeoutMs: number): Promise<TaskMessage> {
    if (this.early.length > 0) return this.early[0] as TaskMessage
    return await new Promise<TaskMessage>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no bid within the time allowed')) }, timeoutMs)
      this.handlers = {
        onMessage: (msg) => { clearTimeout(timer); this.handlers = undefined; this.early.unshift(msg); resolve(msg) },
        onClose: (err) => { clearTimeout(timer); this.handlers = undefined; reject(err ?? new Error('stream closed before a bid')) }
      }
    })
  }

  private deliver (msg: TaskMessage): void {
    if (this.handlers != null) {
      this.deliverSafely(msg)
      return
    }
    // an empty frame is a whole message: a burst of them must not pile up unread
    if (this.early.length >= MAX_EARLY_MESSAGES) throw new ProtocolViolationError(`more than ${MAX_EARLY_MESSAGES} task messages before the stream was taken up`)
    this.early.push(msg)
  }

  private deliverSafely (msg: TaskMessage): void {
    try {
      this.handlers?.onMessage(msg)
    } catch (err) {
      this.close(err as Error)
    }
  }

  /**
   * Queues a message; errors close the channel (the close handler tells the
   * owner). Messages queued in the same tick leave in one write: each write
   * costs a yamux frame, a noise seal and a syscall.
   */
  send (msg: TaskMessage): void {
    if (this.closed) return
    this.outbox.push(TaskMessageCodec.encode(msg))
    if (this.outbox.length > 1) return
    this.sending = this.sending.then(async () => {
      await new Promise<void>(resolve => {
        if (this.lingerMs <= 0 || this.urgent) {
          setImmediate(resolve)
          return
        }
        const timer = setTimeout(() => { this.wake = undefined; resolve() }, this.lingerMs)
        this.wake = () => { clearTimeout(timer); this.wake = undefined; setImmediate(resolve) }
      })
      this.urgent = false
      const batch = new Uint8ArrayList()
      for (const frame of this.outbox.splice(0)) batch.append(encodeVarint(frame.byteLength), frame)
      if (!this.stream.send(batch)) await waitForDrain(this.stream)
    }).catch((err: Error) => { this.close(err) })
  }

  /** Sends what lingers at the end of this tick instead of when the linger expires. */
  flush (): void {
    if (this.outbox.length === 0) return
    this.urgent = true
    this.wake?.()
  }

  close (err?: Error): void {
    if (this.closed) return
    this.closed = true
    if (err != null) this.stream.abort(err)
    else {
      // let queued messages go out first
      this.sending.then(async () => { await this.stream.close() }).catch(() => { this.stream.abort(new Error('close failed')) })
    }
    this.finish(err)
  }

  /** Tells the owner once, whichever end closed first. */
  private finish (err?: Error): void {
    this.closed = true
    if (this.finished) return
    this.finished = true
    this.closeError = err
    this.handlers?.onClose(err)
  }
}
