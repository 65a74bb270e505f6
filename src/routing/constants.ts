import { PROTOCOL_PREFIX } from '../node/constants.ts'

export const RTT_PROTOCOL = `${PROTOCOL_PREFIX}/rtt/1.0.0`

/** Bytes in one probe: u32 sequence number, then padding. */
export const PROBE_BYTES = 16

/**
 * Time between probes to each connected peer. An idle daemon in a 10-daemon
 * mesh used 3.4% CPU with 1 s (and announcements every 5 s), 2.9% with 2 s
 * (and 10 s), 1.9% with 5 s (and 30 s).
 */
export const RTT_INTERVAL_MS = 2000

/** A probe with no echo after this long counts as lost. */
export const RTT_TIMEOUT_MS = 5000

/** Samples in the median filter. */
export const RTT_WINDOW = 9

/** Weight of the newest median in the smoothed estimate. */
export const RTT_EWMA_ALPHA = 0.25

/** An echo stream may carry at most this many bytes per second before we drop it. */
export const RTT_MAX_ECHO_BYTES_PER_S = 64 * 1024

/** How often the connector checks the connection count. */
export const CONNECTOR_INTERVAL_MS = 2000

/** Dials the connector runs at once. */
export const CONNECTOR_PARALLEL_DIALS = 8

export const DIAL_TIMEOUT_MS = 10_000

/** Backoff between bootstrap attempts: starts here, doubles, caps below. */
export const BOOTSTRAP_BACKOFF_MIN_MS = 1000
export const BOOTSTRAP_BACKOFF_MAX_MS = 60_000

/** Backoff before redialling a peer that failed: starts here, doubles, caps below. */
export const PEER_BACKOFF_MIN_MS = 2000
export const PEER_BACKOFF_MAX_MS = 5 * 60_000

/**
 * Peers that join at the same moment are not yet in the DHT routing tables of
 * the peers they ask (kad-dht pings a new contact before adding it, and a
 * lookup answers from the table as it is), so the join lookup can miss them.
 * The first RANDOM_WALK_JOIN_COUNT walks after joining come this far apart;
 * after those the wait doubles from here on every walk.
 */
export const RANDOM_WALK_FIRST_INTERVAL_MS = 1000

/** Walks RANDOM_WALK_FIRST_INTERVAL_MS apart after the join lookup, while still short of connections. */
export const RANDOM_WALK_JOIN_COUNT = 5

/** Time between DHT random walks while short of connections and still finding new peers. */
export const RANDOM_WALK_INTERVAL_MS = 15_000

/** Walks that find nobody new back off up to this interval. */
export const RANDOM_WALK_MAX_INTERVAL_MS = 5 * 60_000

/** Dial candidates are re-read from the peer store at most this often after a discovery... */
export const CANDIDATES_MIN_AGE_MS = 500

/** ... and at least this often anyway. */
export const CANDIDATES_MAX_AGE_MS = 30_000

/** Gossip topic of coordinates and link tables. */
export const ROUTING_TOPIC = `${PROTOCOL_PREFIX}/routing/1.0.0`

/**
 * How often a peer considers gossiping its coordinate and measured links: it
 * does when they changed materially (see below) or the last announcement is
 * ROUTING_REFRESH_MS old. Every announcement reaches every peer, which checks
 * its signature: in an idle 20-daemon mesh, unchanged announcements every 10 s
 * were the largest part of the mesh's CPU after the signature checks of
 * duplicate copies (0.63 -> 0.42 of 2 cores without them).
 */
export const ROUTING_GOSSIP_INTERVAL_MS = 10_000

/** An unchanged coordinate and link table is announced again this often (keeps it from going stale). */
export const ROUTING_REFRESH_MS = 30_000

/** A link's RTT has changed materially when it moved by more than its jitter, this many ms ... */
export const ROUTING_CHANGE_MIN_MS = 1

/** ... and this fraction of what was announced. */
export const ROUTING_CHANGE_RATIO = 0.25

/** How often RTT samples feed the Vivaldi coordinate. */
export const VIVALDI_UPDATE_INTERVAL_MS = 1000

/** A gossiped entry older than this is forgotten (two and a half refresh periods: one lost announcement does not drop a peer). */
export const ROUTING_STALE_MS = 75_000

/** Announcements larger than this are rejected before decoding. */
export const ROUTING_MAX_MESSAGE_BYTES = 8192

/** Measured links one announcement may carry. */
export const ROUTING_MAX_LINKS = 64

/** An announcement stamped further than this from our clock is ignored (replays, broken clocks). */
export const ROUTING_MAX_CLOCK_SKEW_MS = 5 * 60_000

/** A peer pruned for topology is not redialled for this long. */
export const PRUNED_BACKOFF_MS = 10 * 60_000
/**
 * RTT samples a peer needs before pruning treats it as measured (until then
 * it is kept). One probe is not a measurement: a test run's CPU load once made
 * the nearest peer's first sample slower than a peer 60 ms away, and it was
 * pruned.
 */
export const PRUNE_MIN_SAMPLES = 3
