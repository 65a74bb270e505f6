import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { MAX_OFFER_BYTES, MAX_OFFER_INPUTS, OFFER_MAX_SKEW_MS, OFFER_TTL_MS, OfferCodec, decodeOffer, judgeOffer } from '../../src/market/index.ts'
import { mulberry32 } from '../../src/random.ts'
import type { Offer } from '../../src/market/index.ts'

const NOW = 1_700_000_000_000

async function cidOf (text: string): Promise<Uint8Array> {
  return CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode(text))).bytes
}

const CODE_CID = await cidOf('code')
const INPUT_CIDS = [await cidOf('in-0'), await cidOf('in-1')]

function offer (fields: Partial<Offer> = {}): Offer {
  return {
    jobId: 'lq3x9a-0f1e2d',
    codeCid: CODE_CID,
    runtime: 'js',
    pending: 12,
    inputs: INPUT_CIDS,
    memoryMiB: 256,
    timeMs: 60_000,
    createdAtMs: NOW,
    seq: 5,
    ...fields
  }
}

const encode = (fields: Partial<Offer> = {}): Uint8Array => OfferCodec.encode(offer(fields))

describe('decodeOffer', () => {
  it('decodes a valid offer with every field', () => {
    const o = offer()
    expect(decodeOffer(OfferCodec.encode(o))).toEqual(o)
    // wasm is a runtime too
    expect(decodeOffer(encode({ runtime: 'wasm' })).runtime).toBe('wasm')
  })

  it('rejects an offer larger than MAX_OFFER_BYTES before decoding it', () => {
    // valid protobuf, padded with an unknown field: decoding alone would accept it
    const valid = encode()
    const pad = MAX_OFFER_BYTES - valid.byteLength + 1 - 3
    const unknownField = Uint8Array.from([(15 << 3) | 2, 0x80 | (pad & 0x7f), pad >> 7, ...new Uint8Array(pad)])
    const oversized = new Uint8Array([...valid, ...unknownField])
    expect(oversized.byteLength).toBe(MAX_OFFER_BYTES + 1)
    expect(() => decodeOffer(oversized)).toThrow(/exceeds/)
    expect(() => decodeOffer(oversized)).toThrow(expect.objectContaining({ name: 'InvalidOfferError' }))
    // the same offer one byte shorter (at the limit) is fine
    const atLimit = new Uint8Array([...valid, (15 << 3) | 2, 0x80 | ((pad - 1) & 0x7f), (pad - 1) >> 7, ...new Uint8Array(pad - 1)])
    expect(atLimit.byteLength).toBe(MAX_OFFER_BYTES)
    expect(decodeOffer(atLimit).jobId).toBe('lq3x9a-0f1e2d')
  })

  it('rejects garbage bytes', () => {
    const rand = mulberry32(7)
    for (let i = 0; i < 200; i++) {
      const garbage = Uint8Array.from({ length: 1 + Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))
      expect(() => decodeOffer(garbage)).toThrow()
      expect(judgeOffer(garbage, undefined, NOW).verdict).toBe('reject')
    }
  })

  // Bug: decodeOffer promises InvalidOfferError on anything malformed, but bytes
  // that are not protobuf at all escape as the codec's ProtocolViolationError
  // (src/market/offers.ts, the OfferCodec.decode call is not wrapped).
  it('throws InvalidOfferError (not the codec\'s error) on bytes that are not protobuf', () => {
    // field 1 (string) claiming 100 bytes with 1 present
    expect(() => decodeOffer(Uint8Array.from([0x0a, 100, 0x61]))).toThrow(expect.objectContaining({ name: 'InvalidOfferError' }))
  })

  it('rejects a malformed job id', () => {
    for (const jobId of ['', 'UPPER', 'has space', 'a/b', '../x', 'x'.repeat(65), 'é']) {
      expect(() => decodeOffer(OfferCodec.encode({ ...offer(), jobId })), jobId).toThrow(/job id/)
    }
    expect(decodeOffer(encode({ jobId: 'x'.repeat(64) })).jobId).toHaveLength(64)
  })

  it('rejects an unknown runtime', () => {
    for (const runtime of ['', 'python', 'JS', 'js ']) {
      expect(() => decodeOffer(OfferCodec.encode({ ...offer(), runtime }))).toThrow(/runtime/)
    }
  })

  it('rejects a malformed code or input CID', () => {
    const bad = Uint8Array.from([0x01, 0x55, 0x12, 0x20, 1, 2, 3]) // digest cut short
    expect(() => decodeOffer(OfferCodec.encode({ ...offer(), codeCid: bad }))).toThrow(/CID/)
    expect(() => decodeOffer(OfferCodec.encode({ ...offer(), codeCid: new Uint8Array(0) }))).toThrow(/CID/)
    expect(() => decodeOffer(OfferCodec.encode({ ...offer(), inputs: [CODE_CID, bad] }))).toThrow(/CID/)
    expect(() => decodeOffer(OfferCodec.encode({ ...offer(), inputs: [new TextEncoder().encode('bafy-not-binary')] }))).toThrow(/CID/)
  })

  it('rejects more than MAX_OFFER_INPUTS inputs', () => {
    const cid = CODE_CID
    expect(decodeOffer(encode({ inputs: Array.from({ length: MAX_OFFER_INPUTS }, () => cid) })).inputs).toHaveLength(MAX_OFFER_INPUTS)
    const tooMany = encode({ inputs: Array.from({ length: MAX_OFFER_INPUTS + 1 }, () => cid) })
    expect(() => decodeOffer(tooMany)).toThrow()
    expect(judgeOffer(tooMany, undefined, NOW).verdict).toBe('reject')
  })

  it('rejects zero task limits', () => {
    expect(() => decodeOffer(encode({ memoryMiB: 0 }))).toThrow(/limits/)
    expect(() => decodeOffer(encode({ timeMs: 0 }))).toThrow(/limits/)
  })
})

