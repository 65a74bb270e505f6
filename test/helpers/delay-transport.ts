/**
 * A TCP transport for tests that adds latency in our own code, because the
 * test machines have no netem (`tc qdisc ... delay`).
 *
 * Interception point: `@libp2p/tcp` builds its MultiaddrConnection (a
 * `TCPSocketMultiaddrConnection`, an `AbstractMultiaddrConnection` from
 * `@libp2p/utils`) and hands it straight to `upgrader.upgradeOutbound` /
 * `upgradeInbound`, in the same tick and before any byte is read. The tcp
 * package offers no hook for a custom socket, so we wrap the upgrader that the
 * transport manager passes in and patch four methods of that connection
 * instance before the upgrader (noise, yamux) ever touches it:
 *
 * - `sendData`   bytes going to the socket            -> delayed
 * - `onData`     bytes coming from the socket         -> delayed
 * - `sendClose`  our FIN                              -> queued behind delayed writes
 * - `onTransportClosed` remote FIN / socket close     -> queued behind delayed reads
 *
 * These are the methods every libp2p 3 stream-based transport implements, so
 * everything above them (encryption, muxing, protocols) runs unchanged.
 * Aborts/resets are not delayed: a reset is a reset.
 */
import { tcp } from '@libp2p/tcp'
import { serviceCapabilities, transportSymbol } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import type { TCPComponents, TCPOptions } from '@libp2p/tcp'
import type { AbortOptions, CreateListenerOptions, DialTransportOptions, MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'

export interface DelayedRemote {
  /** Remote IP of the TCP connection, as seen by this node. */
  host: string
  /**
   * Remote TCP port as seen by this node: the remote's listen port when this
   * node dialled, an ephemeral port when it accepted the connection.
   */
  port: number
  direction: 'inbound' | 'outbound'
}

export interface DelayedTcpOptions {
  tcp?: TCPOptions
  /**
   * One-way delay in ms, applied by THIS node to every chunk it sends and
   * every chunk it receives on the connection (so the RTT grows by 2x the
   * value). Asked once per connection; <= 0 leaves the connection untouched.
   * If both ends return a delay for the same connection, both apply it.
   */
  oneWayDelayMs: (remote: DelayedRemote) => number
}

/** Drop-in replacement for `tcp()` in `createLibp2p({ transports })`. */
export function delayedTcp (options: DelayedTcpOptions): (components: TCPComponents) => Transport {
  return (components) => {
    const inner = tcp(options.tcp)(components)
    const wrapUpgrader = (upgrader: Upgrader, direction: DelayedRemote['direction']): Upgrader => {
      // prototype delegation keeps every other upgrader method (and its `this`)
      const wrapped: Upgrader = Object.create(upgrader)
      wrapped.upgradeOutbound = async (maConn, opts) => await upgrader.upgradeOutbound(delayConnection(maConn, direction, options.oneWayDelayMs), opts as any)
      wrapped.upgradeInbound = async (maConn, opts) => await upgrader.upgradeInbound(delayConnection(maConn, direction, options.oneWayDelayMs), opts as any)
      return wrapped
    }
    return {
      [transportSymbol]: true,
      [Symbol.toStringTag]: '@lepton-mesh/delayed-tcp',
      // libp2p finds transports among components by this capability
      [serviceCapabilities]: ['@libp2p/transport'],
      dial: async (ma, opts: DialTransportOptions) => await inner.dial(ma, { ...opts, upgrader: wrapUpgrader(opts.upgrader, 'outbound') }),
      createListener: (opts: CreateListenerOptions) => inner.createListener({ ...opts, upgrader: wrapUpgrader(opts.upgrader, 'inbound') }),
      listenFilter: (addrs) => inner.listenFilter(addrs),
      dialFilter: (addrs) => inner.dialFilter(addrs)
    }
  }
}

/** The protected/abstract parts of AbstractMultiaddrConnection we patch. */
interface PatchableConnection {
  status: string
  sendData: (data: Uint8ArrayList) => { sentBytes: number, canSendMore: boolean }
  onData: (data: Uint8Array | Uint8ArrayList) => void
  sendClose: (options?: AbortOptions) => Promise<void>
  onTransportClosed: (err?: Error) => void
}

function delayConnection (maConn: MultiaddrConnection, direction: DelayedRemote['direction'], oneWayDelayMs: DelayedTcpOptions['oneWayDelayMs']): MultiaddrConnection {
  const remote = remoteHostPort(maConn)
  if (remote == null) return maConn
  const delayMs = oneWayDelayMs({ ...remote, direction })
  if (!(delayMs > 0)) return maConn

  const conn = maConn as unknown as PatchableConnection
  const out = new DelayQueue()
  const inb = new DelayQueue()
  const sendData = conn.sendData.bind(conn)
  const onData = conn.onData.bind(conn)
  const sendClose = conn.sendClose.bind(conn)
  const onTransportClosed = conn.onTransportClosed.bind(conn)

  conn.sendData = (data) => {
    // copy: the caller consumes/reuses its list once we return
    const chunk = data.slice()
    out.push(delayMs, () => {
      // after an abort the socket is gone; writing would only raise errors
      if (conn.status === 'open' || conn.status === 'closing') sendData(new Uint8ArrayList(chunk))
    })
    // claim everything was written: backpressure is not propagated while bytes
    // are in flight (fine for tests; memory grows with what is in flight)
    return { sentBytes: chunk.byteLength, canSendMore: true }
  }
  conn.onData = (data) => {
    inb.push(delayMs, () => { onData(data) })
  }
  // our FIN must not overtake delayed writes (no extra delay of its own)
  conn.sendClose = async (opts) => {
    await new Promise<void>(resolve => { out.push(0, resolve) })
    await sendClose(opts)
  }
  // nor may the remote's FIN overtake delayed reads, or they would be dropped
  conn.onTransportClosed = (err) => {
    inb.push(0, () => { onTransportClosed(err) })
  }
  maConn.addEventListener('close', () => {
    // let pending closes run (sendClose promise) but drop data: the socket is gone
    out.drain()
    inb.drain()
  })
  return maConn
}

function remoteHostPort (maConn: MultiaddrConnection): { host: string, port: number } | undefined {
  let host: string | undefined
  let port: number | undefined
  for (const c of maConn.remoteAddr.getComponents()) {
    if ((c.name === 'ip4' || c.name === 'ip6') && host == null) host = c.value
    if (c.name === 'tcp' && port == null) port = Number(c.value)
  }
  return host != null && port != null ? { host, port } : undefined
}

/**
 * FIFO of callbacks, each run no earlier than its due time. Due times are
 * max(now + delay, last due time) so order is preserved even when the delay
 * would allow reordering (e.g. a 0-delay close queued behind data).
 */
class DelayQueue {
  private readonly items: Array<{ due: number, run: () => void }> = []
  private lastDue = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  push (delayMs: number, run: () => void): void {
    this.lastDue = Math.max(performance.now() + delayMs, this.lastDue)
    this.items.push({ due: this.lastDue, run })
    this.arm()
  }

  /** Run everything now (used after the connection closed). */
  drain (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    for (let item = this.items.shift(); item != null; item = this.items.shift()) item.run()
  }

  private arm (): void {
    const head = this.items[0]
    if (this.timer != null || head == null) return
    // Node timers run off a cached, whole-millisecond loop clock and can fire
    // a fraction of a ms "early" by performance.now(); re-arming in fire()
    // guarantees the delay is never shorter than asked
    this.timer = setTimeout(() => { this.fire() }, Math.max(0, Math.ceil(head.due - performance.now())))
  }

  private fire (): void {
    this.timer = undefined
    const now = performance.now()
    while (this.items[0] != null && this.items[0].due <= now) {
      const item = this.items.shift()
      item?.run()
    }
    this.arm()
  }
}
