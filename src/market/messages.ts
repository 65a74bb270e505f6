/** Wire messages of the market: gossip offers and the task stream. */
import { defineMessage } from '../wire/index.ts'
import { MAX_OFFER_INPUTS } from './constants.ts'

/** Published on OFFERS_TOPIC by a submitter with tasks waiting for workers. */
export interface Offer {
  jobId: string
  /** CID of the task code (map module). */
  codeCid: Uint8Array
  runtime: string
  /** Task copies still waiting for a worker. */
  pending: number
  /** Some pending tasks' input CIDs, so bidders can say which they already hold. */
  inputs: Uint8Array[]
  memoryMiB: number
  timeMs: number
  createdAtMs: number
  /** Increases with every offer of this submitter (replays are dropped). */
  seq: number
}

export const OfferCodec = defineMessage<Offer>({
  jobId: { no: 1, type: 'string' },
  codeCid: { no: 2, type: 'bytes' },
  runtime: { no: 3, type: 'string' },
  pending: { no: 4, type: 'uint32' },
  inputs: { no: 5, type: 'bytes', repeated: true, maxItems: MAX_OFFER_INPUTS },
  memoryMiB: { no: 6, type: 'uint32' },
  timeMs: { no: 7, type: 'uint32' },
  createdAtMs: { no: 8, type: 'uint64' },
  seq: { no: 9, type: 'uint64' }
})

/** Message types on TASKS_PROTOCOL. */
export const TASK_MSG = {
  /** worker -> submitter, first frame: I want tasks of this job; how many I can take, which inputs I hold */
  BID: 1,
  /** submitter -> worker: run this task (a lease: keep heart-beating) */
  AWARD: 2,
  /** worker -> submitter: still alive, these are running, this many slots free */
  HEARTBEAT: 3,
  /** worker -> submitter: a task's output (CID, and the bytes when small) or its error */
  RESULT: 4,
  /** submitter -> worker: stop this task (another copy won, or the job ended) */
  CANCEL: 5,
  /** submitter -> worker: nothing more for you in this job; the stream closes */
  DONE: 6
} as const

export interface TaskMessage {
  type: number
  jobId: string
  task: number
  attempt: number
  slots: number
  freeSlots: number
  held: Uint8Array[]
  running: number[]
  codeCid: Uint8Array
  inputCid: Uint8Array
  runtime: string
  /** JSON of the map context: { task, tasks, seed, args } */
  ctx: string
  memoryMiB: number
  timeMs: number
  leaseMs: number
  ok: boolean
  outputCid: Uint8Array
  /** The output itself when at most INLINE_OUTPUT_BYTES. */
  output: Uint8Array
  outputBytes: number
  error: string
  errorName: string
  elapsedMs: number
}

export const TaskMessageCodec = defineMessage<TaskMessage>({
  type: { no: 1, type: 'uint32' },
  jobId: { no: 2, type: 'string' },
  task: { no: 3, type: 'uint32' },
  attempt: { no: 4, type: 'uint32' },
  slots: { no: 5, type: 'uint32' },
  freeSlots: { no: 6, type: 'uint32' },
  held: { no: 7, type: 'bytes', repeated: true, maxItems: MAX_OFFER_INPUTS },
  running: { no: 8, type: 'uint32', repeated: true, maxItems: 4096 },
  codeCid: { no: 9, type: 'bytes' },
  inputCid: { no: 10, type: 'bytes' },
  runtime: { no: 11, type: 'string' },
  ctx: { no: 12, type: 'string' },
  memoryMiB: { no: 13, type: 'uint32' },
  timeMs: { no: 14, type: 'uint32' },
  leaseMs: { no: 15, type: 'uint32' },
  ok: { no: 16, type: 'bool' },
  outputCid: { no: 17, type: 'bytes' },
  output: { no: 18, type: 'bytes' },
  outputBytes: { no: 19, type: 'uint64' },
  error: { no: 20, type: 'string' },
  errorName: { no: 21, type: 'string' },
  elapsedMs: { no: 22, type: 'double' }
})

/** A task message with every field at its default, to spread into. */
export function taskMessage (fields: Partial<TaskMessage> & { type: number }): TaskMessage {
  return {
    jobId: '',
    task: 0,
    attempt: 0,
    slots: 0,
    freeSlots: 0,
    held: [],
    running: [],
    codeCid: new Uint8Array(0),
    inputCid: new Uint8Array(0),
    runtime: '',
    ctx: '',
    memoryMiB: 0,
    timeMs: 0,
    leaseMs: 0,
    ok: false,
    outputCid: new Uint8Array(0),
    output: new Uint8Array(0),
    outputBytes: 0,
    error: '',
    errorName: '',
    elapsedMs: 0,
    ...definedOnly(fields),
    type: fields.type
  }
}

/** Fields given as undefined keep their defaults (as they would after a trip over the wire). */
function definedOnly<T extends object> (fields: T): Partial<T> {
  const out: Record<string, unknown> = {}
  for (const key in fields) if (fields[key] !== undefined) out[key] = fields[key]
  return out as Partial<T>
}
