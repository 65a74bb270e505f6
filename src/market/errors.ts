import { LeptonError } from '../errors.ts'

/** An offer that fails validation (malformed, oversized, expired, replayed). */
export class InvalidOfferError extends LeptonError {
  override name = 'InvalidOfferError'
}
