/**
 * The block index in memory: key -> where the block lies in the packs, with
 * nothing on the V8 heap per block. Each block has a 64-byte record (its key,
 * a CIDv1's bytes, and its location: pack, offset, length, codec) in pages of
 * 2048 records (128 KiB, allocated as needed and never moved), found through
 * an open-addressing hash table of record numbers (linear probing, at most
 * half full, deletion by shifting the cluster back, so no tombstones pile up).
 *
 * Why: with a Map from key string to slot, every block cost ~110 bytes of heap
 * (a 36-character string, a hash-table entry) that V8 carries at up to 1.5-2x
 * between collections. The index grows with every block stored: ~20 blocks a
 * job on a soak's submitter, its largest per-job growth (heap snapshots 2 and
 * 7.5 minutes into a run: +24,000 key strings, 1.4 MiB, plus the map's tables).
 * Here a block takes 64 bytes and 4-8 of table. Pages rather than arrays that
 * double: no copy of the whole index as it grows, and no large freed buffer
 * left in glibc's heap each time.
 *
 * Keys longer than KEY_BYTES (CIDs with longer digests) go to a small Map.
 * Iteration is in slot order (freed slots are reused), not insertion order;
 * deleting while iterating is safe.
 */
import { randomBytes } from 'node:crypto'
import type { PackEntry } from './pack-log.ts'

/** Records a page holds (a power of two). */
const PAGE_SLOTS = 2048
const PAGE_SHIFT = 11
const RECORD_BYTES = 64
/** Key bytes a record holds: a CIDv1 with a 32-byte digest is 36, 37 with a two-byte codec. */
const KEY_BYTES = 40
// a record: key bytes 0-39, key length 40, codec 41, then (as u32) hash, pack, length, (as f64) offset
const AT_KEY_LENGTH = 40
const AT_CODEC = 41
const U32_HASH = 11
const U32_PACK = 12
const U32_LENGTH = 13
const F64_OFFSET = 7
const U32_PER_RECORD = RECORD_BYTES / 4
const F64_PER_RECORD = RECORD_BYTES / 8
const INITIAL_TABLE = 2048
/** Table entry meaning "empty"; others are slot + 1. */
const EMPTY = 0
/** Key length byte of a slot whose key is in `long`. */
const LONG = 255
/** A character that is not a byte. */
const NOT_LATIN1 = /[\u0100-\uffff]/

/** One page of records, seen as bytes, 32-bit words and doubles. */
interface Page {
  u8: Uint8Array
  u32: Uint32Array
  f64: Float64Array
}

export class PackIndex {
  /** Keys longer than KEY_BYTES -> slot. */
  private readonly long = new Map<string, number>()
  /** Records; a record's key length byte: 0 a free slot, LONG a key in `long`, else the key's length + 1. */
  private readonly pages: Page[] = []
  /** Open addressing: slot + 1, or EMPTY. Capacity a power of two, at least twice the keys in it. */
  private table = new Uint32Array(INITIAL_TABLE)
  private inTable = 0
  private readonly free: number[] = []
  private used = 0
  /** Per index: nobody can pick keys that collide (an identity CID's bytes are the sender's choice). */
  private readonly seed = randomBytes(4).readUInt32LE(0)

  get size (): number {
    return this.inTable + this.long.size
  }

  has (key: string): boolean {
    return this.slotOf(key) >= 0
  }

  get (key: string): PackEntry | undefined {
    const slot = this.slotOf(key)
    return slot < 0 ? undefined : this.entryAt(slot)
  }

  set (key: string, entry: PackEntry): this {
    let slot = this.slotOf(key)
    if (slot < 0) {
      // keys are bytes as latin1; anything else would be stored wrong
      if (NOT_LATIN1.test(key)) throw new TypeError('index keys are latin1 strings of bytes')
      slot = this.free.pop() ?? this.newSlot()
      if (key.length > KEY_BYTES) {
        this.long.set(key, slot)
        this.setKeyLength(slot, LONG)
      } else {
        this.insert(key, slot)
      }
    }
    const { u8, u32, f64 } = this.page(slot)
    const r = slot & (PAGE_SLOTS - 1)
    u32[r * U32_PER_RECORD + U32_PACK] = entry.pack
    f64[r * F64_PER_RECORD + F64_OFFSET] = entry.offset
    u32[r * U32_PER_RECORD + U32_LENGTH] = entry.length
    u8[r * RECORD_BYTES + AT_CODEC] = entry.codec
    return this
  }

