/**
 * Replication: `add --replicas N` asks the nearest peers over
 * /lepton/pin/1.0.0 to fetch and pin a CID; the same protocol answers such
 * requests from others (with our free disk space in every answer).
 */
import { statfs } from 'node:fs/promises'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { FrameDecoder, ProtocolViolationError, readChunks, sendFrame } from '../wire/index.ts'
import { DEFAULT_PIN_MIN_FREE_BYTES, PIN_DISK_CHECK_MS, PIN_PROTOCOL } from './constants.ts'
import { DiskFullError } from './errors.ts'
import { PinRequestCodec, PinResponseCodec } from './messages.ts'
import { ReplicaRecords, holdersToProbe, pickCandidates, planRepair } from './replicas.ts'
import type { ReplicaRecord } from './replicas.ts'
import type { PinRequestPolicy, ReplicaResult } from './index.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/** The pin request policy (accept, minFreeBytes, freeBytes, diskCheckMs) comes with the rest. */
export interface ReplicationInit extends PinRequestPolicy {
  node: LeptonNode
  repoPath: string
  log: Logger
  /** Fetches and pins locally (the store's pinAdd). */
  pin(cid: CID, timeoutMs: number, signal?: AbortSignal): Promise<void>
  /** Whether `cid` is pinned here already (its pin needs no fetch, and no disk). */
  pinned(cid: CID): Promise<boolean>
  signal: AbortSignal
  /** How long a holder of a replicated CID may be out of reach before another peer copies it. @default 300000 */
  graceMs?: number
  /** How often holders check on each other. @default 10000 */
  checkMs?: number
}

/** Longest a peer may spend fetching for a replica request. */
const MAX_REPLICA_FETCH_S = 600

/** Time allowed to dial a holder we are not connected to before it may count as dead. */
const PROBE_TIMEOUT_MS = 5000

/** Largest pin request (a CID and up to 64 holder ids). */
const MAX_PIN_REQUEST_BYTES = 8192

export class Replication {
  private readonly init: ReplicationInit
  private readonly records: ReplicaRecords
  /** When each holder of a watched CID was last connected. */
  private readonly lastSeen = new Map<string, number>()
  private timer?: ReturnType<typeof setInterval>
  private repairing = false

  constructor (init: ReplicationInit) {
    this.init = init
    this.records = new ReplicaRecords(init.repoPath)
  }

  async start (): Promise<void> {
    await this.records.open()
    this.timer = setInterval(() => { this.check().catch(err => { this.init.log.debug('replica check failed', { err }) }) }, this.init.checkMs ?? 10_000)
    this.timer.unref()
    await this.init.node.handle(PIN_PROTOCOL, (stream, connection) => {
      this.serve(stream, connection.remotePeer).catch(err => {
        this.init.log.debug('pin request failed', { peer: connection.remotePeer.toString(), err })
        stream.abort(err as Error)
      })
    }, { maxInboundStreams: 4, maxOutboundStreams: 8 })
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    await this.init.node.unhandle(PIN_PROTOCOL).catch(() => {})
  }

  /** This peer stops watching `cid` (it was unpinned here). */
  async forget (cid: CID): Promise<void> {
    await this.records.remove(cid.toString())
  }

  /** Replica records held here (for tests and status). */
  watched (): ReplicaRecord[] {
    return [...this.records.records.values()]
  }

  /**
   * Holders watch each other: one out of reach for longer than the grace
   * period is dropped, and the lowest live peer id asks the nearest other
   * peers for new copies, then tells the live holders the new list.
   */
  private async check (): Promise<void> {
    if (this.repairing) return
    this.repairing = true
    try {
      const { node } = this.init
      const self = node.peerId.toString()
      const connected = new Set(node.getPeers().map(p => p.toString()))
      const graceMs = this.init.graceMs ?? 300_000
      await this.probe(holdersToProbe(this.records.records.values(), self, connected, this.lastSeen, Date.now(), graceMs))
      const now = Date.now()
      for (const record of this.records.records.values()) {
        for (const h of record.holders) {
          if (h === self) continue
          if (connected.has(h) || !this.lastSeen.has(h)) this.lastSeen.set(h, now)
        }
        const plan = planRepair(record, self, this.lastSeen, now, graceMs)
        if (plan.missing === 0 || !plan.leader) continue
        await this.repair(record, plan.live, plan.dead, plan.missing)
      }
    } finally {
      this.repairing = false
    }
  }

