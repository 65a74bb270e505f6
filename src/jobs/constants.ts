/** Default retries of a task that throws, on other workers. */
export const DEFAULT_RETRIES = 2

/** A worker must heartbeat at least this often or lose its leases. */
export const LEASE_MS = 5000

/** Worker heartbeat interval. */
export const HEARTBEAT_MS = 1000

/** How often a submitter re-publishes an offer while tasks wait for workers. */
export const OFFER_INTERVAL_MS = 1000

/**
 * Awards in flight per worker slot: some running, the rest waiting, so no
 * slot idles for a round trip; refilled in batches once half came back.
 */
export const AWARDS_PER_SLOT = 8

/** A running task gets a backup copy on an idle worker once it has run this many times the median task time. */
export const BACKUP_AFTER_MEDIAN = 1.5

/** ... and at least this long. */
export const BACKUP_MIN_MS = 500

/** Copies of one task running at once for speed (verification may ask for more). */
export const MAX_BACKUP_COPIES = 2

/** Largest partition a worker accepts. */
export const MAX_PARTITION_BYTES = 256 * 1024 * 1024

/** Largest module (code). */
export const MAX_MODULE_BYTES = 16 * 1024 * 1024

/** Tasks a submitter keeps in one job (bounded queue: pending tasks are metadata only). */
export const MAX_TASKS = 100_000

/** Jobs a daemon runs at once as submitter. */
export const MAX_ACTIVE_JOBS = 64

/** Journal lines are flushed together at most this often. */
export const JOURNAL_FLUSH_MS = 20
