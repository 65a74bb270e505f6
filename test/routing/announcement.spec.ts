import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { announcementChanged, decodeAnnouncement, encodeAnnouncement } from '../../src/routing/announcement.ts'
import { ROUTING_MAX_LINKS, ROUTING_MAX_MESSAGE_BYTES } from '../../src/routing/constants.ts'
import { defineMessage } from '../../src/wire/index.ts'

const DIMS = 8
const coordinate = { vec: [1, 2, 3, 4, 5, 6, 7, 8.5], height: 0.2, error: 0.4, adjustment: -0.1 }

async function peers (n: number): Promise<string[]> {
  return await Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
}

describe('routing announcement', () => {
  it('round-trips a coordinate and its links (RTTs to the microsecond)', async () => {
    const [p1, p2] = await peers(2) as [string, string]
    const bytes = encodeAnnouncement({ coordinate, links: [{ peerId: p1, rttMs: 0.2504 }, { peerId: p2, rttMs: 180.0001 }], timestampMs: 1_700_000_000_000 }, peerIdFromString)
    const a = decodeAnnouncement(bytes, DIMS)
    expect(a.coordinate).toEqual(coordinate)
    expect(a.links).toEqual([{ peerId: p1, rttMs: 0.25 }, { peerId: p2, rttMs: 180 }])
    expect(a.timestampMs).toBe(1_700_000_000_000)
  })

  it('carries each link\'s jitter when every link has one, and none from a peer that sends none', async () => {
    const [p1, p2] = await peers(2) as [string, string]
    const both = encodeAnnouncement({ coordinate, links: [{ peerId: p1, rttMs: 10, jitterMs: 2.5004 }, { peerId: p2, rttMs: 20, jitterMs: 0 }], timestampMs: 1 }, peerIdFromString)
    expect(decodeAnnouncement(both, DIMS).links).toEqual([{ peerId: p1, rttMs: 10, jitterMs: 2.5 }, { peerId: p2, rttMs: 20, jitterMs: 0 }])
    const partly = encodeAnnouncement({ coordinate, links: [{ peerId: p1, rttMs: 10, jitterMs: 2.5 }, { peerId: p2, rttMs: 20 }], timestampMs: 1 }, peerIdFromString)
    expect(decodeAnnouncement(partly, DIMS).links).toEqual([{ peerId: p1, rttMs: 10 }, { peerId: p2, rttMs: 20 }])
  })

  it('keeps at most the link limit', async () => {
    const ids = await peers(ROUTING_MAX_LINKS + 5)
    // the largest: every link with an RTT and a jitter of the most microseconds a field holds
    const bytes = encodeAnnouncement({ coordinate, links: ids.map(peerId => ({ peerId, rttMs: 5e6, jitterMs: 5e6 })), timestampMs: 1 }, peerIdFromString)
    expect(bytes.byteLength).toBeLessThanOrEqual(ROUTING_MAX_MESSAGE_BYTES)
    expect(decodeAnnouncement(bytes, DIMS).links).toHaveLength(ROUTING_MAX_LINKS)
  })

  it('rejects oversized, malformed, wrong-dimension and inconsistent announcements', async () => {
    const reject = (bytes: Uint8Array): void => { expect(() => decodeAnnouncement(bytes, DIMS)).toThrow(expect.objectContaining({ name: expect.stringMatching(/ProtocolViolationError|FrameTooLargeError/) })) }
    reject(new Uint8Array(ROUTING_MAX_MESSAGE_BYTES + 1))
    reject(Uint8Array.from([0xff, 0xff, 0xff]))
    reject(encodeAnnouncement({ coordinate: { ...coordinate, vec: [1, 2] }, links: [], timestampMs: 1 }, peerIdFromString))
    reject(encodeAnnouncement({ coordinate: { ...coordinate, height: Number.NaN }, links: [], timestampMs: 1 }, peerIdFromString))
    // the same field numbers written by hand: two peers, one RTT; then a peer id that is not one
    const raw = defineMessage<{ vec: number[], linkPeers: Uint8Array[], linkRttUs: number[] }>({
      vec: { no: 1, type: 'double', repeated: true },
      linkPeers: { no: 5, type: 'bytes', repeated: true },
      linkRttUs: { no: 6, type: 'uint32', repeated: true }
    })
    const [p1] = await peers(1) as [string]
    const id = peerIdFromString(p1).toMultihash().bytes
    reject(raw.encode({ vec: coordinate.vec, linkPeers: [id, id], linkRttUs: [5] }))
    reject(raw.encode({ vec: coordinate.vec, linkPeers: [Uint8Array.from([1, 2, 3])], linkRttUs: [5] }))
    // jitters present, but not one per link
    const withJitter = defineMessage<{ vec: number[], height: number, linkPeers: Uint8Array[], linkRttUs: number[], linkJitterUs: number[] }>({
      vec: { no: 1, type: 'double', repeated: true },
      height: { no: 2, type: 'double' },
      linkPeers: { no: 5, type: 'bytes', repeated: true },
      linkRttUs: { no: 6, type: 'uint32', repeated: true },
      linkJitterUs: { no: 8, type: 'uint32', repeated: true }
    })
    expect(decodeAnnouncement(withJitter.encode({ vec: coordinate.vec, height: 0, linkPeers: [id], linkRttUs: [5], linkJitterUs: [1] }), DIMS).links).toEqual([{ peerId: p1, rttMs: 0.005, jitterMs: 0.001 }])
    reject(withJitter.encode({ vec: coordinate.vec, height: 0, linkPeers: [id], linkRttUs: [5], linkJitterUs: [1, 2] }))
  })
})

