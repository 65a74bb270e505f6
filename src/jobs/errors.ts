import { LeptonError } from '../errors.ts'

export class InvalidJobError extends LeptonError {
  override name = 'InvalidJobError'
}

export class JobNotFoundError extends LeptonError {
  override name = 'JobNotFoundError'
}

/** A task failed on every retry: the job fails with its message. */
export class TaskFailedAfterRetriesError extends LeptonError {
  override name = 'TaskFailedAfterRetriesError'
}

export class JobTimeoutError extends LeptonError {
  override name = 'JobTimeoutError'
}

export class JobCancelledError extends LeptonError {
  override name = 'JobCancelledError'
}

/** The job's journal cannot be read back (corrupt beyond its last line). */
export class JournalError extends LeptonError {
  override name = 'JournalError'
}