describe('judgeOffer', () => {
  it('accepts a fresh valid offer and returns it', () => {
    const o = offer()
    expect(judgeOffer(OfferCodec.encode(o), undefined, NOW)).toEqual({ verdict: 'accept', offer: o })
    expect(judgeOffer(OfferCodec.encode(o), 4, NOW).verdict).toBe('accept')
  })

  it('rejects what is malformed, without an offer', () => {
    expect(judgeOffer(encode({ runtime: 'python' }), undefined, NOW)).toEqual({ verdict: 'reject' })
    expect(judgeOffer(new Uint8Array(MAX_OFFER_BYTES + 1), undefined, NOW)).toEqual({ verdict: 'reject' })
  })

  it('rejects an offer dated beyond the allowed clock skew, accepts one within it', () => {
    expect(judgeOffer(encode({ createdAtMs: NOW + OFFER_MAX_SKEW_MS + 1 }), undefined, NOW).verdict).toBe('reject')
    expect(judgeOffer(encode({ createdAtMs: NOW + OFFER_MAX_SKEW_MS }), undefined, NOW).verdict).toBe('accept')
  })

  it('ignores an expired offer, accepts one at its TTL', () => {
    expect(judgeOffer(encode({ createdAtMs: NOW - OFFER_TTL_MS - 1 }), undefined, NOW)).toEqual({ verdict: 'ignore' })
    expect(judgeOffer(encode({ createdAtMs: NOW - OFFER_TTL_MS }), undefined, NOW).verdict).toBe('accept')
    // an offer with no date at all is very old
    expect(judgeOffer(encode({ createdAtMs: 0 }), undefined, NOW).verdict).toBe('ignore')
  })

  it('ignores a replayed or older seq', () => {
    const data = encode({ seq: 5 })
    expect(judgeOffer(data, 5, NOW)).toEqual({ verdict: 'ignore' })
    expect(judgeOffer(data, 6, NOW)).toEqual({ verdict: 'ignore' })
    expect(judgeOffer(data, 4, NOW).verdict).toBe('accept')
    // seq 0 is a first offer when nothing was seen from the sender
    expect(judgeOffer(encode({ seq: 0 }), undefined, NOW).verdict).toBe('accept')
    expect(judgeOffer(encode({ seq: 0 }), 0, NOW).verdict).toBe('ignore')
  })

  it('keeps seq and dates beyond 32 bits', () => {
    const seq = 2 ** 40 + 3
    const r = judgeOffer(encode({ seq }), 2 ** 40 + 2, NOW)
    expect(r.verdict).toBe('accept')
    expect(r.offer?.seq).toBe(seq)
    expect(r.offer?.createdAtMs).toBe(NOW)
  })
})
