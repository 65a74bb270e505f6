import { LeptonError } from '../errors.ts'

/** An error the API server answers with a given HTTP status. */
export class ApiError extends LeptonError {
  override name = 'ApiError'
  readonly status: number = 500
}

export class BadRequestError extends ApiError {
  override name = 'BadRequestError'
  override readonly status = 400
}

export class UnauthorizedError extends ApiError {
  override name = 'UnauthorizedError'
  override readonly status = 401
}

export class NotFoundError extends ApiError {
  override name = 'NotFoundError'
  override readonly status = 404
}

export class MethodNotAllowedError extends ApiError {
  override name = 'MethodNotAllowedError'
  override readonly status = 405
}

export class PayloadTooLargeError extends ApiError {
  override name = 'PayloadTooLargeError'
  override readonly status = 413
}

export class AddressInUseError extends LeptonError {
  override name = 'AddressInUseError'
}

/** The API was asked to listen beyond loopback without the explicit opt-in. */
export class PublicApiError extends LeptonError {
  override name = 'PublicApiError'
}

/** The client found no daemon to talk to. */
export class DaemonNotRunningError extends LeptonError {
  override name = 'DaemonNotRunningError'
}

/** The daemon answered with an error; `name` is the daemon's error name. */
export class RemoteError extends LeptonError {
  override name = 'RemoteError'
  readonly status: number

  constructor (name: string, message: string, status: number) {
    super(message)
    this.name = name
    this.status = status
  }
}

/** A job ended without a result (a task failed every retry, timeout, cancel, reduce error). */
export class JobFailedError extends LeptonError {
  override name = 'JobFailedError'
  readonly jobId: string
  readonly state: string

  constructor (jobId: string, state: string, message: string) {
    super(message)
    this.jobId = jobId
    this.state = state
  }
}
