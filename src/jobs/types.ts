/** What jobs look like to the API, the client and the journal. */

export interface SubmitRequest {
  /** Path on this machine of the map module: JavaScript (ESM) or a WASI command (.wasm). */
  module: string
  /** Path of a JavaScript module whose `reduce` combines the outputs. @default the module's own; for wasm a built-in sum */
  reduceModule?: string
  /** A file, a folder (one partition per file) or a CID; none for jobs that make their own data (e.g. Monte-Carlo). */
  input?: string
  /** Partitions of a file input, split on newlines. @default about 1 MiB each */
  partitions?: number
  /** Tasks of a job without input (each gets its own ctx.task and ctx.seed). @default 1 */
  tasks?: number
  /** Run each task on this many distinct workers and take the majority output. @default 1 */
  verify?: number
  /** Retries of a task that fails, on other workers. @default 2 */
  retries?: number
  /** Seconds before the job fails. @default 0 (no limit) */
  timeoutS?: number
  /** Strings handed to map as ctx.args. */
  args?: Record<string, string>
  /** Per-task memory cap, MiB (workers apply the lower of theirs and this). */
  memoryMiB?: number
  /** Per-task time cap, ms. */
  timeMs?: number
  /** Base of the tasks' seeds. @default 0 */
  seed?: number
}

/** A planned job: what the journal's first line holds and the resumed run starts from. */
export interface JobPlan {
  jobId: string
  createdAtMs: number
  /** Name of the module file, for people. */
  module: string
  runtime: 'js' | 'wasm'
  codeCid: string
  /** The module doing reduce (and combine). */
  reduceCid: string
  /** Whether reduce and combine exist there. */
  hasReduce: boolean
  inputCid: string | null
  /** One per task: its input (null: no input) and size. */
  partitions: Array<{ cid: string | null, bytes: number }>
  verify: number
  retries: number
  timeoutS: number
  args: Record<string, string>
  memoryMiB: number
  timeMs: number
  seed: number
}

export type JobState = 'running' | 'succeeded' | 'failed' | 'cancelled'
export type TaskState = 'pending' | 'running' | 'done' | 'failed'

export interface TaskCounts {
  total: number
  done: number
  running: number
  pending: number
  failed: number
  /** Results received (more than total when tasks were retried, verified or backed up). */
  runs: number
  /** Tasks answered from the lineage table without running. */
  cached: number
}

export interface JobSummary {
  jobId: string
  state: JobState
  module: string
  createdAtMs: number
  elapsedMs: number
  tasks: TaskCounts
  /** Accepted task outputs per worker peer id. */
  workers: Record<string, number>
  resultCid: string | null
  error: string | null
  /** Times the submitter's daemon picked this job up again after a restart. */
  resumed: number
}

export interface TaskInfo {
  index: number
  state: TaskState
  inputCid: string | null
  outputCid: string | null
  /** Workers running it now. */
  running: string[]
  /** Workers whose output was accepted. */
  doneBy: string[]
  /** Results received for it, over all daemon runs (1 = ran once). */
  runs: number
  failures: number
  errors: string[]
  /** Daemon run (0 = first, 1 = after the first restart...) in which it finished. */
  finishedInRun: number | null
  cached: boolean
  /** Award sent to first good result received, on the submitter, ms (null if not run in this daemon run). */
  latencyMs: number | null
  /** Time the worker spent on it (fetching code and input, running), ms. */
  workerMs: number | null
}

export interface Disagreement {
  task: number
  worker: string
  outputCid: string
  acceptedCid: string
}

export interface JobDetail extends JobSummary {
  result: unknown
  verify: number
  taskList: TaskInfo[]
  disagreements: Disagreement[]
}

/** What `lepton submit --json` prints. */
export interface JobResult {
  jobId: string
  resultCid: string
  result: unknown
  tasks: TaskCounts
  workers: Record<string, number>
  elapsedMs: number
  disagreements: Disagreement[]
}
