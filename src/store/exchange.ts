/**
 * /lepton/blocks/1.0.0: one long-lived stream per peer carrying numbered
 * requests (WANT, HAVE_QUERY) and answers (BLOCK, DONT_HAVE, HAVE). A BLOCK
 * answer is a small header frame followed by the payload's raw bytes, so a
 * block crosses the stream without being copied into or out of a protobuf
 * message; its size is checked against the limit before any of it is kept. The asking
 * side bounds its outstanding wants (see fetcher.ts), which is the flow control:
 * yamux alone does not slow a writer for a slow reader.
 */
import { CID } from 'multiformats/cid'
import { raceSignal } from '../signals.ts'
import { FrameDecoder, ProtocolViolationError, readChunks, sendFrame } from '../wire/index.ts'
import { BLOCKS_PROTOCOL, MAX_BLOCK_BYTES, MAX_HEADER_BYTES, REQUEST_SWEEP_MS, SERVE_CONCURRENCY } from './constants.ts'
import { BlockNotFoundError, RequestTimeoutError } from './errors.ts'
import { BlockMessageCodec, MSG } from './messages.ts'
import { transferYoungGc } from './young-gc.ts'
import type { StoredBlock } from './blockstore.ts'
import type { BlockMessage } from './messages.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { Connection, PeerId, Stream, StreamCloseEvent } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** What the exchange serves from: the local blockstore (or, in tests, a liar). */
export interface BlockSource {
  getStored(cid: CID): Promise<StoredBlock>
  has(cid: CID): Promise<boolean>
}

export class SessionClosedError extends Error {
  override name = 'SessionClosedError'
}

/** An answer: the header and, for BLOCK, the payload that followed it. */
interface Answer {
  msg: BlockMessage
  payload?: Uint8ArrayList
}

interface Pending {
  resolve(answer: Answer): void
  reject(err: Error): void
  /** performance.now() past which the request fails with a RequestTimeoutError. */
  deadline: number
}

export interface RequestOptions {
  /** Gives up when it aborts. */
  signal?: AbortSignal
  /**
   * Gives up after this long without an answer. Cheaper than a timeout signal
   * per request: one timer per session sweeps the deadlines.
   */
  timeoutMs?: number
}

/** Our side of one peer's block stream. */
export class BlockSession {
  readonly peer: PeerId
  private readonly stream: Stream
  private readonly pending = new Map<number, Pending>()
  private readonly decoder = new FrameDecoder(MAX_HEADER_BYTES)
  /** A BLOCK header whose payload has not fully arrived. */
  private awaitingPayload?: BlockMessage
  private nextId = 1
  /** Fails requests past their deadline; runs only while some are pending. */
  private sweepTimer?: ReturnType<typeof setTimeout>
  closed = false

  constructor (peer: PeerId, stream: Stream, onClose: () => void) {
    this.peer = peer
    this.stream = stream
    stream.addEventListener('message', (evt) => {
      try {
        this.decoder.append(evt.data)
        this.drain()
      } catch (err) {
        this.close(err as Error)
      }
    })
    stream.addEventListener('close', (evt) => {
      const why = (evt as StreamCloseEvent).error
      this.close(new SessionClosedError(`block stream to ${peer.toString()} closed${why != null ? `: ${why.message}` : ''}`))
      onClose()
    })
  }

  get outstanding (): number {
    return this.pending.size
  }

  /** Takes every complete answer out of the buffer. */
  private drain (): void {
    for (;;) {
      if (this.awaitingPayload != null) {
        const payload = this.decoder.nextBytes(this.awaitingPayload.size)
        if (payload == null) return
        const msg = this.awaitingPayload
        this.awaitingPayload = undefined
        this.onAnswer({ msg, payload })
        continue
      }
      const frame = this.decoder.nextFrame()
      if (frame == null) return
      const msg = BlockMessageCodec.decode(frame)
      if (msg.type === MSG.BLOCK) {
        if (msg.size > MAX_BLOCK_BYTES) throw new ProtocolViolationError(`peer announced a block of ${msg.size} bytes (limit ${MAX_BLOCK_BYTES})`)
        this.awaitingPayload = msg
      } else {
        this.onAnswer({ msg })
      }
    }
  }

