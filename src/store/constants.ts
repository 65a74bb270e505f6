import { PROTOCOL_PREFIX } from '../node/constants.ts'

/** On-disk layout of blocks/ (checked at open): 1 one file per block, 2 pack files and an index log. */
export const BLOCKSTORE_VERSION = 2

/** A batch starts a new pack (committing the full one) once its pack reaches this size. */
export const PACK_MAX_BYTES = 64 * 1024 * 1024

/**
 * A batch appends its first blocks, up to this many bytes, to the store's
 * shared pack; past that, it writes packs of its own. Small writes (a job's
 * input, result and kept outputs, one fetched block) then add no pack file
 * each: a soak's submitter wrote ~4 pack files a job, each a file, an fsync
 * of it and of the folder, and an entry in memory until gc.
 */
export const SHARED_PACK_BATCH_BYTES = 1024 * 1024

/** A pack being written is fdatasynced in the background every this many bytes (early writeback). */
export const PACK_FLUSH_BYTES = 16 * 1024 * 1024

/** Blocks appended together are written with one writev of up to this many bytes. */
export const PACK_WRITE_GROUP_BYTES = 1024 * 1024

/** gc rewrites a pack whose live blocks take less than this share of it. */
export const COMPACT_MIN_LIVE = 0.5

/** Pack files kept open for reading. */
export const PACK_READ_HANDLES = 64

/** The index log is rewritten (live entries only) when it holds more records than this many per live block, plus slack. */
export const INDEX_LOG_MAX_RECORDS_PER_BLOCK = 2
export const INDEX_LOG_SLACK_RECORDS = 4096

/** Leaf size of the UnixFS importer: the same as `ipfs add --chunker size-262144`. */
export const CHUNK_BYTES = 262_144

/** Leaves being hashed and written at once during an import. */
export const IMPORT_WINDOW = 16

/** The importer's modules are loaded this long after the store starts (not during start-up). */
export const IMPORTER_PRELOAD_DELAY_MS = 2000

/** An import reads this many chunks per readv... */
export const FILE_READ_GROUP = 4

/** ...and has this many such reads in flight. */
export const FILE_READAHEAD = 2

/** Links per interior node of the balanced DAG (kubo's default). */
export const MAX_CHILDREN_PER_NODE = 174

/** Stored form: the codec byte (in the index and on the wire) says how the payload is encoded. */
export const CODEC_RAW = 0
export const CODEC_DEFLATE = 1

/** Blocks smaller than this are never compressed. */
export const COMPRESS_MIN_BYTES = 1024

/** Bytes whose entropy decides whether a block is worth trying to compress. */
export const COMPRESS_SAMPLE_BYTES = 4096

/** Above this many bits per byte a sample looks random: the block is not compressed. */
export const COMPRESS_MAX_ENTROPY = 7.2

/** Compress only if the result is at most this share of the original (saves >= 10%). */
export const COMPRESS_MAX_RATIO = 0.9

/** The block exchange protocol. */
export const BLOCKS_PROTOCOL = `${PROTOCOL_PREFIX}/blocks/1.0.0`

/** The replication (fetch-and-pin) request protocol. */
export const PIN_PROTOCOL = `${PROTOCOL_PREFIX}/pin/1.0.0`

/** Largest block we accept (IPFS's limit is 2 MiB; ours are <= 256 KiB + a header). */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024

/** Largest header frame on the block protocol (the block's bytes follow it, unframed). */
export const MAX_HEADER_BYTES = 1024

/** Wants outstanding per provider: the application-level flow-control window. */
export const WANT_WINDOW = 16

/** A want with no answer after this long is given to another provider. */
export const WANT_TIMEOUT_MS = 15_000

/** How often a block session looks for requests past their deadline (so a deadline may be overrun by up to this much). */
export const REQUEST_SWEEP_MS = 250

/** Default time allowed to find any provider of a CID. */
export const FIND_TIMEOUT_MS = 30_000

/** How long to wait for connected peers to answer "have?" before asking the DHT too. */
export const HAVE_TIMEOUT_MS = 1000

/** Provider records are republished this often. */
export const REPROVIDE_INTERVAL_MS = 6 * 60 * 60 * 1000

/** Bound on one provide (a DHT query and k ADD_PROVIDER messages). */
export const PROVIDE_TIMEOUT_MS = 60_000

/** Requests from one peer answered at once (disk reads overlap). */
export const SERVE_CONCURRENCY = 8

/** Blocks read ahead while a file is streamed out. */
export const READ_LOOKAHEAD = 8

/** A peer that serves a block not matching its CID is refused this long. */
export const FORGED_BLOCK_BAN_MS = 60 * 60 * 1000

/**
 * Unpinned data the store keeps before it runs gc by itself (StoreInit.cacheBytes):
 * 4 GiB, the order of kubo's default StorageMax (10 GB) on a machine that
 * also computes. Config: store.cacheMiB.
 */
export const DEFAULT_CACHE_BYTES = 4 * 1024 * 1024 * 1024
/** How often the store compares its size with the cache budget. */
export const CACHE_CHECK_MS = 10_000

/** Blocks moved (served or fetched) between two young-generation GCs (store/young-gc.ts says why). */
export const YOUNG_GC_EVERY_BYTES = 2 * 1024 * 1024

/** Free disk space that other peers' pin requests must leave (config: replication.minFreeMiB). */
export const DEFAULT_PIN_MIN_FREE_BYTES = 1024 * 1024 * 1024

/** How often a fetch for another peer's pin request looks at the free disk space. */
export const PIN_DISK_CHECK_MS = 1000
