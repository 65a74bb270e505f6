/**
 * Forwarding: one entry point, `openStream(peer, protocol, { via })`, that
 * opens a stream either directly or along a one-hop detour A -> C -> B chosen
 * by path selection. The detour is libp2p's own circuit relay v2: A dials
 * `/p2p/C/p2p-circuit/p2p/B`, C splices a HOP stream from A onto a STOP stream
 * to B, and A and B run noise + yamux over that spliced stream, so C only
 * forwards ciphertext (end-to-end encryption, C cannot read or forge data).
 *
 * What circuit relay v2 requires, and how this module provides it:
 *
 * - **Every node dials and accepts relayed connections**: the relay transport
 *   (`relayTransport()`), which also answers STOP requests on the destination.
 * - **Every node can be the middle hop**: the relay server (`relayServer()`),
 *   with `applyDefaultLimit: false`. With the default limits a relayed
 *   connection is reset after 128 KiB or 2 minutes and is "limited", so no
 *   ordinary protocol stream may even open on it.
 * - **B must hold a reservation on C** before anybody can reach B through C:
 *   the server answers a CONNECT for a destination without one with
 *   NO_RESERVATION. The forwarder service reserves on relays itself: on every
 *   directly connected peer that speaks the HOP protocol (up to
 *   `maxReservations`, filtered by `reserveOn`), and on demand with
 *   `reserve(relay)`. A reservation lives as long as the B-C connection it was
 *   made on; when that connection comes back, so does the reservation.
 * - **The relayed connection is a second connection to a peer we are usually
 *   already connected to**: it is dialled with `force: true` (otherwise the
 *   connection manager returns the existing direct connection), cached per
 *   (via, peer), and streams are opened on that Connection object, never
 *   through `dialProtocol(peer)` (which always prefers the direct connection).
 *
 * Known library hazard: the transport's reservation store clears its job queue
 * after each success without settling the queued jobs, so `reserve()` runs one
 * reservation at a time and retries on a timeout. Its own refresh timers
 * (expiry - 5 min, expiry rounded to the second) can also queue behind each
 * other and be dropped; an unrefreshed reservation expires on the relay after
 * `reservationTtl` (2 h) and the relay then resets every circuit to that peer.
 *
 * The node assembly adds, e.g. with `const relay = relayConfig({ maxReservations: 128 })`:
 *
 * ```ts
 * transports: [tcp(), ...relay.transports],
 * services: { ...others, ...relay.services } // relay (server) + forwarder
 * ```
 *
 * and `LeptonServices` gains `relay: CircuitRelayService` and `forwarder: Forwarder`.
 * Nothing has to be added to the listen addresses: the forwarder makes its
 * reservations itself (`transportManager.listen(['<relay>/p2p-circuit'])`, the
 * same call the relay transport makes when it is dialled through a relay it
 * holds no reservation on).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { circuitRelayServer, circuitRelayTransport, RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import { LeptonError } from '../errors.ts'
import { raceSignal } from '../signals.ts'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { AbortOptions, ComponentLogger, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'

/** Defaults sized to the node's connection cap (src/node: maxConnections 128). */
export const DEFAULT_RELAY_MAX_RESERVATIONS = 128

/**
 * Relayed connections one peer may run through us at once (HOP streams per
 * connection; the libp2p default is 32 inbound streams per protocol).
 */
export const DEFAULT_RELAY_MAX_CIRCUITS = 128

/**
 * A relayed connection with no stream for this long is closed by the peer
 * that dialled it; the peer it arrived at closes it after twice as long (for
 * a dialler that is gone, or runs a version without this sweep). Detours
 * change with the measured RTTs, so without this every (relay, peer) pair a
 * node ever used stayed open: a submitter in the 20-daemon soak collected ~20
 * inbound circuits a minute (104 connections after 4 min, each a yamux session
 * and noise state over another yamux stream, holding the 64 KiB chunk its
 * address was decoded from), and its RSS grew with them.
 */
export const DEFAULT_CIRCUIT_IDLE_MS = 30_000

