/**
 * Base of every error lepton raises on purpose. `expected` errors are conditions
 * a user can fix (bad flag, no daemon, port in use): the CLI prints their message
 * on one line, with no stack trace.
 */
export class LeptonError extends Error {
  readonly expected: boolean = true
  override name = 'LeptonError'
}
