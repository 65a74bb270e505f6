/**
 * Seeded generators of hostile input for each lepton protocol: random bytes,
 * truncated frames, oversized and malformed length prefixes, lengths just over
 * a protocol's limit, protobuf with wrong wire types or nested groups, valid
 * messages with bad CIDs or out of order. A plan is what one attack stream
 * writes, and how it ends.
 */
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { rawCid } from '../../src/jobs/index.ts'
import { TASK_MSG, TaskMessageCodec, taskMessage, MAX_TASK_FRAME_BYTES, OfferCodec } from '../../src/market/index.ts'
import { encodeVarint } from '../../src/wire/index.ts'
import { BlockMessageCodec, PinRequestCodec } from '../../src/store/messages.ts'
import { encodeAnnouncement } from '../../src/routing/announcement.ts'
import { peerIdFromString } from '@libp2p/peer-id'

export type Rand = () => number

/** One write on the stream and how many frames (attack units) it carries. */
export interface Write {
  bytes: Uint8Array
  frames: number
}

/**
 * close: we close our end, then wait for the daemon's; abort: we reset it;
 * linger: we wait for the daemon to act, then reset; hold: opened and
 * abandoned (reset only when the phase ends).
 */
export type Ending = 'close' | 'abort' | 'linger' | 'hold'

export interface StreamPlan {
  writes: Write[]
  ending: Ending
}

export const int = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T

export function randomBytes (rand: Rand, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = Math.floor(rand() * 256)
  return out
}

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

export function frame (body: Uint8Array): Uint8Array {
  return concat(encodeVarint(body.byteLength), body)
}

/** A protobuf field with any wire type (0 varint, 1 fixed64, 2 bytes, 5 fixed32). */
function field (rand: Rand, no: number, wireType: number): Uint8Array {
  const tag = encodeVarint(no * 8 + wireType)
  switch (wireType) {
    case 0: return concat(tag, encodeVarint(int(rand, 0, 2 ** 40)))
    case 1: return concat(tag, randomBytes(rand, 8))
    case 2: { const b = randomBytes(rand, int(rand, 0, 40)); return concat(tag, encodeVarint(b.byteLength), b) }
    default: return concat(tag, randomBytes(rand, 4))
  }
}

/** Well-formed protobuf whose fields carry the wrong wire types for our schemas. */
export function wrongTypes (rand: Rand, maxField: number): Uint8Array {
  const parts: Uint8Array[] = []
  for (let i = int(rand, 1, 8); i > 0; i--) parts.push(field(rand, int(rand, 1, maxField), pick(rand, [0, 1, 2, 5])))
  return concat(...parts)
}

/** A random CID-shaped thing: valid (random digest, identity hash, odd codec) or malformed. */
export function randomCid (rand: Rand): Uint8Array {
  switch (int(rand, 0, 7)) {
    case 0: return rawCid(randomBytes(rand, 16)).bytes
    case 1: return CID.createV1(0x70, createDigest(0x12, randomBytes(rand, 32))).bytes // dag-pb, nobody holds it
    case 2: return CID.createV1(0x55, createDigest(0x00, randomBytes(rand, int(rand, 0, 600)))).bytes // identity hash
    case 3: return CID.createV1(int(rand, 0, 2 ** 31), createDigest(int(rand, 0, 2 ** 20), randomBytes(rand, int(rand, 0, 64)))).bytes // unknown codec and hash
    case 4: return rawCid(randomBytes(rand, 8)).bytes.subarray(0, int(rand, 1, 30)) // truncated
    case 5: return concat(Uint8Array.of(0x01, 0x55, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f), randomBytes(rand, 8)) // digest length 2^32
    case 6: return new Uint8Array(0)
    default: return randomBytes(rand, int(rand, 1, 60))
  }
}

/** Attack units shared by every framed protocol; `limit` is the protocol's largest frame. */
function hostileFrame (rand: Rand, limit: number, maxField: number): Uint8Array {
  switch (int(rand, 0, 9)) {
    case 0: return randomBytes(rand, int(rand, 1, 200)) // no framing at all
    case 1: { const f = frame(wrongTypes(rand, maxField)); return f.subarray(0, int(rand, 1, Math.max(1, f.byteLength - 1))) } // truncated
    case 2: return concat(encodeVarint(2 ** 31), randomBytes(rand, int(rand, 0, 64))) // claims 2 GiB
    case 3: return concat(encodeVarint(int(rand, 2 ** 32, 2 ** 48)), randomBytes(rand, 8)) // claims far more
    case 4: return new Uint8Array(int(rand, 9, 16)).fill(0xff) // a length that never ends
    case 5: return concat(encodeVarint(limit + 1), randomBytes(rand, int(rand, 0, 32))) // just over the limit (body not sent)
    case 6: return frame(wrongTypes(rand, maxField))
    case 7: return frame(concat(wrongTypes(rand, maxField), Uint8Array.of(0x0e | (int(rand, 0, 1) === 0 ? 0x06 : 0x07)))) // invalid wire type 6/7
    case 8: return frame(new Uint8Array(Math.min(limit, int(rand, 16, 1000))).fill(0x0b)) // nested start-groups
    default: return frame(randomBytes(rand, int(rand, 0, Math.min(limit, 300))))
  }
}

