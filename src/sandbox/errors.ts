import { LeptonError } from '../errors.ts'

/** The task used more memory than `limits.memoryMiB` (JS heap, or wasm linear memory). */
export class MemoryLimitError extends LeptonError {
  override name = 'MemoryLimitError'
  readonly memoryMiB: number

  constructor (memoryMiB: number, detail?: string) {
    super(`memory limit of ${memoryMiB} MiB exceeded${detail != null ? ` (${detail})` : ''}`)
    this.memoryMiB = memoryMiB
  }
}

/** The task ran longer than `limits.timeMs` (wall clock). */
export class TimeLimitError extends LeptonError {
  override name = 'TimeLimitError'
  readonly timeMs: number

  constructor (timeMs: number) {
    super(`time limit of ${timeMs} ms exceeded`)
    this.timeMs = timeMs
  }
}

/**
 * The task's own code failed: it threw, returned something that is not JSON,
 * or (wasm) exited non-zero or trapped. The message is the task's message.
 */
export class TaskFailedError extends LeptonError {
  override name = 'TaskFailedError'
}

/** The code is not a usable job module: syntax error, no `map`, an import, not a WASI command... */
export class InvalidModuleError extends LeptonError {
  override name = 'InvalidModuleError'
}

/** The caller's signal aborted the run. */
export class SandboxAbortedError extends LeptonError {
  override name = 'SandboxAbortedError'

  constructor (message = 'task aborted') {
    super(message)
  }
}

/** `run` or `inspect` after `close()`. */
export class SandboxClosedError extends LeptonError {
  override name = 'SandboxClosedError'

  constructor () {
    super('the sandbox is closed')
  }
}
