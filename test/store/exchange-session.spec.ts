import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/log.ts'
import { BlockExchange } from '../../src/store/exchange.ts'
import type { BlockExchangeInit } from '../../src/store/exchange.ts'

describe('block sessions', () => {
  it('a caller waiting for a stream opened for someone else stops at its own signal', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    let opens = 0
    const exchange = new BlockExchange({
      node: {} as unknown as BlockExchangeInit['node'],
      source: {} as unknown as BlockExchangeInit['source'],
      log: silentLogger,
      // a peer that never answers the stream open
      openStream: async () => { opens++; return await new Promise(() => {}) }
    })
    // the first caller is patient (no signal): the open it starts never ends
    exchange.session(peer).catch(() => {})
    const started = Date.now()
    await expect(exchange.session(peer, AbortSignal.timeout(50))).rejects.toMatchObject({ name: 'TimeoutError' })
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(opens).toBe(1) // the second caller joined the first open, it did not start another
  })
})
