import { LeptonError } from '../errors.ts'

export class RttTimeoutError extends LeptonError {
  override name = 'RttTimeoutError'
}

export class NotConnectedError extends LeptonError {
  override name = 'NotConnectedError'
}
