/**
 * The block index in memory: key -> where the block lies in the packs, with
 * nothing on the V8 heap per block. Keys (a CIDv1's bytes as a latin1 string)
 * are copied into a typed array of fixed-width rows, next to the location
 * (pack, offset, length, codec) at the same slot, and found through an
 * open-addressing hash table of slot numbers (linear probing, at most half
 * full, deletion by shifting the cluster back, so no tombstones pile up).
 *
 * Why: with a Map from key string to slot, every block cost ~110 bytes of heap
 * (a 36-character string, a hash-table entry) that V8 carries at up to 1.5-2x
 * between collections. The index grows with every block stored: ~50 blocks a
 * job on a soak's submitter, its largest per-job growth (heap snapshots 2 and
 * 7.5 minutes into a run: +24,000 key strings, 1.4 MiB, plus the map's tables).
 * Here a block takes ~70-80 bytes of typed arrays that double as they fill.
 *
 * Keys longer than KEY_BYTES (CIDs with longer digests) go to a small Map.
 * Iteration is in slot order (freed slots are reused), not insertion order;
 * deleting while iterating is safe.
 */
import { randomBytes } from 'node:crypto'
import type { PackEntry } from './pack-log.ts'

const INITIAL_SLOTS = 1024
/** Key bytes a row holds: a CIDv1 with a 32-byte digest is 36, 37 with a two-byte codec. */
const KEY_BYTES = 40
/** Table entry meaning "empty"; others are slot + 1. */
const EMPTY = 0
/** keyLength of a slot whose key is in `long`. */
const LONG = 255
const LATIN1 = /^[\x00-\xff]*$/

export class PackIndex {
  /** Keys longer than KEY_BYTES -> slot. */
  private readonly long = new Map<string, number>()
  private keys8 = new Uint8Array(INITIAL_SLOTS * KEY_BYTES)
  /** At a slot: 0 free, 255 a long key (in `long`), else the key's length + 1. */
  private keyLength = new Uint8Array(INITIAL_SLOTS)
  private hashes = new Uint32Array(INITIAL_SLOTS)
  private pack = new Uint32Array(INITIAL_SLOTS)
  /** Float64: exact for any offset below 2^53. */
  private offset = new Float64Array(INITIAL_SLOTS)
  private length = new Uint32Array(INITIAL_SLOTS)
  private codec = new Uint8Array(INITIAL_SLOTS)
  /** Open addressing: slot + 1, or EMPTY. Capacity a power of two, at least twice the keys in it. */
  private table = new Uint32Array(INITIAL_SLOTS * 2)
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
      if (!LATIN1.test(key)) throw new TypeError('index keys are latin1 strings of bytes')
      slot = this.free.pop() ?? this.newSlot()
      if (key.length > KEY_BYTES) {
        this.long.set(key, slot)
        this.keyLength[slot] = LONG
      } else {
        this.insert(key, slot)
      }
    }
    this.pack[slot] = entry.pack
    this.offset[slot] = entry.offset
    this.length[slot] = entry.length
    this.codec[slot] = entry.codec
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
      const home = (this.hashes[at - 1] as number) & mask
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
    this.keyLength.fill(0)
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
      const n = this.keyLength[slot] as number
      if (n === 0) continue
      const key = n === LONG ? longKeys.get(slot) : this.keyAt(slot, n - 1)
      // a long key deleted meanwhile, its slot free or reused
      if (key === undefined || (n === LONG && this.long.get(key) !== slot)) continue
      yield [key, this.entryAt(slot)]
    }
  }

  private keyAt (slot: number, n: number): string {
    const at = slot * KEY_BYTES
    return String.fromCharCode.apply(null, this.keys8.subarray(at, at + n) as unknown as number[])
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
      if (this.hashes[slot] === h && this.keyLength[slot] === key.length + 1 && this.sameKey(slot, key)) return i
    }
  }

  private sameKey (slot: number, key: string): boolean {
    const at = slot * KEY_BYTES
    for (let i = 0; i < key.length; i++) {
      if (this.keys8[at + i] !== key.charCodeAt(i)) return false
    }
    return true
  }

  private insert (key: string, slot: number): void {
    const at = slot * KEY_BYTES
    for (let i = 0; i < key.length; i++) this.keys8[at + i] = key.charCodeAt(i)
    this.keyLength[slot] = key.length + 1
    const h = this.hash(key)
    this.hashes[slot] = h
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
      if (at !== EMPTY) this.place(at - 1, this.hashes[at - 1] as number)
    }
  }

  private release (slot: number): void {
    this.keyLength[slot] = 0
    this.free.push(slot)
  }

  private entryAt (slot: number): PackEntry {
    return { pack: this.pack[slot] as number, offset: this.offset[slot] as number, length: this.length[slot] as number, codec: this.codec[slot] as number }
  }

  private newSlot (): number {
    if (this.used === this.pack.length) {
      const grow = <T extends Uint32Array | Float64Array | Uint8Array>(old: T, make: () => T): T => {
        const next = make()
        next.set(old)
        return next
      }
      const n = this.pack.length * 2
      this.keys8 = grow(this.keys8, () => new Uint8Array(n * KEY_BYTES))
      this.keyLength = grow(this.keyLength, () => new Uint8Array(n))
      this.hashes = grow(this.hashes, () => new Uint32Array(n))
      this.pack = grow(this.pack, () => new Uint32Array(n))
      this.offset = grow(this.offset, () => new Float64Array(n))
      this.length = grow(this.length, () => new Uint32Array(n))
      this.codec = grow(this.codec, () => new Uint8Array(n))
    }
    return this.used++
  }
}
