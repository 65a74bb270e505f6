/**
 * The ChaCha20-Poly1305 that noise encrypts every message with, on node:crypto
 * as @libp2p/noise's own default does for large messages, with two costs
 * removed (measured in docs/STORE.md, eleventh session):
 *
 * - A key object per message. Given the 32 key bytes, Node builds a new
 *   KeyObject for every cipher it creates: with 64 KiB noise messages that was
 *   ~7% of a fetching daemon's CPU, and the native objects this leaves behind
 *   made V8 run a full mark-compact every ~70 ms during a fetch. We build the
 *   KeyObject once per key (a session's key never changes; the bytes are
 *   compared anyway, so a key changed in place gets a new KeyObject).
 * - A copy per message: the ciphertext and its tag go out as a list instead of
 *   being concatenated into one more 64 KiB buffer.
 *
 * Small messages keep noise's default (WebAssembly, faster below ~1 KiB).
 */
import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto'
import { defaultCrypto } from '@libp2p/noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import type { KeyObject } from 'node:crypto'

type Bytes = Uint8Array | Uint8ArrayList

/** Below this, noise's own implementation is faster. */
const SMALL_MESSAGE_BYTES = 1200
const TAG_BYTES = 16
const ALGORITHM = 'chacha20-poly1305'

interface CachedKey {
  bytes: Buffer
  key: KeyObject
}

const keys = new WeakMap<Uint8Array, CachedKey>()

function keyObject (k: Uint8Array): KeyObject {
  const cached = keys.get(k)
  if (cached?.bytes.equals(k) === true) return cached.key
  const bytes = Buffer.from(k) // a copy: what the KeyObject was built from
  const key = createSecretKey(bytes)
  keys.set(k, { bytes, key })
  return key
}

function encrypt (plaintext: Bytes, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array): Bytes {
  if (plaintext.byteLength < SMALL_MESSAGE_BYTES) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  const cipher = createCipheriv(ALGORITHM, keyObject(k), nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
  const out = new Uint8ArrayList()
  if (plaintext instanceof Uint8Array) out.append(cipher.update(plaintext))
  else for (const chunk of plaintext) out.append(cipher.update(chunk))
  const final = cipher.final()
  if (final.byteLength > 0) out.append(final)
  out.append(cipher.getAuthTag())
  return out
}

function decrypt (ciphertext: Bytes, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array, dst?: Uint8Array): Bytes {
  if (ciphertext.byteLength < SMALL_MESSAGE_BYTES) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  if (ciphertext.byteLength < TAG_BYTES) throw new Error('noise message shorter than its tag')
  const textBytes = ciphertext.byteLength - TAG_BYTES
  const decipher = createDecipheriv(ALGORITHM, keyObject(k), nonce, { authTagLength: TAG_BYTES })
  decipher.setAAD(ad, { plaintextLength: textBytes })
  decipher.setAuthTag(ciphertext.subarray(textBytes))
  if (ciphertext instanceof Uint8Array) {
    const text = decipher.update(ciphertext.subarray(0, textBytes))
    decipher.final() // throws when the tag does not match
    return text
  }
  const out = new Uint8ArrayList()
  for (const chunk of ciphertext.sublist(0, textBytes)) out.append(decipher.update(chunk))
  decipher.final()
  return out
}

/** noise({ crypto: noiseCrypto }): noise's default with the ChaCha20-Poly1305 above. */
export const noiseCrypto: typeof defaultCrypto = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt: encrypt,
  chaCha20Poly1305Decrypt: decrypt
}
