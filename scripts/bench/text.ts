/**
 * Seeded English-like text for the store benchmark: words drawn at random
 * (mulberry32), so no two 256 KiB leaves repeat and each compresses on its own,
 * like real text (DEFLATE level 1 keeps ~30% of it).
 */
import { mulberry32 } from '../../src/random.ts'

const WORDS = ['the', 'of', 'and', 'to', 'in', 'mesh', 'peer', 'block', 'lepton', 'route', 'compute', 'verify', 'store', 'content', 'address', 'stream',
  'window', 'provider', 'hash', 'a', 'is', 'that', 'for', 'it', 'with', 'as', 'was', 'on', 'be', 'at', 'by', 'this', 'from', 'or', 'which', 'data']

export function seededText (bytes: number, seed = 42): Buffer {
  const rand = mulberry32(seed)
  const words = WORDS.map(w => Buffer.from(w))
  const out = Buffer.allocUnsafe(bytes)
  let at = 0
  while (at < bytes) {
    const word = words[Math.floor(rand() * words.length)] as Buffer
    at += word.copy(out, at)
    if (at < bytes) out[at++] = rand() < 0.08 ? 0x0a : 0x20
  }
  return out
}
