/**
 * Yamux window updates once half of a stream's receive window is used, not
 * after every data frame.
 *
 * @libp2p/yamux 8 answers every data frame it receives with a window-update
 * frame: 12 bytes, which noise seals as a message of its own and tcp writes
 * with a syscall of its own. Our protocols are mostly small messages (gossip,
 * DHT queries, bids, awards, RTT probes), so that is nearly one extra frame
 * each way per message: in a CPU profile of a 20-daemon soak, 6-9% of every
 * daemon's CPU was spent sending window updates. go-yamux and rust-yamux send
 * one once the data received since the last update reaches half the window
 * (the sender still has the other half to go on, so it never stalls waiting);
 * this does the same. Updates that carry a flag (the SYN of a new stream, the
 * ACK of an accepted one) and those of a paused stream go as before.
 *
 * The policy wraps YamuxStream's own method (the stream class is part of the
 * package's exports) and reads three of its fields; if a release renames
 * them, the wrapper steps aside and yamux behaves as shipped, and
 * test/node/yamux-window.spec.ts fails naming the missing field.
 */
import { StreamState, YamuxStream } from '@libp2p/yamux/stream'

/** The fields of a YamuxStream the policy reads (private in its types, plain properties at run time). */
interface WindowState {
  state: StreamState
  /** The window granted to the sender at the last update. */
  recvWindow: number
  /** What is left of it: received data takes from it, an update refills it. */
  recvWindowCapacity: number
}

let installed = false

/** Makes every yamux stream in this process defer window updates until half the window is used (idempotent). */
export function deferYamuxWindowUpdates (): void {
  if (installed) return
  installed = true
  const proto = YamuxStream.prototype as unknown as { sendWindowUpdate: (this: WindowState) => void }
  const sendWindowUpdate = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowState): void {
    const { state, recvWindow, recvWindowCapacity } = this
    if (state === StreamState.Established && typeof recvWindow === 'number' && typeof recvWindowCapacity === 'number' &&
      (recvWindow - recvWindowCapacity) * 2 < recvWindow) return
    sendWindowUpdate.call(this)
  }
}
