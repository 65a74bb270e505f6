import { LeptonError } from '../errors.ts'

export class InvalidCidError extends LeptonError {
  override name = 'InvalidCidError'
}

export class BlockNotFoundError extends LeptonError {
  override name = 'BlockNotFoundError'
}

/** Bytes on disk or from a peer that do not hash to their CID. */
export class CorruptBlockError extends LeptonError {
  override name = 'CorruptBlockError'
}

export class UnsupportedHashError extends LeptonError {
  override name = 'UnsupportedHashError'
}

export class DiskFullError extends LeptonError {
  override name = 'DiskFullError'
}

export class StoreVersionError extends LeptonError {
  override name = 'StoreVersionError'
}

/** Nobody in reach had the content within the time allowed. */
export class ContentNotFoundError extends LeptonError {
  override name = 'ContentNotFoundError'
}

export class NotPinnedError extends LeptonError {
  override name = 'NotPinnedError'
}

/** A peer did not answer a request on the block stream in the time allowed. */
export class RequestTimeoutError extends LeptonError {
  override name = 'RequestTimeoutError'
}
