import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/log.ts'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { BlockExchange, BlockSession } from '../../src/store/exchange.ts'
import type { BlockExchangeInit } from '../../src/store/exchange.ts'
import type { Stream } from '@libp2p/interface'

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

describe('block requests', () => {
  /** A stream whose far end takes requests and never answers. */
  function silentStream (): { stream: Stream, sent: number } {
    const target = new EventTarget()
    const state = { sent: 0, stream: undefined as unknown as Stream }
    state.stream = Object.assign(target, {
      send: () => { state.sent++; return true },
      close: async () => {},
      abort: () => {}
    }) as unknown as Stream
    return state
  }

  it('a want nobody answers fails with RequestTimeoutError after its timeout, and is forgotten', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const fake = silentStream()
    const session = new BlockSession(peer, fake.stream, () => {})
    const cid = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1])))
    const started = Date.now()
    await expect(session.want(cid, { timeoutMs: 100 })).rejects.toMatchObject({ name: 'RequestTimeoutError' })
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(fake.sent).toBe(1)
    expect(session.outstanding).toBe(0)
    session.close()
  })

  it('a want with a caller signal ends when the signal aborts, before its deadline', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const session = new BlockSession(peer, silentStream().stream, () => {})
    const cid = CID.createV1(raw.code, await sha256.digest(new Uint8Array([2])))
    const controller = new AbortController()
    const want = session.want(cid, { signal: controller.signal, timeoutMs: 60_000 })
    controller.abort(new Error('caller gave up'))
    await expect(want).rejects.toThrow('caller gave up')
    expect(session.outstanding).toBe(0)
    session.close()
  })
})
