/**
 * A submitted job as the client sees it: progress events while it runs, then
 * its result. It follows the job by long polls, so a daemon restart in the
 * middle only pauses it (the daemon resumes the job from its journal).
 */
import { EventEmitter } from 'node:events'
import { DaemonNotRunningError, JobFailedError } from './errors.ts'
import type { JobDetail, JobResult, JobSummary } from '../jobs/index.ts'

export interface JobTransport {
  /** The summary while the job runs, its detail once ended. */
  wait(id: string, waitMs: number, signal?: AbortSignal): Promise<JobSummary | JobDetail>
  cancel(id: string): Promise<JobSummary>
}

/** How long the handle keeps trying while the daemon is away (restarting). */
const DAEMON_AWAY_MS = 60_000

export interface JobEvents {
  progress: [JobSummary]
}

export class Job extends EventEmitter<JobEvents> {
  readonly id: string
  private readonly transport: JobTransport
  private final?: Promise<JobDetail>
  private readonly pollMs: number

  constructor (id: string, transport: JobTransport, pollMs = 250) {
    super()
    this.id = id
    this.transport = transport
    this.pollMs = pollMs
  }

  /** Resolves with the job's detail once it has ended, emitting 'progress' along the way. */
  async finished (signal?: AbortSignal): Promise<JobDetail> {
    this.final ??= this.follow(signal)
    return await this.final
  }

  private async follow (signal?: AbortSignal): Promise<JobDetail> {
    let awaySince: number | undefined
    for (;;) {
      signal?.throwIfAborted()
      let detail: JobSummary | JobDetail
      try {
        detail = await this.transport.wait(this.id, this.pollMs, signal)
        awaySince = undefined
      } catch (err) {
        if (!(err instanceof DaemonNotRunningError)) throw err
        awaySince ??= Date.now()
        if (Date.now() - awaySince > DAEMON_AWAY_MS) throw err
        await new Promise(resolve => setTimeout(resolve, 500))
        continue
      }
      this.emit('progress', detail)
      if (detail.state !== 'running') return detail as JobDetail
    }
  }

  /** The result; throws JobFailedError when the job failed or was cancelled. */
  async result (signal?: AbortSignal): Promise<JobResult> {
    const d = await this.finished(signal)
    if (d.state !== 'succeeded' || d.resultCid == null) throw new JobFailedError(d.jobId, d.state, d.error ?? `job ${d.state}`)
    return { jobId: d.jobId, resultCid: d.resultCid, result: d.result, tasks: d.tasks, workers: d.workers, elapsedMs: d.elapsedMs, disagreements: d.disagreements }
  }

  async cancel (): Promise<void> {
    await this.transport.cancel(this.id)
  }
}