/** Relays a node reserves on by itself (its direct neighbours). */
export const DEFAULT_FORWARDER_MAX_RESERVATIONS = 32

const RESERVE_ATTEMPTS = 5
const RESERVE_RETRY_MS = 50
/** One reservation round trip; the store's own completion timeout is 5 s. */
const RESERVE_ATTEMPT_TIMEOUT_MS = 7_000

class ReserveTimeoutError extends LeptonError {
  override name = 'ReserveTimeoutError'
}

/** `promise`, or a rejection after `ms` or when `signal` aborts (the promise itself cannot be cancelled). */
async function withTimeout<T> (promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
  const timeout = AbortSignal.timeout(ms)
  try {
    return await raceSignal(promise, signal == null ? timeout : AbortSignal.any([timeout, signal]))
  } catch (err) {
    if (timeout.aborted && err === timeout.reason) throw new ReserveTimeoutError(`no answer in ${ms} ms`)
    throw err
  }
}

export class RelayLimitedError extends LeptonError {
  override name = 'RelayLimitedError'
}

export class RelayDialError extends LeptonError {
  override name = 'RelayDialError'
}

export interface RelayInit {
  /**
   * Reservations this node accepts as a relay: one per peer that may be
   * reached through us, so at least the mesh's connection cap.
   * @default 128
   */
  maxReservations?: number
  /** Simultaneous relayed connections per client connection (HOP and STOP streams). @default 128 */
  maxCircuits?: number
}

/**
 * The relay transport: dials `/p2p/C/p2p-circuit/p2p/B`, accepts relayed
 * connections (STOP protocol) and makes reservations. Goes into `transports`.
 */
export function relayTransport (init: RelayInit = {}): ReturnType<typeof circuitRelayTransport> {
  const circuits = init.maxCircuits ?? DEFAULT_RELAY_MAX_CIRCUITS
  return circuitRelayTransport({
    maxInboundStopStreams: circuits,
    maxOutboundStopStreams: circuits
  })
}

/**
 * The relay server (HOP protocol), without circuit limits: a mesh member
 * relays any amount of data for any time, for peers holding a reservation.
 * Goes into `services` (as `relay`).
 */
export function relayServer (init: RelayInit = {}): ReturnType<typeof circuitRelayServer> {
  const circuits = init.maxCircuits ?? DEFAULT_RELAY_MAX_CIRCUITS
  return circuitRelayServer({
    reservations: {
      // no 128 KiB / 2 min limit: relayed connections are unlimited, so normal
      // protocols run on them without `runOnLimitedConnection`
      applyDefaultLimit: false,
      maxReservations: init.maxReservations ?? DEFAULT_RELAY_MAX_RESERVATIONS
    },
    maxInboundHopStreams: circuits,
    maxOutboundHopStreams: circuits,
    maxOutboundStopStreams: circuits
  })
}

export interface ForwarderInit {
  /**
   * Reserve by itself on every directly connected peer that speaks the relay
   * HOP protocol, up to this many (0: only through `reserve()`).
   * @default 32
   */
  maxReservations?: number
  /** Restricts the automatic reservations (e.g. to the k nearest peers). @default every peer */
  reserveOn?(relay: PeerId): boolean
  /** Relayed connections we dialled close after this long without a stream (inbound ones after twice as long). @default 30 s */
  circuitIdleMs?: number
}

export interface OpenStreamOptions extends AbortOptions {
  /** Relay (middle hop). Undefined: the direct connection. */
  via?: PeerId
}

