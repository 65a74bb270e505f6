import { LeptonError } from '../errors.ts'

/** A frame or message that breaks the protocol: the stream is closed, the peer may be penalised. */
export class ProtocolViolationError extends LeptonError {
  override name = 'ProtocolViolationError'
}

export class FrameTooLargeError extends ProtocolViolationError {
  override name = 'FrameTooLargeError'
}