  private onAnswer (answer: Answer): void {
    const p = this.pending.get(answer.msg.id)
    if (p == null) return // answer to a want we gave up on
    this.pending.delete(answer.msg.id)
    p.resolve(answer)
  }

  private async request (type: number, cid: CID, options: RequestOptions = {}): Promise<Answer> {
    const { signal, timeoutMs } = options
    if (this.closed) throw new SessionClosedError(`block stream to ${this.peer.toString()} is closed`)
    // an abort that came already would never fire the listener below
    signal?.throwIfAborted()
    const id = this.nextId
    this.nextId = (this.nextId % 0xffffffff) + 1
    const deadline = timeoutMs == null ? Infinity : performance.now() + timeoutMs
    // the abort listener must go once answered: it would keep the answer (a whole block) alive until the signal's timer fires
    let onAbort: (() => void) | undefined
    const answer = new Promise<Answer>((resolve, reject) => {
      onAbort = () => {
        if (this.pending.delete(id)) reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
      }
      this.pending.set(id, {
        resolve: (a) => { signal?.removeEventListener('abort', onAbort as () => void); resolve(a) },
        reject: (err) => { signal?.removeEventListener('abort', onAbort as () => void); reject(err) },
        deadline
      })
      signal?.addEventListener('abort', onAbort, { once: true })
    })
    if (timeoutMs != null) this.scheduleSweep()
    await sendFrame(this.stream, BlockMessageCodec.encode({ id, type, cid: cid.bytes, codec: 0, size: 0 }), signal)
    return await answer
  }

  private scheduleSweep (): void {
    if (this.sweepTimer != null || this.closed) return
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined
      const now = performance.now()
      for (const [id, p] of this.pending) {
        if (p.deadline > now) continue
        this.pending.delete(id)
        p.reject(new RequestTimeoutError(`${this.peer.toString()} did not answer a block request in time`))
      }
      if (this.pending.size > 0) this.scheduleSweep()
    }, REQUEST_SWEEP_MS)
  }

  /** The block in stored form, or undefined if the peer does not hold it. Not verified here. */
  async want (cid: CID, options?: RequestOptions): Promise<StoredBlock | undefined> {
    const { msg, payload } = await this.request(MSG.WANT, cid, options)
    if (msg.type === MSG.BLOCK) return { codec: msg.codec, payload: payload ?? new Uint8Array(0) }
    if (msg.type === MSG.DONT_HAVE) return undefined
    throw new ProtocolViolationError(`unexpected answer type ${msg.type} to a want`)
  }

  async have (cid: CID, options?: RequestOptions): Promise<boolean> {
    return (await this.request(MSG.HAVE_QUERY, cid, options)).msg.type === MSG.HAVE
  }

  close (err?: Error): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.sweepTimer)
    for (const p of this.pending.values()) p.reject(err ?? new SessionClosedError('session closed'))
    this.pending.clear()
    if (err != null) this.stream.abort(err)
    else this.stream.close().catch(() => {})
  }
}

export interface BlockExchangeInit {
  node: LeptonNode
  source: BlockSource
  log: Logger
  openStream?(peer: PeerId, protocol: string, signal?: AbortSignal): Promise<Stream>
}

export class BlockExchange {
  private readonly node: LeptonNode
  private readonly source: BlockSource
  private readonly log: Logger
  private readonly openStream: (peer: PeerId, protocol: string, signal?: AbortSignal) => Promise<Stream>
  private readonly sessions = new Map<string, Promise<BlockSession>>()
  private stopped = false