export interface Forwarder {
  /**
   * A stream to `peer` for `protocol`: directly (`dialProtocol`) when `via` is
   * undefined (or is `peer`), else on a relayed connection through `via`,
   * opened even when a direct connection exists and reused while it is open.
   * Rejects if `via` is unreachable, `peer` holds no reservation on `via`
   * (`failed to connect via relay with status NO_RESERVATION`), or the relay
   * limits its circuits (RelayLimitedError).
   *
   * If the relay goes away, the relayed connection and its streams close
   * *cleanly* (C's stop closes the HOP stream gracefully): a pending write
   * rejects, but a reader only sees an early end of stream. Protocols used
   * over a detour must detect truncation themselves (length prefixes, hashes).
   */
  openStream(peer: PeerId, protocol: string, options?: OpenStreamOptions): Promise<Stream>
  /** The relayed connection to `peer` through `via`, dialled if there is none open. */
  relayedConnection(peer: PeerId, via: PeerId, options?: AbortOptions): Promise<Connection>
  /**
   * Reserves a slot on `relay` so others can reach us through it (connecting
   * to it first if needed). Resolves at once if we already hold one.
   */
  reserve(relay: PeerId, options?: AbortOptions): Promise<void>
  /** Whether we hold a reservation on `relay` (the relay transport listens through it; not announced). */
  hasReservation(relay: PeerId): boolean
}

export interface ForwarderComponents {
  peerId: PeerId
  connectionManager: ConnectionManager
  transportManager: TransportManager
  registrar: Registrar
  logger: ComponentLogger
}

/** The forwarder service (goes into `services` as `forwarder`). */
export function forwarder (init: ForwarderInit = {}): (components: ForwarderComponents) => Forwarder {
  return (components) => new DefaultForwarder(components, init)
}

/**
 * Everything the node assembly adds for forwarding:
 * `transports: [tcp(), ...relay.transports]`, `services: { ...relay.services }`.
 */
export function relayConfig (init: RelayInit & { forwarder?: ForwarderInit } = {}): {
  transports: Array<ReturnType<typeof circuitRelayTransport>>
  services: {
    relay: (components: Parameters<ReturnType<typeof circuitRelayServer>>[0]) => CircuitRelayService
    forwarder: (components: ForwarderComponents) => Forwarder
  }
} {
  return {
    transports: [relayTransport(init)],
    services: { relay: relayServer(init), forwarder: forwarder(init.forwarder) }
  }
}

function circuitAddr (via: PeerId, peer: PeerId): string {
  return `/p2p/${via.toString()}/p2p-circuit/p2p/${peer.toString()}`
}

function isCircuitVia (conn: Connection, via: PeerId): boolean {
  return !conn.direct && conn.remoteAddr.toString().includes(`/p2p/${via.toString()}/p2p-circuit`)
}

export class DefaultForwarder implements Forwarder, Startable {
  private readonly components: ForwarderComponents
  private readonly maxReservations: number
  private readonly reserveOn: (relay: PeerId) => boolean
  private readonly log: Logger
  /** (via, peer) -> relayed connection being dialled or open */
  private readonly circuits = new Map<string, Promise<Connection>>()
  private readonly reserving = new Map<string, Promise<void>>()
  private reserveChain: Promise<void> = Promise.resolve()
  private topologyId?: string
  private shutdown = new AbortController()
  private readonly circuitIdleMs: number
  /** Relayed connection id -> when it was first seen without a stream. */
  private readonly idleSince = new Map<string, number>()
  private sweeper?: ReturnType<typeof setInterval>

  constructor (components: ForwarderComponents, init: ForwarderInit = {}) {
    this.components = components
    this.maxReservations = init.maxReservations ?? DEFAULT_FORWARDER_MAX_RESERVATIONS
    this.reserveOn = init.reserveOn ?? (() => true)
    this.circuitIdleMs = init.circuitIdleMs ?? DEFAULT_CIRCUIT_IDLE_MS
    this.log = components.logger.forComponent('lepton:forwarder')
  }

