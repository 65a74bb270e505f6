/** The lineage cache: outputs of finished tasks by lineage key, bounded. */
import { CID } from 'multiformats/cid'
import type { LineageEntry } from './run.ts'
import type { Store } from '../store/index.ts'

/** What a job run needs of the lineage. */
export interface Lineage {
  get(key: string): LineageEntry | undefined
  set(key: string, entry: LineageEntry): void
  delete(key: string): boolean
}

/**
 * A hit's output: inline, or read from this peer's blockstore when the entry
 * says it is kept there (undefined if that block is gone: gc, or its job
 * never finished; the caller then runs the task again). Undefined too for an
 * entry with neither (a large output, fetched by CID).
 */
export async function hitOutput (hit: LineageEntry, store: Pick<Store, 'localBlock'>): Promise<Uint8Array | undefined> {
  if (hit.stored !== true) return hit.output
  return await store.localBlock(CID.parse(hit.outputCid)).catch(() => undefined)
}

/** Flag byte of an entry held as a string: the output is (not) in this peer's blockstore. */
const STORED = '\x01'
const NOT_STORED = '\x00'

/**
 * Lineage of finished tasks, least recently used dropped first once it holds
 * more than `maxEntries` entries or `maxBytes` of inline outputs. (Unbounded,
 * a submitter kept every output of every job it ever ran, and read them all
 * back from the journals at each start.) The submitter's cache holds no
 * outputs (maxBytes 0): they go to its blockstore when a job succeeds, and a
 * hit reads them from there. Kept inline (~4 KiB per word-count task) they
 * grew its memory with every task until the old 64 MiB cap: +5 MiB in a
 * 10-minute soak. A worker's cache does the same with the outputs it
 * computed, once they are written (src/jobs/worker.ts).
 *
 * An entry without an inline output is held as one flat string, a flag byte
 * and the output CID's bytes, not as an object and the CID's base32 text:
 * 210 bytes of heap an entry with its key and Map slot, against ~310 (845
 * while the text was still the rope multiformats builds). The submitter's
 * cache fills to its 4096 entries in a 10-minute soak.
 */
export class LineageCache implements Lineage {
  private readonly entries = new Map<string, string | LineageEntry>()
  private bytes = 0
  private readonly maxEntries: number
  private readonly maxBytes: number

  constructor (maxEntries: number, maxBytes: number) {
    this.maxEntries = maxEntries
    this.maxBytes = maxBytes
  }

  get size (): number {
    return this.entries.size
  }

  /** Bytes of the inline outputs held. */
  get outputBytes (): number {
    return this.bytes
  }

  /** Keys, least recently used first. */
  keys (): IterableIterator<string> {
    return this.entries.keys()
  }

  has (key: string): boolean {
    return this.entries.has(key)
  }

  get (key: string): LineageEntry | undefined {
    const held = this.entries.get(key)
    if (held === undefined) return undefined
    // most recently used last
    this.entries.delete(key)
    this.entries.set(key, held)
    return expand(held)
  }

  /** The entry without counting it as a use. */
  peek (key: string): LineageEntry | undefined {
    const held = this.entries.get(key)
    return held === undefined ? undefined : expand(held)
  }

  set (key: string, entry: LineageEntry): this {
    this.delete(key)
    const { output } = entry
    let held: string | LineageEntry = entry
    if (output == null) {
      held = compact(entry) ?? entry
    } else if (output.byteLength !== output.buffer.byteLength) {
      // an output decoded from a task message is a view of the whole received chunk: keep only its bytes
      held = { ...entry, output: output.slice() }
    }
    this.entries.set(key, held)
    this.bytes += outputBytes(held)
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break
      this.delete(oldest)
    }
    return this
  }

  delete (key: string): boolean {
    const held = this.entries.get(key)
    if (held === undefined) return false
    this.bytes -= outputBytes(held)
    return this.entries.delete(key)
  }

  clear (): void {
    this.bytes = 0
    this.entries.clear()
  }
}

function expand (held: string | LineageEntry): LineageEntry {
  if (typeof held !== 'string') return held
  return { outputCid: CID.decode(Buffer.from(held.slice(1), 'latin1')).toString(), stored: held[0] === STORED }
}

function outputBytes (held: string | LineageEntry): number {
  return typeof held === 'string' ? 0 : held.output?.byteLength ?? 0
}

/** The flat form, or undefined for an output CID that would not read back the same (kept as it came). */
function compact (entry: LineageEntry): string | undefined {
  let cid: CID
  try {
    cid = CID.parse(entry.outputCid)
  } catch {
    return undefined
  }
  // read back as base32 (v1) or base58 (v0): keep any other text as it came
  if (cid.toString() !== entry.outputCid) return undefined
  const { bytes } = cid
  // Buffer's latin1 decoding makes one flat one-byte string (a concatenation would make a rope)
  return Buffer.concat([Buffer.from(entry.stored === true ? STORED : NOT_STORED, 'latin1'), bytes]).toString('latin1')
}
