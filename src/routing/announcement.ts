/** The routing gossip message: a peer's Vivaldi coordinate and its measured links. */
import { peerIdFromMultihash } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { defineMessage, ProtocolViolationError } from '../wire/index.ts'
import { ROUTING_CHANGE_MIN_MS, ROUTING_CHANGE_RATIO, ROUTING_MAX_LINKS, ROUTING_MAX_MESSAGE_BYTES } from './constants.ts'
import type { Coordinate } from './vivaldi.ts'
import type { PeerId } from '@libp2p/interface'

interface AnnouncementWire {
  vec: number[]
  height: number
  error: number
  adjustment: number
  linkPeers: Uint8Array[]
  linkRttUs: number[]
  /** Jitter of each link in us; absent (empty) from peers that predate it. */
  linkJitterUs: number[]
  timestampMs: number
}

const codec = defineMessage<AnnouncementWire>({
  vec: { no: 1, type: 'double', repeated: true, maxItems: 16 },
  height: { no: 2, type: 'double' },
  error: { no: 3, type: 'double' },
  adjustment: { no: 4, type: 'double' },
  linkPeers: { no: 5, type: 'bytes', repeated: true, maxItems: ROUTING_MAX_LINKS },
  linkRttUs: { no: 6, type: 'uint32', repeated: true, maxItems: ROUTING_MAX_LINKS },
  timestampMs: { no: 7, type: 'uint64' },
  linkJitterUs: { no: 8, type: 'uint32', repeated: true, maxItems: ROUTING_MAX_LINKS }
})

export interface Announcement {
  coordinate: Coordinate
  /** Measured RTTs (and their jitter, when known) from the announcing peer, in ms. */
  links: Array<{ peerId: string, rttMs: number, jitterMs?: number }>
  timestampMs: number
}

export function encodeAnnouncement (a: Announcement, peerIdOf: (id: string) => PeerId): Uint8Array {
  const links = a.links.slice(0, ROUTING_MAX_LINKS)
  return codec.encode({
    ...a.coordinate,
    linkPeers: links.map(l => peerIdOf(l.peerId).toMultihash().bytes),
    linkRttUs: links.map(l => micros(l.rttMs, 1)),
    // all or none: one entry per link
    linkJitterUs: links.every(l => l.jitterMs != null) ? links.map(l => micros(l.jitterMs ?? 0, 0)) : [],
    timestampMs: a.timestampMs
  })
}

/** Decodes and checks an announcement; throws ProtocolViolationError on anything malformed. */
export function decodeAnnouncement (data: Uint8Array, dimensionality: number): Announcement {
  if (data.byteLength > ROUTING_MAX_MESSAGE_BYTES) throw new ProtocolViolationError(`routing announcement of ${data.byteLength} bytes exceeds ${ROUTING_MAX_MESSAGE_BYTES}`)
  const w = codec.decode(data)
  const finite = (n: number): boolean => Number.isFinite(n)
  if (w.vec.length !== dimensionality || !w.vec.every(finite) || !finite(w.height) || w.height < 0 || !finite(w.error) || w.error < 0 || !finite(w.adjustment)) {
    throw new ProtocolViolationError('routing announcement carries an invalid coordinate')
  }
  if (w.linkPeers.length !== w.linkRttUs.length) throw new ProtocolViolationError('routing announcement: link peers and RTTs differ in number')
  if (w.linkJitterUs.length !== 0 && w.linkJitterUs.length !== w.linkPeers.length) throw new ProtocolViolationError('routing announcement: link peers and jitters differ in number')
  const links = w.linkPeers.map((bytes, i) => {
    let peerId: string
    try {
      peerId = peerIdFromMultihash(Digest.decode(bytes)).toString()
    } catch {
      throw new ProtocolViolationError('routing announcement carries an invalid peer id')
    }
    const jitterUs = w.linkJitterUs[i]
    return { peerId, rttMs: (w.linkRttUs[i] as number) / 1000, ...(jitterUs != null ? { jitterMs: jitterUs / 1000 } : {}) }
  })
  return { coordinate: { vec: w.vec, height: w.height, error: w.error, adjustment: w.adjustment }, links, timestampMs: w.timestampMs }
}

/**
 * Whether `next` tells peers something `previous` did not: a link gained or
 * lost, or a link's RTT moved by more than its jitter now, ROUTING_CHANGE_RATIO of
 * the announced RTT and ROUTING_CHANGE_MIN_MS. Changes within the noise of the
 * measurements are not news: on a busy host loopback RTTs of 5 ms swing by
 * 10 ms from one sample to the next. The coordinate and the jitters ride along
 * with the next announcement (a refresh at the latest): in an idle 20-daemon
 * mesh Vivaldi coordinates wander by 2-15 ms every 10 s, more than their own
 * error estimate, and they only matter where no link is measured.
 */
export function announcementChanged (previous: Announcement, next: Announcement): boolean {
  if (previous.links.length !== next.links.length) return true
  const before = new Map(previous.links.map(l => [l.peerId, l]))
  for (const l of next.links) {
    const p = before.get(l.peerId)
    if (p == null) return true
    // the link's jitter now, not when it was announced: a link announced while it was still
    // settling (start-up RTTs, large jitter) and calm since is news, or peers keep the old value
    // until the refresh
    const noiseMs = Math.max(ROUTING_CHANGE_MIN_MS, ROUTING_CHANGE_RATIO * p.rttMs, l.jitterMs ?? 0)
    if (Math.abs(l.rttMs - p.rttMs) > noiseMs) return true
  }
  return false
}

function micros (ms: number, least: number): number {
  return Math.min(0xffffffff, Math.max(least, Math.round(ms * 1000)))
}
