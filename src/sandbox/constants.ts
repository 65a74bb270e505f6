/** Function names a job module may export, in the order they run. */
export const TASK_FUNCTIONS = ['map', 'combine', 'reduce'] as const

/** Seed of Math.random for combine/reduce (map uses ctx.seed). */
export const REDUCE_SEED = 0x6c6570 // 'lep'

/** Time and memory allowed to `inspect` a JS module's top level. */
export const INSPECT_LIMITS = { memoryMiB: 64, timeMs: 2000 }

/** Inspected modules remembered by digest of their source. */
export const INSPECT_CACHE_ENTRIES = 64

/** isolated-vm refuses isolates below 8 MiB. */
export const MIN_ISOLATE_MIB = 8

/** Extra wall-clock time before the watchdog kills an isolate whose own timeout did not fire. */
export const WATCHDOG_GRACE_MS = 100

/** WebAssembly page: 64 KiB. */
export const WASM_PAGE_BYTES = 65536

/** Bytes of a failed wasm task's stderr kept for the error message. */
export const STDERR_TAIL_BYTES = 2048

/** Name the wasm program sees as argv[0]. */
export const WASM_PROGRAM_NAME = 'task'
