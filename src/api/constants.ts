export const API_PREFIX = '/v1'

/** Largest request body the API reads. */
export const MAX_BODY_BYTES = 1024 * 1024

/** Client-side timeout of one API call. */
export const CLIENT_TIMEOUT_MS = 30_000
