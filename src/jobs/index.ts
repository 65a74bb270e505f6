/**
 * Jobs: map/reduce across the mesh. A submitter plans a job (module and
 * partitions stored by CID), offers its tasks by gossip, awards them to
 * bidding workers as leases, verifies and reduces the outputs, and journals
 * all of it so a restart resumes where it stopped. See docs/JOBS.md.
 */
import { JobsService } from './service.ts'
import type { JobsInit } from './service.ts'

export * from './errors.ts'
export type { JobsInit } from './service.ts'
export type { JobsService } from './service.ts'
export type { Disagreement, JobDetail, JobPlan, JobResult, JobState, JobSummary, SubmitRequest, TaskCounts, TaskInfo, TaskState } from './types.ts'
export { splitRecords, defaultPartitions } from './partition.ts'
export { lineageKey, rawCid } from './lineage.ts'

export function createJobs (init: JobsInit): JobsService {
  return new JobsService(init)
}
