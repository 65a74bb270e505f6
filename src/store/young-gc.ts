/**
 * A young-generation GC every few MiB of blocks moved (served or fetched).
 *
 * Why: every chunk libp2p reads, decrypts or encrypts is a fresh buffer
 * outside the JS heap, dead a moment later, and V8 frees such memory only when
 * it collects the small objects that hold it. While a daemon moves data it
 * allocates little on the JS heap itself, so young collections are rare; the
 * dead buffers pile up outside the heap until their total makes V8 start a
 * full incremental marking, which it did every ~70 ms during a 256 MiB fetch,
 * ~20-25% of each daemon's CPU (~25-50 full collections per 256 MiB on each
 * side; docs/STORE.md, eleventh session). A young collection of such a heap
 * takes ~0.05-1 ms and frees the buffers before they add up: the serving
 * daemon's CPU per 256 MiB fell from ~1.6 s to ~0.8 s.
 *
 * The collector comes from V8's gc extension, taken in a context of its own
 * and the flag put back at once, so no other context (the sandbox's included)
 * gets a `gc` global.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { YOUNG_GC_EVERY_BYTES } from './constants.ts'

type Collect = () => void

export interface YoungGcInit {
  /** @default YOUNG_GC_EVERY_BYTES */
  everyBytes?: number
  /** The collection to run; @default V8's young-generation GC */
  collect?: Collect
}

/** Counts bytes moved and collects the young generation each time `everyBytes` more have gone by. */
export class YoungGc {
  private readonly everyBytes: number
  private readonly collect: Collect
  private movedBytes = 0

  constructor (init: YoungGcInit = {}) {
    this.everyBytes = init.everyBytes ?? YOUNG_GC_EVERY_BYTES
    this.collect = init.collect ?? (() => { v8YoungGc()() })
  }

  moved (bytes: number): void {
    this.movedBytes += bytes
    if (this.movedBytes < this.everyBytes) return
    this.movedBytes = 0
    this.collect()
  }
}

let v8Collect: Collect | undefined

/** V8's young-generation GC (a no-op where the gc extension cannot be had). */
function v8YoungGc (): Collect {
  if (v8Collect != null) return v8Collect
  try {
    const exposed = typeof (globalThis as { gc?: unknown }).gc === 'function'
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as (options: { type: 'minor' }) => void
    if (!exposed) setFlagsFromString('--no-expose-gc')
    v8Collect = () => { gc({ type: 'minor' }) }
  } catch {
    v8Collect = () => {}
  }
  return v8Collect
}

/** The one the exchange and the fetcher of this process share: they count the same buffers. */
export const transferYoungGc = new YoungGc()