  constructor (init: BlockExchangeInit) {
    this.node = init.node
    this.source = init.source
    this.log = init.log
    this.openStream = init.openStream ?? (async (peer, protocol, signal) => await this.node.dialProtocol(peer, protocol, { signal }))
  }

  async start (): Promise<void> {
    await this.node.handle(BLOCKS_PROTOCOL, (stream, connection) => {
      this.serve(stream, connection).catch(err => {
        this.log.debug('block stream ended', { peer: connection.remotePeer.toString(), err })
        stream.abort(err as Error)
      })
    }, { maxInboundStreams: 8, maxOutboundStreams: 8 })
  }

  async stop (): Promise<void> {
    this.stopped = true
    await this.node.unhandle(BLOCKS_PROTOCOL)
    for (const s of this.sessions.values()) s.then(session => { session.close() }).catch(() => {})
    this.sessions.clear()
  }

  /** The session to `peer`, opening the stream if there is none. */
  async session (peer: PeerId, signal?: AbortSignal): Promise<BlockSession> {
    const key = peer.toString()
    let session = this.sessions.get(key)
    if (session == null) {
      session = (async () => {
        const stream = await this.openStream(peer, BLOCKS_PROTOCOL, signal)
        return new BlockSession(peer, stream, () => {
          if (this.sessions.get(key) === session) this.sessions.delete(key)
        })
      })()
      this.sessions.set(key, session)
      session.catch(() => { if (this.sessions.get(key) === session) this.sessions.delete(key) })
    }
    // a stream being opened for an earlier caller (under its own, maybe longer, signal): wait for it only as long as ours allows
    const s = signal == null ? await session : await raceSignal(session, signal)
    if (s.closed) {
      this.sessions.delete(key)
      return await this.session(peer, signal)
    }
    return s
  }

  /**
   * Answers a peer's requests, a few at a time (disk reads overlap), in any
   * order: answers carry the request id. Any malformed frame ends the stream.
   */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const decoder = new FrameDecoder(1024) // requests are tiny
    const inflight = new Set<Promise<void>>()
    let failure: Error | undefined
    for await (const chunk of readChunks(stream)) {
      if (this.stopped || failure != null) break
      for (const frame of decoder.push(chunk)) {
        const req = BlockMessageCodec.decode(frame)
        let cid: CID
        try {
          cid = CID.decode(req.cid)
        } catch {
          throw new ProtocolViolationError(`peer ${connection.remotePeer.toString()} sent an invalid CID`)
        }
        while (inflight.size >= SERVE_CONCURRENCY) await Promise.race(inflight)
        const work: Promise<void> = this.answer(req, cid)
          .then(async ({ msg, payload }) => {
            await sendFrame(stream, BlockMessageCodec.encode(msg), undefined, payload)
            transferYoungGc.moved(msg.size)
          })
          .catch((err: Error) => { failure ??= err })
          .finally(() => { inflight.delete(work) })
        inflight.add(work)
      }
    }
    await Promise.all(inflight)
    if (failure != null) throw failure
    await stream.close().catch(() => {})
  }

  private async answer (req: BlockMessage, cid: CID): Promise<{ msg: BlockMessage, payload?: Uint8Array | Uint8ArrayList }> {
    const base = { id: req.id, cid: new Uint8Array(0), codec: 0, size: 0 }
    if (req.type === MSG.HAVE_QUERY) return { msg: { ...base, type: await this.source.has(cid) ? MSG.HAVE : MSG.DONT_HAVE } }
    if (req.type !== MSG.WANT) throw new ProtocolViolationError(`unknown request type ${req.type}`)
    try {
      const stored = await this.source.getStored(cid)
      return { msg: { ...base, type: MSG.BLOCK, codec: stored.codec, size: stored.payload.byteLength }, payload: stored.payload }
    } catch (err) {
      if (!(err instanceof BlockNotFoundError) && (err as Error).name !== 'CorruptBlockError') throw err
      return { msg: { ...base, type: MSG.DONT_HAVE } }
    }
  }
}
