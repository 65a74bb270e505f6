/**
 * Lineage: a task is (code CID, input CID, map context) -> output CID. The key
 * names a task wherever it is run, so a mesh that still holds an output never
 * computes it twice.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'

/**
 * The key: SHA-256 of the three, as a 32-character latin1 string (48 bytes
 * of heap where its hex text took 80; the caches hold thousands).
 */
export function lineageKey (codeCid: string, inputCid: string | null, ctxJson: string): string {
  return createHash('sha256').update(JSON.stringify([codeCid, inputCid, ctxJson])).digest().toString('latin1')
}

/** The CIDv1 (raw, sha2-256) of bytes: what a small output is named by (and what `lepton add` gives a file of one chunk). */
export function rawCid (bytes: Uint8Array): CID {
  const digest = createHash('sha256').update(bytes).digest()
  return CID.createV1(raw.code, createDigest(0x12, digest))
}

/** murmur3's 32-bit finalizer: nearby inputs give unrelated outputs. */
function mix32 (x: number): number {
  let h = x >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/**
 * The map context of task `index`. Seeds are a hash of (job seed, task), so
 * tasks of one job differ, and jobs with nearby seeds do not share tasks'
 * random sequences shifted by one.
 */
export function taskContext (index: number, tasks: number, seed: number, args: Record<string, string>): string {
  return JSON.stringify({ task: index, tasks, seed: mix32(mix32(seed) ^ (index + 1)), args })
}
