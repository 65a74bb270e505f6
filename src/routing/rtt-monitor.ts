import { performance } from 'node:perf_hooks'
import { Uint8ArrayList } from 'uint8arraylist'
import { readChunks, waitForDrain } from '../wire/index.ts'
import { PROBE_BYTES, RTT_INTERVAL_MS, RTT_MAX_ECHO_BYTES_PER_S, RTT_PROTOCOL, RTT_TIMEOUT_MS } from './constants.ts'
import { NotConnectedError, RttTimeoutError } from './errors.ts'
import { RttEstimator } from './rtt-estimator.ts'
import type { RttMonitor, RttMonitorComponents, RttMonitorInit } from './index.ts'
import type { RttStats } from './rtt-estimator.ts'
import type { AbortOptions, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'

interface Pending {
  sentAt: number
  resolve?(rttMs: number): void
}

/** One long-lived probe stream to one peer. */
interface Prober {
  peer: PeerId
  stream?: Stream
  opening?: Promise<void>
  nextSeq: number
  pending: Map<number, Pending>
  received: Uint8ArrayList
  /** The first echo on a new stream also pays for protocol negotiation: not a sample. */
  warm: boolean
}

/**
 * Probes every connected peer once per interval over one long-lived stream and
 * times the echo with the monotonic high-resolution clock (libp2p's ping
 * reports whole milliseconds and opens a stream per ping: useless on a LAN).
 */
export class DefaultRttMonitor implements RttMonitor, Startable {
  private readonly components: RttMonitorComponents
  private readonly intervalMs: number
  private readonly timeoutMs: number
  private readonly echoDelayMs?: (peer: PeerId) => number
  private readonly log: Logger
  private readonly probers = new Map<string, Prober>()
  private readonly estimators = new Map<string, RttEstimator>()
  private timer?: ReturnType<typeof setInterval>
  private shutdown = new AbortController()

  constructor (components: RttMonitorComponents, init: RttMonitorInit) {
    this.components = components
    this.intervalMs = init.intervalMs ?? RTT_INTERVAL_MS
    this.timeoutMs = init.timeoutMs ?? RTT_TIMEOUT_MS
    this.echoDelayMs = init.echoDelayMs
    this.log = components.logger.forComponent('lepton:routing:rtt')
    this.onConnect = this.onConnect.bind(this)
    this.onDisconnect = this.onDisconnect.bind(this)
  }

  readonly [Symbol.toStringTag] = 'lepton:rtt-monitor'

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    await this.components.registrar.handle(RTT_PROTOCOL, (stream, connection) => {
      this.echo(stream, connection).catch(err => { this.log('echo stream ended: %e', err) })
    }, { maxInboundStreams: 4, maxOutboundStreams: 4, runOnLimitedConnection: true })
    this.components.events.addEventListener('peer:connect', this.onConnect)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    this.timer = setInterval(() => { this.tick() }, this.intervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.shutdown.abort()
    this.components.events.removeEventListener('peer:connect', this.onConnect)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const prober of this.probers.values()) this.dropProber(prober)
    await this.components.registrar.unhandle(RTT_PROTOCOL)
  }

  rttMs (peer: PeerId): number | undefined {
    return this.estimators.get(peer.toString())?.stats()?.rttMs
  }

  stats (peer: PeerId): RttStats | undefined {
    return this.estimators.get(peer.toString())?.stats()
  }

  async measure (peer: PeerId, options: AbortOptions = {}): Promise<number> {
    if (this.components.connectionManager.getConnections(peer).length === 0) {
      throw new NotConnectedError(`not connected to ${peer.toString()}`)
    }
    const prober = this.proberFor(peer)
    await this.ensureStream(prober)
    const signal = AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.shutdown.signal, ...(options.signal != null ? [options.signal] : [])])
    return await new Promise<number>((resolve, reject) => {
      const seq = this.sendProbe(prober, resolve)
      if (seq === undefined) {
        reject(new NotConnectedError(`no probe stream to ${peer.toString()}`))
        return
      }
      signal.addEventListener('abort', () => {
        prober.pending.delete(seq)
        reject(new RttTimeoutError(`no echo from ${peer.toString()} within ${this.timeoutMs} ms`))
      }, { once: true })
    })
  }

  private onConnect (evt: CustomEvent<PeerId>): void {
    // first sample at once, so a fresh connection has an RTT within a round trip
    const prober = this.proberFor(evt.detail)
    this.ensureStream(prober).then(() => this.sendProbe(prober)).catch(() => {})
  }

  private onDisconnect (evt: CustomEvent<PeerId>): void {
    const prober = this.probers.get(evt.detail.toString())
    if (prober != null) this.dropProber(prober)
  }

  private proberFor (peer: PeerId): Prober {
    const key = peer.toString()
    let prober = this.probers.get(key)
    if (prober == null) {
      prober = { peer, nextSeq: 0, pending: new Map(), received: new Uint8ArrayList(), warm: false }
      this.probers.set(key, prober)
    }
    if (!this.estimators.has(key)) this.estimators.set(key, new RttEstimator())
    return prober
  }

  private dropProber (prober: Prober): void {
    this.probers.delete(prober.peer.toString())
    prober.stream?.abort(new Error('RTT monitor stopped probing this peer'))
    prober.stream = undefined
  }

  private tick (): void {
    const now = performance.now()
    const peers = new Map<string, PeerId>()
    for (const conn of this.components.connectionManager.getConnections()) peers.set(conn.remotePeer.toString(), conn.remotePeer)
    for (const peer of peers.values()) {
      const prober = this.proberFor(peer)
      const estimator = this.estimators.get(peer.toString())
      for (const [seq, p] of prober.pending) {
        if (now - p.sentAt > this.timeoutMs) {
          prober.pending.delete(seq)
          estimator?.addLoss()
        }
      }
      if (prober.stream != null) this.sendProbe(prober)
      else this.ensureStream(prober).then(() => this.sendProbe(prober)).catch(err => { this.log('cannot open probe stream to %p: %e', peer, err) })
    }
  }

  private async ensureStream (prober: Prober): Promise<void> {
    if (prober.stream != null) return
    prober.opening ??= (async () => {
      try {
        const stream = await this.components.connectionManager.openStream(prober.peer, RTT_PROTOCOL, {
          signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.shutdown.signal]),
          runOnLimitedConnection: true
        })
        prober.stream = stream
        prober.received = new Uint8ArrayList()
        prober.warm = false
        stream.addEventListener('message', (evt) => { this.onEcho(prober, evt.data) })
        stream.addEventListener('close', () => {
          if (prober.stream === stream) prober.stream = undefined
        })
      } finally {
        prober.opening = undefined
      }
    })()
    await prober.opening
  }

  private sendProbe (prober: Prober, resolve?: (rttMs: number) => void): number | undefined {
    const stream = prober.stream
    if (stream == null || stream.status !== 'open') return undefined
    const seq = prober.nextSeq
    prober.nextSeq = (prober.nextSeq + 1) >>> 0
    const frame = new Uint8Array(PROBE_BYTES)
    new DataView(frame.buffer).setUint32(0, seq)
    prober.pending.set(seq, { sentAt: performance.now(), resolve })
    try {
      stream.send(frame)
    } catch {
      // closed under us (the peer is leaving): forget the stream, a new one is opened next tick
      prober.pending.delete(seq)
      if (prober.stream === stream) prober.stream = undefined
      return undefined
    }
    return seq
  }

  private onEcho (prober: Prober, data: Uint8Array | Uint8ArrayList): void {
    const now = performance.now()
    prober.received.append(data)
    while (prober.received.byteLength >= PROBE_BYTES) {
      const seq = prober.received.getUint32(0)
      prober.received.consume(PROBE_BYTES)
      const pending = prober.pending.get(seq)
      if (pending == null) continue // late echo of a probe already counted lost
      prober.pending.delete(seq)
      const rttMs = now - pending.sentAt
      if (!prober.warm) {
        prober.warm = true
        if (pending.resolve == null) {
          this.sendProbe(prober) // the first real sample, without waiting for the next tick
          continue
        }
      }
      this.estimators.get(prober.peer.toString())?.addSample(rttMs)
      pending.resolve?.(rttMs)
    }
  }

  /** Echoes probes back; a peer that floods the echo stream gets it aborted. */
  private async echo (stream: Stream, connection: Connection): Promise<void> {
    let windowStart = performance.now()
    let bytes = 0
    for await (const chunk of readChunks(stream)) {
      const now = performance.now()
      if (now - windowStart > 1000) {
        windowStart = now
        bytes = 0
      }
      bytes += chunk.byteLength
      if (bytes > RTT_MAX_ECHO_BYTES_PER_S) {
        this.log('peer %p flooded the echo stream; closing it', connection.remotePeer)
        stream.abort(new Error('echo rate exceeded'))
        return
      }
      const delayMs = this.echoDelayMs?.(connection.remotePeer) ?? 0
      if (delayMs > 0) {
        // held off the loop so later probes are not queued behind this one
        setTimeout(() => {
          try {
            stream.send(chunk)
          } catch {} // the stream closed meanwhile: the probe is simply lost
        }, delayMs)
        continue
      }
      if (!stream.send(chunk)) await waitForDrain(stream)
    }
    await stream.close().catch(() => {})
  }
}