function ending (rand: Rand): Ending {
  const r = rand()
  return r < 0.55 ? 'close' : r < 0.8 ? 'abort' : r < 0.97 ? 'linger' : 'hold'
}

/** /lepton/blocks/1.0.0: requests (good and bad CIDs), answers to nothing, then hostile frames. */
export function blocksPlan (rand: Rand, realCids: Uint8Array[], headerLimit: number): StreamPlan {
  const writes: Write[] = []
  const valid = int(rand, 0, 30)
  const batch: Uint8Array[] = []
  for (let i = 0; i < valid; i++) {
    const cid = rand() < 0.2 ? pick(rand, realCids) : rand() < 0.7 ? rawCid(randomBytes(rand, 8)).bytes : randomCid(rand)
    // 1 WANT, 2 HAVE_QUERY; 3-5 are answers nobody asked for; others unknown
    const type = rand() < 0.8 ? int(rand, 1, 2) : int(rand, 0, 9)
    batch.push(frame(BlockMessageCodec.encode({ id: int(rand, 0, 2 ** 32 - 1), type, cid, codec: int(rand, 0, 3), size: rand() < 0.5 ? 0 : int(rand, 0, 2 ** 32 - 1) })))
  }
  if (batch.length > 0) writes.push({ bytes: concat(...batch), frames: batch.length })
  for (let i = int(rand, 0, 3); i > 0; i--) writes.push({ bytes: hostileFrame(rand, headerLimit, 8), frames: 1 })
  return { writes, ending: ending(rand) }
}

/** /lepton/pin/1.0.0: one request per stream (good, bad or random CIDs), then more junk. */
export function pinPlan (rand: Rand, realCids: Uint8Array[], limit: number): StreamPlan {
  const writes: Write[] = []
  const r = rand()
  if (r < 0.15) {
    // a well-formed request: the daemon fetches (briefly) and answers
    const cid = rand() < 0.3 ? pick(rand, realCids) : rawCid(randomBytes(rand, 8)).bytes
    writes.push({ bytes: frame(PinRequestCodec.encode({ cid, timeoutS: int(rand, 0, 2), replicas: 0, holders: [] })), frames: 1 })
  } else if (r < 0.45) {
    writes.push({ bytes: frame(PinRequestCodec.encode({ cid: randomCid(rand), timeoutS: int(rand, 0, 2 ** 32 - 1), replicas: 0, holders: [] })), frames: 1 })
  }
  const junk: Uint8Array[] = []
  for (let i = int(rand, 0, 40); i > 0; i--) junk.push(hostileFrame(rand, limit, 4))
  if (junk.length > 0) writes.push({ bytes: concat(...junk), frames: junk.length })
  return { writes, ending: ending(rand) }
}

/** /lepton/rtt/1.0.0: 16-byte probes, odd-sized chunks and bursts over the echo rate. */
export function rttPlan (rand: Rand): StreamPlan {
  const writes: Write[] = []
  for (let i = int(rand, 1, 60); i > 0; i--) {
    const r = rand()
    const bytes = r < 0.6 ? randomBytes(rand, 16) : r < 0.95 ? randomBytes(rand, int(rand, 1, 600)) : randomBytes(rand, int(rand, 16_000, 70_000))
    writes.push({ bytes, frames: 1 })
  }
  return { writes, ending: ending(rand) }
}

function randomTaskMessage (rand: Rand, type: number): Uint8Array {
  const held: Uint8Array[] = []
  for (let i = int(rand, 0, 4); i > 0; i--) held.push(randomCid(rand))
  const running: number[] = []
  for (let i = rand() < 0.9 ? int(rand, 0, 8) : int(rand, 4000, 4200); i > 0; i--) running.push(int(rand, 0, 2 ** 32 - 1))
  return TaskMessageCodec.encode(taskMessage({
    type,
    jobId: rand() < 0.5 ? `job-${int(rand, 0, 99)}` : new TextDecoder().decode(randomBytes(rand, int(rand, 0, 40))),
    task: int(rand, 0, 2 ** 32 - 1),
    attempt: int(rand, 0, 5),
    slots: int(rand, 0, 2 ** 32 - 1),
    freeSlots: int(rand, 0, 2 ** 32 - 1),
    held,
    running: running.slice(0, 4096),
    codeCid: randomCid(rand),
    inputCid: randomCid(rand),
    runtime: pick(rand, ['js', 'wasm', '', 'x'.repeat(int(rand, 1, 300))]),
    ctx: pick(rand, ['{}', '{"task":1}', '{', 'null', '']),
    memoryMiB: int(rand, 0, 2 ** 32 - 1),
    timeMs: int(rand, 0, 2 ** 32 - 1),
    leaseMs: int(rand, 0, 2 ** 32 - 1),
    ok: rand() < 0.5,
    outputCid: randomCid(rand),
    output: randomBytes(rand, rand() < 0.95 ? int(rand, 0, 200) : int(rand, 1000, 64_000)),
    outputBytes: int(rand, 0, 2 ** 50),
    error: 'e'.repeat(int(rand, 0, 100)),
    errorName: 'X',
    elapsedMs: rand() < 0.1 ? Number.NaN : rand() * 1e9
  }))
}

