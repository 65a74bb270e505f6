/**
 * Replication: `add --replicas N` asks the nearest peers over
 * /lepton/pin/1.0.0 to fetch and pin a CID; the same protocol answers such
 * requests from others (with our free disk space in every answer).
 */
import { statfs } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import { FrameDecoder, ProtocolViolationError, sendFrame } from '../wire/index.ts'
import { PIN_PROTOCOL } from './constants.ts'
import { PinRequestCodec, PinResponseCodec } from './messages.ts'
import type { ReplicaResult } from './index.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { PeerId, Stream } from '@libp2p/interface'

export interface ReplicationInit {
  node: LeptonNode
  repoPath: string
  log: Logger
  /** Fetches and pins locally (the store's pinAdd). */
  pin(cid: CID, timeoutMs: number): Promise<void>
  signal: AbortSignal
}

/** Longest a peer may spend fetching for a replica request. */
const MAX_REPLICA_FETCH_S = 3600

export class Replication {
  private readonly init: ReplicationInit

  constructor (init: ReplicationInit) {
    this.init = init
  }

  async start (): Promise<void> {
    await this.init.node.handle(PIN_PROTOCOL, (stream, connection) => {
      this.serve(stream, connection.remotePeer).catch(err => {
        this.init.log.debug('pin request failed', { peer: connection.remotePeer.toString(), err })
        stream.abort(err as Error)
      })
    })
  }

  async stop (): Promise<void> {
    await this.init.node.unhandle(PIN_PROTOCOL).catch(() => {})
  }

  async freeBytes (): Promise<number> {
    const s = await statfs(this.init.repoPath)
    return s.bavail * s.bsize
  }

  /** Asks up to `count` other peers, nearest first, to fetch and pin `cid`. */
  async replicate (cid: CID, count: number, timeoutMs = 10 * 60_000): Promise<ReplicaResult> {
    const { node } = this.init
    const rtt = (p: PeerId): number => node.services.rtt.rttMs(p) ?? Infinity
    const candidates = [...node.getPeers()].sort((a, b) => rtt(a) - rtt(b))
    const holders: string[] = [node.peerId.toString()]
    const refused: Array<{ peerId: string, error: string }> = []
    const timeoutS = Math.ceil(timeoutMs / 1000)
    for (const peer of candidates) {
      if (holders.length > count) break
      try {
        const res = await this.request(peer, cid, timeoutS)
        if (res.ok) holders.push(peer.toString())
        else refused.push({ peerId: peer.toString(), error: res.error })
      } catch (err) {
        refused.push({ peerId: peer.toString(), error: (err as Error).message })
      }
    }
    if (holders.length <= count) this.init.log.warn('fewer replicas than asked', { cid: cid.toString(), asked: count + 1, got: holders.length })
    return { holders, refused }
  }

  private async request (peer: PeerId, cid: CID, timeoutS: number): Promise<{ ok: boolean, error: string }> {
    const signal = AbortSignal.any([this.init.signal, AbortSignal.timeout(timeoutS * 1000 + 5000)])
    const stream = await this.init.node.dialProtocol(peer, PIN_PROTOCOL, { signal })
    try {
      await sendFrame(stream, PinRequestCodec.encode({ cid: cid.bytes, timeoutS }), signal)
      const decoder = new FrameDecoder(4096)
      for await (const chunk of stream) {
        const frame = decoder.push(chunk)[0]
        if (frame != null) return PinResponseCodec.decode(frame)
      }
      throw new ProtocolViolationError('peer closed the pin stream without answering')
    } finally {
      await stream.close().catch(() => {})
    }
  }

  private async serve (stream: Stream, from: PeerId): Promise<void> {
    const decoder = new FrameDecoder(1024)
    for await (const chunk of stream) {
      const frame = decoder.push(chunk)[0]
      if (frame == null) continue
      const req = PinRequestCodec.decode(frame)
      let cid: CID
      try {
        cid = CID.decode(req.cid)
      } catch {
        throw new ProtocolViolationError('invalid CID in pin request')
      }
      const freeBytes = await this.freeBytes()
      let answer = { ok: true, error: '', freeBytes }
      try {
        this.init.log.info('replica requested', { cid: cid.toString(), from: from.toString() })
        await this.init.pin(cid, Math.min(req.timeoutS, MAX_REPLICA_FETCH_S) * 1000)
      } catch (err) {
        answer = { ok: false, error: (err as Error).message, freeBytes }
      }
      await sendFrame(stream, PinResponseCodec.encode(answer))
      break
    }
    await stream.close().catch(() => {})
  }
}
