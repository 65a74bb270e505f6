/**
 * The task market: submitters publish signed offers for batches of pending
 * tasks on a gossip topic; workers with free slots answer with a bid on a
 * direct stream; the submitter awards tasks by a pure scoring function of RTT,
 * data locality, load and past reliability. The protocol runs in jobs/; this
 * module holds its messages, validation and scoring.
 */
export * from './errors.ts'
export * from './constants.ts'
export { OfferCodec, TaskMessageCodec, TASK_MSG, taskMessage } from './messages.ts'
export type { Offer, TaskMessage } from './messages.ts'
export { decodeOffer, judgeOffer } from './offers.ts'
export type { OfferVerdict } from './offers.ts'
export { assignTasks, workerCost, reliability, DEFAULT_WEIGHTS } from './scoring.ts'
export type { Assignment, ScoringWeights, TaskView, WorkerView } from './scoring.ts'
export { FloodGuard } from './flood-guard.ts'
export type { FloodGuardConfig, FloodVerdict } from './flood-guard.ts'