  readonly [Symbol.toStringTag] = 'lepton:forwarder'

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    this.sweeper = setInterval(() => { this.closeIdleCircuits(Date.now()) }, Math.max(10, this.circuitIdleMs / 3))
    this.sweeper.unref?.()
    if (this.maxReservations > 0) {
      // fires once identify has shown the peer speaks HOP, for each connection
      this.topologyId = await this.components.registrar.register(RELAY_V2_HOP_CODEC, {
        onConnect: (peer, conn) => {
          if (!conn.direct || !this.reserveOn(peer) || this.hasReservation(peer)) return
          if (this.reservationCount() + this.reserving.size >= this.maxReservations) return
          this.reserve(peer, { signal: this.shutdown.signal })
            .catch(err => { this.log('could not reserve on %p: %e', peer, err) })
        }
      })
    }
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
    clearInterval(this.sweeper)
    this.idleSince.clear()
    if (this.topologyId != null) this.components.registrar.unregister(this.topologyId)
    this.circuits.clear()
  }

  /**
   * Closes the relayed connections that have had no stream for
   * `circuitIdleMs` (ours) or twice that (inbound): a detour is reused while
   * it carries streams, and dialled again (a few ms) when next chosen.
   */
  private closeIdleCircuits (now: number): void {
    const seen = new Set<string>()
    for (const conn of this.components.connectionManager.getConnections()) {
      if (conn.direct || conn.status !== 'open' || !conn.remoteAddr.toString().includes('/p2p-circuit')) continue
      seen.add(conn.id)
      if (conn.streams.length > 0) {
        this.idleSince.delete(conn.id)
        continue
      }
      const since = this.idleSince.get(conn.id)
      if (since == null) {
        this.idleSince.set(conn.id, now)
        continue
      }
      const limit = conn.direction === 'outbound' ? this.circuitIdleMs : 2 * this.circuitIdleMs
      if (now - since < limit) continue
      this.idleSince.delete(conn.id)
      this.log('closing relayed connection to %p idle for %d ms: %a', conn.remotePeer, now - since, conn.remoteAddr)
      conn.close().catch(err => { conn.abort(err as Error) })
    }
    for (const id of this.idleSince.keys()) if (!seen.has(id)) this.idleSince.delete(id)
    // the cache lets go of closed circuits (it held them until that pair was asked for again)
    for (const [key, pending] of this.circuits) {
      pending.then(conn => { if (conn.status !== 'open' && this.circuits.get(key) === pending) this.circuits.delete(key) }, () => {})
    }
  }

  async openStream (peer: PeerId, protocol: string, options: OpenStreamOptions = {}): Promise<Stream> {
    const { via, ...rest } = options
    if (via == null || via.equals(peer)) {
      // what node.dialProtocol does
      return await this.components.connectionManager.openStream(peer, protocol, rest)
    }
    const conn = await this.relayedConnection(peer, via, rest)
    try {
      return await conn.newStream(protocol, rest)
    } catch (err) {
      // closed under us (idle sweep at either end, or the relay left): one new circuit
      if (conn.status === 'open' || rest.signal?.aborted === true) throw err
      return await (await this.relayedConnection(peer, via, rest)).newStream(protocol, rest)
    }
  }

  async relayedConnection (peer: PeerId, via: PeerId, options: AbortOptions = {}): Promise<Connection> {
    if (via.equals(this.components.peerId) || peer.equals(this.components.peerId)) {
      throw new RelayDialError('cannot relay through or to ourselves')
    }
    const key = `${via.toString()}/${peer.toString()}`
    const cached = this.circuits.get(key)
    if (cached != null) {
      const conn = await cached.catch(() => undefined)
      if (conn?.status === 'open') return conn
      if (this.circuits.get(key) === cached) this.circuits.delete(key)
    }
    // a concurrent caller may have started a dial while we awaited
    const pending = this.circuits.get(key) ?? this.dialCircuit(peer, via, options)
    this.circuits.set(key, pending)
    try {
      return await pending
    } catch (err) {
      if (this.circuits.get(key) === pending) this.circuits.delete(key)
      throw err
    }
  }

  private async dialCircuit (peer: PeerId, via: PeerId, options: AbortOptions): Promise<Connection> {
    const addr = multiaddr(circuitAddr(via, peer))
    // force: without it the connection manager hands back the open direct connection
    const conn = await this.components.connectionManager.openConnection(addr, { ...options, force: true })
    if (!isCircuitVia(conn, via)) {
      // joined a dial to `peer` that was already queued (the dial queue merges
      // dials by peer id): not the detour we were asked for
      throw new RelayDialError(`dial through ${via.toString()} returned a connection on ${conn.remoteAddr.toString()}`)
    }
    if (conn.limits != null) {
      conn.abort(new RelayLimitedError('relay limits its circuits'))
      throw new RelayLimitedError(`relay ${via.toString()} limits relayed connections (configure it with applyDefaultLimit: false)`)
    }
    this.log('relayed connection to %p via %p: %a', peer, via, conn.remoteAddr)
    return conn
  }

  async reserve (relay: PeerId, options: AbortOptions = {}): Promise<void> {
    if (this.hasReservation(relay)) return
    const key = relay.toString()
    const pending = this.reserving.get(key)
    if (pending != null) return await pending
    // One reservation at a time: the relay transport's reservation store runs
    // its jobs one by one and, after each success, *clears its queue without
    // settling the queued jobs* (reservation-store.ts #checkReservationCount ->
    // reserveQueue.clear(), @libp2p/utils Queue.clear() only splices), so a
    // request queued behind another would never resolve.
    const attempt = this.reserveChain.then(async () => { await this.reserveNow(relay, options) })
    this.reserveChain = attempt.catch(() => {})
    this.reserving.set(key, attempt)
    try {
      await attempt
    } finally {
      this.reserving.delete(key)
    }
  }

  private async reserveNow (relay: PeerId, options: AbortOptions): Promise<void> {
    if (this.hasReservation(relay)) return
    options.signal?.throwIfAborted()
    const key = relay.toString()
    // a reservation must be made over a direct connection (the server refuses
    // one over a relayed connection)
    const conn = await this.components.connectionManager.openConnection(relay, options)
    if (!conn.direct) throw new RelayDialError(`no direct connection to relay ${key}`)
    for (let attempt = 1; !this.hasReservation(relay); attempt++) {
      try {
        await withTimeout(
          this.components.transportManager.listen([multiaddr(`/p2p/${key}/p2p-circuit`)]),
          RESERVE_ATTEMPT_TIMEOUT_MS, options.signal)
      } catch (err) {
        // Retried: (1) the transport's own relay discovery queues a 'discovered'
        // job for every HOP peer that connects and fails it at once
        // (HadEnoughRelaysError) as nothing listens on '/p2p-circuit'; our
        // 'configured' request joins a queued job for the same peer
        // (addRelay: existingJob.join()) and fails with it. (2) a job of ours
        // dropped by the queue clear (above) never settles: timed out here.
        const retry = String(err).includes('HadEnoughRelaysError') || err instanceof ReserveTimeoutError
        if (attempt >= RESERVE_ATTEMPTS || !retry || options.signal?.aborted === true) throw err
        this.log('reservation on %p: attempt %d failed, retrying: %e', relay, attempt, err)
        await sleep(RESERVE_RETRY_MS, undefined, options)
      }
      if (!this.hasReservation(relay) && attempt >= RESERVE_ATTEMPTS) {
        throw new RelayDialError(`relay ${key} refused the reservation`)
      }
    }
  }

  /**
   * Our reservations are the relay transport's listen addresses
   * (`<relay>/p2p-circuit`). Not the announced ones: nodes keep relay addresses
   * out of what they announce (src/node: announceFilter).
   */
  private relayListenAddrs (): Multiaddr[] {
    return this.components.transportManager.getAddrs().filter(a => a.toString().includes('/p2p-circuit'))
  }

  hasReservation (relay: PeerId): boolean {
    const marker = `/p2p/${relay.toString()}/p2p-circuit`
    return this.relayListenAddrs().some(a => a.toString().includes(marker))
  }

  private reservationCount (): number {
    const relays = new Set<string>()
    for (const a of this.relayListenAddrs()) {
      const s = a.toString()
      const i = s.indexOf('/p2p-circuit')
      if (i < 0) continue
      const head = s.slice(0, i)
      relays.add(head.slice(head.lastIndexOf('/p2p/') + 5))
    }
    return relays.size
  }
}
