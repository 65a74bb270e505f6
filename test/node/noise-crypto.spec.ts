import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@libp2p/noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { noiseCrypto } from '../../src/node/noise-crypto.ts'

const flat = (b: Uint8Array | Uint8ArrayList): Buffer => Buffer.from(b instanceof Uint8Array ? b : b.subarray())

describe('noise ChaCha20-Poly1305 with a cached key', () => {
  const nonce = randomBytes(12)
  const ad = randomBytes(32)

  it('interoperates with noise\'s own implementation both ways, small and large, flat and chunked', () => {
    const k = randomBytes(32)
    for (const size of [0, 100, 1199, 1200, 65519]) {
      const text = randomBytes(size)
      const ours = noiseCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, k)
      const theirs = defaultCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, k)
      expect(flat(ours).equals(flat(theirs))).toBe(true)
      expect(flat(defaultCrypto.chaCha20Poly1305Decrypt(flat(ours), nonce, ad, k)).equals(text)).toBe(true)
      expect(flat(noiseCrypto.chaCha20Poly1305Decrypt(flat(theirs), nonce, ad, k)).equals(text)).toBe(true)
      // a ciphertext in several chunks, as it arrives from the network
      const cut = Math.floor(flat(theirs).byteLength / 3)
      const chunked = new Uint8ArrayList(flat(theirs).subarray(0, cut), flat(theirs).subarray(cut))
      expect(flat(noiseCrypto.chaCha20Poly1305Decrypt(chunked, nonce, ad, k)).equals(text)).toBe(true)
      const plainChunks = new Uint8ArrayList(text.subarray(0, cut), text.subarray(cut))
      expect(flat(noiseCrypto.chaCha20Poly1305Encrypt(plainChunks, nonce, ad, k)).equals(flat(theirs))).toBe(true)
    }
  })

  it('rejects a tampered message', () => {
    const k = randomBytes(32)
    const sealed = flat(noiseCrypto.chaCha20Poly1305Encrypt(randomBytes(4096), nonce, ad, k))
    sealed.writeUInt8(sealed.readUInt8(100) ^ 1, 100)
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, k)).toThrow()
  })

  it('follows a key whose bytes change in place (the cache is checked, not trusted)', () => {
    const k = randomBytes(32)
    const text = randomBytes(4096)
    noiseCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, k) // caches k
    k.set(randomBytes(32))
    const sealed = flat(noiseCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, k))
    expect(sealed.equals(flat(defaultCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, k)))).toBe(true)
  })
})