  delete (key: string): boolean {
    if (key.length > KEY_BYTES) {
      const slot = this.long.get(key)
      if (slot === undefined) return false
      this.long.delete(key)
      this.release(slot)
      return true
    }
    const mask = this.table.length - 1
    let i = this.find(key)
    if (i < 0) return false
    this.release((this.table[i] as number) - 1)
    this.inTable--
    // shift back the entries after the hole that probed past it (Knuth's algorithm R)
    let j = i
    for (;;) {
      j = (j + 1) & mask
      const at = this.table[j] as number
      if (at === EMPTY) break
      const home = this.hashAt(at - 1) & mask
      // the entry at j may move to the hole at i unless its home lies cyclically in (i, j]
      if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
        this.table[i] = at
        i = j
      }
    }
    this.table[i] = EMPTY
    return true
  }

  clear (): void {
    this.long.clear()
    this.table.fill(EMPTY)
    for (const { u8 } of this.pages) {
      for (let r = 0; r < PAGE_SLOTS; r++) u8[r * RECORD_BYTES + AT_KEY_LENGTH] = 0
    }
    this.inTable = 0
    this.free.length = 0
    this.used = 0
  }

  * keys (): IterableIterator<string> {
    for (const [key] of this) yield key
  }

  /** Entries in slot order; deleting while iterating is safe (slots do not move). */
  * [Symbol.iterator] (): IterableIterator<[string, PackEntry]> {
    const longKeys = new Map<number, string>()
    for (const [key, slot] of this.long) longKeys.set(slot, key)
    for (let slot = 0; slot < this.used; slot++) {
      const n = this.keyLengthAt(slot)
      if (n === 0) continue
      const key = n === LONG ? longKeys.get(slot) : this.keyAt(slot, n - 1)
      // a long key deleted meanwhile, its slot free or reused
      if (key === undefined || (n === LONG && this.long.get(key) !== slot)) continue
      yield [key, this.entryAt(slot)]
    }
  }

  private page (slot: number): Page {
    return this.pages[slot >>> PAGE_SHIFT] as Page
  }

  private keyLengthAt (slot: number): number {
    return this.page(slot).u8[(slot & (PAGE_SLOTS - 1)) * RECORD_BYTES + AT_KEY_LENGTH] as number
  }

  private setKeyLength (slot: number, value: number): void {
    this.page(slot).u8[(slot & (PAGE_SLOTS - 1)) * RECORD_BYTES + AT_KEY_LENGTH] = value
  }

  private hashAt (slot: number): number {
    return this.page(slot).u32[(slot & (PAGE_SLOTS - 1)) * U32_PER_RECORD + U32_HASH] as number
  }

  private keyAt (slot: number, n: number): string {
    const at = (slot & (PAGE_SLOTS - 1)) * RECORD_BYTES
    return String.fromCharCode.apply(null, this.page(slot).u8.subarray(at, at + n) as unknown as number[])
  }

  private hash (key: string): number {
    let h = this.seed ^ key.length
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
    // murmur3's finalizer: every key byte reaches the low bits the table uses
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
    return (h ^ (h >>> 16)) >>> 0
  }

  private slotOf (key: string): number {
    if (key.length > KEY_BYTES) return this.long.get(key) ?? -1
    const i = this.find(key)
    return i < 0 ? -1 : (this.table[i] as number) - 1
  }

  /** The table position holding `key`, or -1. */
  private find (key: string): number {
    const h = this.hash(key)
    const mask = this.table.length - 1
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const at = this.table[i] as number
      if (at === EMPTY) return -1
      const slot = at - 1
      if (this.hashAt(slot) === h && this.keyLengthAt(slot) === key.length + 1 && this.sameKey(slot, key)) return i
    }
  }

  private sameKey (slot: number, key: string): boolean {
    const { u8 } = this.page(slot)
    const at = (slot & (PAGE_SLOTS - 1)) * RECORD_BYTES
    for (let i = 0; i < key.length; i++) {
      if (u8[at + i] !== key.charCodeAt(i)) return false
    }
    return true
  }

  private insert (key: string, slot: number): void {
    const { u8, u32 } = this.page(slot)
    const r = slot & (PAGE_SLOTS - 1)
    const at = r * RECORD_BYTES
    for (let i = 0; i < key.length; i++) u8[at + i] = key.charCodeAt(i)
    u8[at + AT_KEY_LENGTH] = key.length + 1
    const h = this.hash(key)
    u32[r * U32_PER_RECORD + U32_HASH] = h
    if ((this.inTable + 1) * 2 > this.table.length) this.growTable()
    this.place(slot, h)
    this.inTable++
  }

  private place (slot: number, h: number): void {
    const mask = this.table.length - 1
    let i = h & mask
    while (this.table[i] !== EMPTY) i = (i + 1) & mask
    this.table[i] = slot + 1
  }

  private growTable (): void {
    const old = this.table
    this.table = new Uint32Array(old.length * 2)
    for (const at of old) {
      if (at !== EMPTY) this.place(at - 1, this.hashAt(at - 1))
    }
  }

  private release (slot: number): void {
    this.setKeyLength(slot, 0)
    this.free.push(slot)
  }

  private entryAt (slot: number): PackEntry {
    const { u8, u32, f64 } = this.page(slot)
    const r = slot & (PAGE_SLOTS - 1)
    return { pack: u32[r * U32_PER_RECORD + U32_PACK] as number, offset: f64[r * F64_PER_RECORD + F64_OFFSET] as number, length: u32[r * U32_PER_RECORD + U32_LENGTH] as number, codec: u8[r * RECORD_BYTES + AT_CODEC] as number }
  }

  private newSlot (): number {
    if (this.used === this.pages.length * PAGE_SLOTS) {
      const buffer = new ArrayBuffer(PAGE_SLOTS * RECORD_BYTES)
      this.pages.push({ u8: new Uint8Array(buffer), u32: new Uint32Array(buffer), f64: new Float64Array(buffer) })
    }
    return this.used++
  }
}
