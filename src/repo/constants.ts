/** Version of the on-disk layout; bumped when a migration is needed. */
export const REPO_VERSION = 1

/** Version of config.json's schema. */
export const CONFIG_VERSION = 1

export const FILES = {
  version: 'version',
  config: 'config.json',
  identity: 'identity.key',
  token: 'api.token',
  swarmKey: 'swarm.key',
  lock: 'daemon.lock',
  datastore: 'datastore'
} as const

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/4680']
export const DEFAULT_API = '127.0.0.1:4681'

/**
 * Bounds on the DHT provider records the datastore holds for other peers.
 * kad-dht stores any peer's ADD_PROVIDER for itself, for as many CIDs as it
 * sends (48 h each), and the datastore keeps every record in memory (~250
 * bytes with its bookkeeping) and on disk (a file each): unbounded, one peer
 * could fill both. Over a bound the oldest record of the peer holding the
 * most goes (a busy honest provider keeps its newest records findable); the
 * daemon's own records are never dropped. A soak submitter announces ~1 CID a
 * job: 900 records after 10 minutes at 90 jobs a minute.
 */
export const PROVIDER_RECORD_LIMITS = { perPeer: 20_000, total: 50_000 } as const

/**
 * A peer record (`/peers/<id>`) that differs from the one on disk only in its
 * `updated` time is written to disk at most this often. libp2p's peer store
 * writes a record on every merge, changed or not (it stamps `updated` on each),
 * and merges come with every identify and every peer in every DHT answer: each
 * a datastore-fs mkdir + write + rename. Reads are served from memory, so only
 * the disk copy's `updated` lags, by at most this much (peer expiry at restart
 * counts from it).
 */
export const PEER_RECORD_REFRESH_MS = 10 * 60_000
