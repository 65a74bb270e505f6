/**
 * Offer validation, shared by the gossip validator and tests: size before
 * decoding, schema, field ranges, freshness and replay.
 */
import { CID } from 'multiformats/cid'
import { MAX_OFFER_BYTES, OFFER_MAX_SKEW_MS, OFFER_TTL_MS } from './constants.ts'
import { InvalidOfferError } from './errors.ts'
import { OfferCodec } from './messages.ts'
import type { Offer } from './messages.ts'

export type OfferVerdict = 'accept' | 'reject' | 'ignore'

/** Decodes and checks an offer; throws InvalidOfferError on anything malformed. */
export function decodeOffer (data: Uint8Array): Offer {
  if (data.byteLength > MAX_OFFER_BYTES) throw new InvalidOfferError(`offer of ${data.byteLength} bytes exceeds ${MAX_OFFER_BYTES}`)
  let offer: Offer
  try {
    offer = OfferCodec.decode(data)
  } catch (err) {
    throw new InvalidOfferError(`offer does not decode: ${(err as Error).message}`)
  }
  if (!/^[0-9a-z-]{1,64}$/.test(offer.jobId)) throw new InvalidOfferError('offer has a malformed job id')
  if (offer.runtime !== 'js' && offer.runtime !== 'wasm') throw new InvalidOfferError(`offer names unknown runtime "${offer.runtime}"`)
  try {
    CID.decode(offer.codeCid)
    for (const c of offer.inputs) CID.decode(c)
  } catch {
    throw new InvalidOfferError('offer carries a malformed CID')
  }
  if (offer.memoryMiB < 1 || offer.timeMs < 1) throw new InvalidOfferError('offer has no task limits')
  if (offer.pending < 1) throw new InvalidOfferError('offer has no pending tasks')
  return offer
}

/**
 * Gossip verdict for an offer from `from`: reject what is malformed (the
 * sender is penalised by gossipsub's scoring), ignore what is stale or
 * replayed (it may be an honest duplicate).
 */
export function judgeOffer (data: Uint8Array, lastSeq: number | undefined, nowMs: number): { verdict: OfferVerdict, offer?: Offer } {
  let offer: Offer
  try {
    offer = decodeOffer(data)
  } catch {
    return { verdict: 'reject' }
  }
  if (offer.createdAtMs > nowMs + OFFER_MAX_SKEW_MS) return { verdict: 'reject' }
  if (offer.createdAtMs + OFFER_TTL_MS < nowMs) return { verdict: 'ignore' }
  if (lastSeq != null && offer.seq <= lastSeq) return { verdict: 'ignore' }
  return { verdict: 'accept', offer }
}
