/** The lineage cache: outputs of finished tasks by lineage key, bounded. */
import type { LineageEntry } from './run.ts'

/**
 * Lineage of finished tasks, least recently used dropped first once it holds
 * more than `maxEntries` entries or `maxBytes` of inline outputs. (Unbounded,
 * a submitter kept every output of every job it ever ran, and read them all
 * back from the journals at each start.) The submitter's cache holds no
 * outputs (maxBytes 0): they go to its blockstore when a job succeeds, and a
 * hit reads them from there. Kept inline (~4 KiB per word-count task) they
 * grew its memory with every task until the old 64 MiB cap: +5 MiB in a
 * 10-minute soak. A worker's cache keeps the outputs it computed, inline.
 */
export class LineageCache extends Map<string, LineageEntry> {
  private bytes = 0
  private readonly maxEntries: number
  private readonly maxBytes: number

  constructor (maxEntries: number, maxBytes: number) {
    super()
    this.maxEntries = maxEntries
    this.maxBytes = maxBytes
  }

  /** Bytes of the inline outputs held. */
  get outputBytes (): number {
    return this.bytes
  }

  override get (key: string): LineageEntry | undefined {
    const entry = super.get(key)
    if (entry !== undefined) {
      // most recently used last
      super.delete(key)
      super.set(key, entry)
    }
    return entry
  }

  override set (key: string, entry: LineageEntry): this {
    this.delete(key)
    const { output } = entry
    // an output decoded from a task message is a view of the whole received chunk: keep only its bytes
    if (output != null && output.byteLength !== output.buffer.byteLength) entry = { ...entry, output: output.slice() }
    super.set(key, entry)
    this.bytes += entry.output?.byteLength ?? 0
    for (const oldest of this.keys()) {
      if (this.size <= this.maxEntries && this.bytes <= this.maxBytes) break
      this.delete(oldest)
    }
    return this
  }

  override delete (key: string): boolean {
    const entry = super.get(key)
    if (entry === undefined) return false
    this.bytes -= entry.output?.byteLength ?? 0
    return super.delete(key)
  }

  override clear (): void {
    this.bytes = 0
    super.clear()
  }
}
