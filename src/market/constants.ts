import { PROTOCOL_PREFIX } from '../node/constants.ts'

/** Gossip topic of task offers: one message per job and wave, never per task. */
export const OFFERS_TOPIC = `${PROTOCOL_PREFIX}/offers/1.0.0`

/** Long-lived stream between a worker and a submitter: bids, awards (leases), heartbeats, results. */
export const TASKS_PROTOCOL = `${PROTOCOL_PREFIX}/tasks/1.0.0`

/** Largest offer accepted from gossip. */
export const MAX_OFFER_BYTES = 8192

/** Input CIDs listed in one offer (for data locality in bids). */
export const MAX_OFFER_INPUTS = 64

/** An offer is valid this long after it was made. */
export const OFFER_TTL_MS = 30_000

/** Offers dated further than this in the future are ignored (clock skew). */
export const OFFER_MAX_SKEW_MS = 60_000

/** Largest frame on a task stream: an inline output plus its header. */
export const MAX_TASK_FRAME_BYTES = 320 * 1024

/** Outputs up to this size travel inline in the result frame; larger ones go through the store. */
export const INLINE_OUTPUT_BYTES = 256 * 1024

/** Offers accepted per submitter: a submitter publishes one a second per job waiting for workers. */
export const OFFER_FLOOD = { ratePerS: 100, burst: 200, banAfter: 200 }

/** Task streams (bids) accepted per worker: one per job it works on. */
export const BID_FLOOD = { ratePerS: 20, burst: 40, banAfter: 40 }

/** How long a flooding peer stays banned. */
export const FLOOD_BAN_MS = 10 * 60_000