/**
 * /lepton/tasks/1.0.0: out-of-order messages (RESULT, HEARTBEAT, AWARD,
 * DONE before any BID), BIDs for jobs that do not exist, then a tail of more
 * messages and hostile frames after the daemon has had its say.
 */
export function tasksPlan (rand: Rand, framesPerStream: number): StreamPlan {
  const writes: Write[] = []
  const first = rand() < 0.75
    ? frame(randomTaskMessage(rand, rand() < 0.2 ? TASK_MSG.BID : pick(rand, [TASK_MSG.RESULT, TASK_MSG.HEARTBEAT, TASK_MSG.AWARD, TASK_MSG.DONE, TASK_MSG.CANCEL, 0, 7, 255])))
    : hostileFrame(rand, MAX_TASK_FRAME_BYTES, 22)
  writes.push({ bytes: first, frames: 1 })
  const tail: Uint8Array[] = []
  for (let i = framesPerStream - 1; i > 0; i--) {
    tail.push(rand() < 0.8 ? frame(randomTaskMessage(rand, int(rand, 0, 7))) : hostileFrame(rand, MAX_TASK_FRAME_BYTES, 22))
  }
  if (rand() < 0.02) tail.push(frame(randomBytes(rand, MAX_TASK_FRAME_BYTES + 1))) // a whole frame just over the limit
  if (rand() < 0.02) tail.push(frame(new Uint8Array(MAX_TASK_FRAME_BYTES - 16).fill(0x0b))) // start-groups nested 300k deep
  if (tail.length > 0) writes.push({ bytes: concat(...tail), frames: tail.length })
  // 200k empty frames (each a valid, all-default message): counted as one attack unit
  if (rand() < 0.05) writes.push({ bytes: new Uint8Array(200_000), frames: 1 })
  return { writes, ending: ending(rand) }
}

/** Random and mutated task offers for the offers topic. */
export function hostileOffer (rand: Rand, nowMs: number): Uint8Array {
  const valid = (): Uint8Array => OfferCodec.encode({
    jobId: `job-${int(rand, 0, 9)}`, codeCid: rawCid(randomBytes(rand, 8)).bytes, runtime: 'js', pending: 1, inputs: [], memoryMiB: 64, timeMs: 1000, createdAtMs: nowMs, seq: nowMs
  })
  switch (int(rand, 0, 7)) {
    case 0: return randomBytes(rand, int(rand, 0, 500))
    case 1: return flipBits(rand, valid())
    case 2: { const v = valid(); return v.subarray(0, int(rand, 0, v.byteLength - 1)) }
    case 3: return concat(valid(), randomBytes(rand, 9000)) // oversized
    case 4: return OfferCodec.encode({ jobId: '../../x', codeCid: randomCid(rand), runtime: 'python', pending: 0, inputs: [randomCid(rand)], memoryMiB: 0, timeMs: 0, createdAtMs: nowMs + 10 * 60_000, seq: 0 })
    case 5: return wrongTypes(rand, 9)
    case 6: return OfferCodec.encode({ jobId: 'ok', codeCid: rawCid(Uint8Array.of(1)).bytes, runtime: 'js', pending: 1, inputs: [], memoryMiB: 64, timeMs: 1000, createdAtMs: nowMs + 3_600_000, seq: nowMs }) // from the future
    default: return concat(valid(), Uint8Array.of(0x0e)) // trailing invalid wire type
  }
}

/** Random and mutated routing announcements for the routing topic. */
export function hostileAnnouncement (rand: Rand, nowMs: number, somePeer: string): Uint8Array {
  const valid = (): Uint8Array => encodeAnnouncement({
    coordinate: { vec: [rand(), rand(), rand(), rand(), rand(), rand(), rand(), rand()], height: rand(), error: rand(), adjustment: 0 },
    links: [{ peerId: somePeer, rttMs: rand() * 10 }],
    timestampMs: nowMs
  }, peerIdFromString)
  switch (int(rand, 0, 5)) {
    case 0: return randomBytes(rand, int(rand, 0, 500))
    case 1: return flipBits(rand, valid())
    case 2: { const v = valid(); return v.subarray(0, int(rand, 0, v.byteLength - 1)) }
    case 3: return concat(valid(), randomBytes(rand, 9000)) // oversized
    case 4: return wrongTypes(rand, 7)
    default: return encodeAnnouncement({ coordinate: { vec: [Number.NaN, 1], height: -1, error: Infinity, adjustment: 0 }, links: [], timestampMs: nowMs }, peerIdFromString)
  }
}

function flipBits (rand: Rand, bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes)
  for (let i = int(rand, 1, 4); i > 0 && out.byteLength > 0; i--) {
    const at = int(rand, 0, out.byteLength - 1)
    out[at] = (out[at] as number) ^ (1 << int(rand, 0, 7))
  }
  return out
}