describe('announcementChanged (what is worth gossiping again)', () => {
  const links = [{ peerId: 'a', rttMs: 20, jitterMs: 2 }, { peerId: 'b', rttMs: 4, jitterMs: 6 }, { peerId: 'c', rttMs: 0.3, jitterMs: 0.1 }]
  const base = { coordinate, links, timestampMs: 1000 }
  const withLinks = (l: typeof links): typeof base => ({ coordinate, links: l, timestampMs: 2000 })
  const replace = (peerId: string, change: Partial<(typeof links)[number]>): typeof links => links.map(l => l.peerId === peerId ? { ...l, ...change } : l)

  it('is not news: the same links later, RTTs moving within their noise, a wandering coordinate', () => {
    expect(announcementChanged(base, withLinks(links))).toBe(false)
    expect(announcementChanged(base, withLinks([...links].reverse()))).toBe(false)
    // a: 20 ms, 25% = 5 ms; b: 4 ms with 6 ms of jitter; c: under a millisecond
    expect(announcementChanged(base, withLinks(replace('a', { rttMs: 24.9 })))).toBe(false)
    expect(announcementChanged(base, withLinks(replace('b', { rttMs: 9.9 })))).toBe(false)
    expect(announcementChanged(base, withLinks(replace('c', { rttMs: 1.2 })))).toBe(false)
    // jitter of the new sample counts as noise too
    expect(announcementChanged(base, withLinks(replace('a', { rttMs: 30, jitterMs: 12 })))).toBe(false)
    expect(announcementChanged(base, withLinks(replace('a', { jitterMs: 9 })))).toBe(false)
    expect(announcementChanged(base, { coordinate: { ...coordinate, vec: coordinate.vec.map(x => x + 10), height: 5 }, links, timestampMs: 2000 })).toBe(false)
  })

  it('is news: a link gained, lost or replaced, an RTT moving beyond its noise', () => {
    expect(announcementChanged(base, withLinks([...links, { peerId: 'd', rttMs: 20, jitterMs: 2 }]))).toBe(true)
    expect(announcementChanged(base, withLinks(links.slice(1)))).toBe(true)
    expect(announcementChanged(base, withLinks(replace('a', { peerId: 'd' })))).toBe(true)
    expect(announcementChanged(base, withLinks(replace('a', { rttMs: 25.1 })))).toBe(true)
    expect(announcementChanged(base, withLinks(replace('a', { rttMs: 14.9 })))).toBe(true)
    expect(announcementChanged(base, withLinks(replace('b', { rttMs: 10.1 })))).toBe(true)
    expect(announcementChanged(base, withLinks(replace('c', { rttMs: 1.4 })))).toBe(true)
    // announced while it was settling (100 +- 90 ms), calm since at 20 ms: news, not noise
    const settling = { coordinate, links: [{ peerId: 'a', rttMs: 100, jitterMs: 90 }], timestampMs: 1000 }
    expect(announcementChanged(settling, withLinks([{ peerId: 'a', rttMs: 20, jitterMs: 2 }]))).toBe(true)
  })
})