  /** Dials holders this peer is not connected to; the ones that answer count as seen. */
  private async probe (holders: string[]): Promise<void> {
    const { node } = this.init
    await Promise.all(holders.map(async h => {
      try {
        const signal = AbortSignal.any([this.init.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)])
        await node.dial(peerIdFromString(h), { signal })
        this.lastSeen.set(h, Date.now())
      } catch {}
    }))
  }

  private async repair (record: ReplicaRecord, live: string[], dead: string[], missing: number): Promise<void> {
    const { node } = this.init
    const cid = CID.parse(record.cid)
    const rtt = (p: PeerId): number | undefined => node.services.rtt.rttMs(p)
    const peers = node.getPeers()
    const byId = new Map(peers.map(p => [p.toString(), p]))
    const holders = [...live]
    for (const candidate of pickCandidates(peers.map(p => ({ peerId: p.toString(), rttMs: rtt(p) })), [...live, ...dead])) {
      if (holders.length >= record.wanted) break
      const peer = byId.get(candidate)
      if (peer == null) continue
      try {
        const res = await this.request(peer, cid, 600, record.wanted, [...holders, candidate])
        if (!res.ok) continue
        holders.push(candidate)
        this.lastSeen.set(candidate, Date.now())
        this.init.log.info('replica repaired', { cid: record.cid, newHolder: candidate, lost: dead.join(',') })
      } catch (err) {
        this.init.log.debug('replica repair request failed', { cid: record.cid, peer: candidate, err })
      }
    }
    if (holders.length === live.length) {
      if (missing > 0) this.init.log.warn('replica not repaired: no peer took a copy', { cid: record.cid, live: live.length, wanted: record.wanted })
      return
    }
    const updated = { cid: record.cid, wanted: record.wanted, holders }
    await this.records.save(updated)
    await this.tellHolders(cid, updated)
  }

  /** Sends the agreed holder list to every other holder (they hold the CID: the pin is immediate). */
  private async tellHolders (cid: CID, record: ReplicaRecord): Promise<void> {
    const self = this.init.node.peerId.toString()
    const byId = new Map(this.init.node.getPeers().map(p => [p.toString(), p]))
    await Promise.all(record.holders.filter(h => h !== self).map(async h => {
      const peer = byId.get(h)
      if (peer == null) return
      await this.request(peer, cid, 60, record.wanted, record.holders).catch(() => {})
    }))
  }

  async freeBytes (): Promise<number> {
    if (this.init.freeBytes != null) return await this.init.freeBytes()
    const s = await statfs(this.init.repoPath)
    return s.bavail * s.bsize
  }

  /** Free disk space other peers' pin requests must leave. */
  private get minFreeBytes (): number {
    return this.init.minFreeBytes ?? DEFAULT_PIN_MIN_FREE_BYTES
  }

  /** Why a pin request from `from` is refused before any fetch, or undefined when it may go ahead. */
  private refusal (from: PeerId, freeBytes: number, alreadyPinned: boolean): string | undefined {
    const accept = this.init.accept ?? 'any'
    if (accept !== 'any' && !accept.includes(from.toString())) {
      return `peer ${this.init.node.peerId.toString()} takes no pin requests from ${from.toString()} (not in its replication.accept)`
    }
    if (freeBytes < this.minFreeBytes && !alreadyPinned) return this.diskRefusal(freeBytes)
    return undefined
  }

  private diskRefusal (freeBytes: number): string {
    const mib = (n: number): number => Math.floor(n / (1024 * 1024))
    return `peer ${this.init.node.peerId.toString()} has ${mib(freeBytes)} MiB of disk free, below the ${mib(this.minFreeBytes)} MiB that pin requests must leave (its replication.minFreeMiB)`
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
    // every holder watches the others from now on
    const record = { cid: cid.toString(), wanted: count + 1, holders }
    await this.records.save(record)
    await this.tellHolders(cid, record)
    return { holders, refused }
  }

  private async request (peer: PeerId, cid: CID, timeoutS: number, replicas = 0, holders: string[] = []): Promise<{ ok: boolean, error: string }> {
    const signal = AbortSignal.any([this.init.signal, AbortSignal.timeout(timeoutS * 1000 + 5000)])
    const stream = await this.init.node.dialProtocol(peer, PIN_PROTOCOL, { signal })
    try {
      await sendFrame(stream, PinRequestCodec.encode({ cid: cid.bytes, timeoutS, replicas, holders }), signal)
      const decoder = new FrameDecoder(4096)
      for await (const chunk of readChunks(stream)) {
        const frame = decoder.push(chunk)[0]
        if (frame != null) return PinResponseCodec.decode(frame)
      }
      throw new ProtocolViolationError('peer closed the pin stream without answering')
    } finally {
      await stream.close().catch(() => {})
    }
  }

  private async serve (stream: Stream, from: PeerId): Promise<void> {
    const decoder = new FrameDecoder(MAX_PIN_REQUEST_BYTES)
    for await (const chunk of readChunks(stream)) {
      const frame = decoder.push(chunk)[0]
      if (frame == null) continue
      const req = PinRequestCodec.decode(frame)
      if (req.replicas > 64 || req.holders.some(h => h.length === 0 || h.length > 128)) throw new ProtocolViolationError('pin request with malformed replica fields')
      let cid: CID
      try {
        cid = CID.decode(req.cid)
      } catch {
        throw new ProtocolViolationError('invalid CID in pin request')
      }
      const freeBytes = await this.freeBytes()
      const alreadyPinned = await this.init.pinned(cid)
      const refused = this.refusal(from, freeBytes, alreadyPinned)
      if (refused != null) {
        this.init.log.info('pin request refused', { cid: cid.toString(), from: from.toString(), why: refused })
        await sendFrame(stream, PinResponseCodec.encode({ ok: false, error: refused, freeBytes }))
        break
      }
      let answer = { ok: true, error: '', freeBytes }
      let diskWatch: ReturnType<typeof setInterval> | undefined
      try {
        this.init.log.info('replica requested', { cid: cid.toString(), from: from.toString() })
        // an asker that hangs up (or closes its end) no longer wants the copy: stop fetching
        const gone = new AbortController()
        const hangUp = (): void => { gone.abort(new Error('the asker hung up')) }
        stream.addEventListener('remoteCloseWrite', hangUp)
        stream.addEventListener('close', hangUp)
        // the asker keeps its end open until answered: a FIN that came with the request means it left already
        if (stream.remoteWriteStatus !== 'writable' || stream.status !== 'open') hangUp()
        // the fetch stops when the disk's free space reaches the reserve, whatever the content's size claims
        const diskLow = new AbortController()
        const watchDisk = (): void => {
          this.freeBytes().then(free => {
            if (free < this.minFreeBytes && !diskLow.signal.aborted) diskLow.abort(new DiskFullError(this.diskRefusal(free)))
          }).catch(() => {})
        }
        if (!alreadyPinned) diskWatch = setInterval(watchDisk, this.init.diskCheckMs ?? PIN_DISK_CHECK_MS)
        try {
          await this.init.pin(cid, Math.min(req.timeoutS, MAX_REPLICA_FETCH_S) * 1000, AbortSignal.any([gone.signal, diskLow.signal, this.init.signal]))
        } catch (err) {
          // the disk reason names what happened better than the fetch's abort error
          throw diskLow.signal.aborted ? diskLow.signal.reason as Error : err
        } finally {
          stream.removeEventListener('remoteCloseWrite', hangUp)
          stream.removeEventListener('close', hangUp)
        }
        const self = this.init.node.peerId.toString()
        if (req.replicas > 0 && req.holders.includes(self)) {
          // one of N holders now: watch the others
          await this.records.save({ cid: cid.toString(), wanted: req.replicas, holders: req.holders })
        }
      } catch (err) {
        if (err instanceof DiskFullError) this.init.log.warn('pin request stopped: the disk reached its reserve', { cid: cid.toString(), from: from.toString() })
        answer = { ok: false, error: (err as Error).message, freeBytes }
      } finally {
        clearInterval(diskWatch)
      }
      await sendFrame(stream, PinResponseCodec.encode(answer))
      break
    }
    await stream.close().catch(() => {})
  }
}
