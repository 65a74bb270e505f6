import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/log.ts'
import { ProvideQueue } from '../../src/store/provide-queue.ts'

async function cidOf (text: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(text)))
}

/** A provide that records calls and finishes when told to. */
function fakeDht (fail = new Set<string>()): { calls: string[], maxRunning: () => number, release: () => void, provide: (cid: CID, signal: AbortSignal) => Promise<void> } {
  const calls: string[] = []
  let running = 0
  let most = 0
  let waiters: Array<() => void> = []
  return {
    calls,
    maxRunning: () => most,
    release: () => { const w = waiters; waiters = []; for (const f of w) f() },
    provide: async (cid, signal) => {
      calls.push(cid.toString())
      running++
      most = Math.max(most, running)
      try {
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve)
          signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
        })
        if (fail.has(cid.toString())) throw new Error('no peers')
      } finally {
        running--
      }
    }
  }
}

async function settle (q: ProvideQueue, dht: { release: () => void }): Promise<void> {
  for (let i = 0; i < 50 && q.pending > 0; i++) {
    dht.release()
    await new Promise(resolve => setImmediate(resolve))
  }
  expect(q.pending).toBe(0)
}

describe('provide queue', () => {
  it('announces each CID once while it is fresh, again when forced', async () => {
    const dht = fakeDht()
    const q = new ProvideQueue({ provide: dht.provide, log: silentLogger, signal: new AbortController().signal, freshMs: 60_000, timeoutMs: 10_000 })
    const a = await cidOf('a')
    q.add(a)
    q.add(a) // already queued or running: not twice
    await settle(q, dht)
    q.add(a) // fresh: skipped
    await settle(q, dht)
    expect(dht.calls).toEqual([a.toString()])
    q.add(a, true)
    await settle(q, dht)
    expect(dht.calls).toEqual([a.toString(), a.toString()])
  })

  it('runs at most `concurrency` announcements at once and gets through all of them', async () => {
    const dht = fakeDht()
    const q = new ProvideQueue({ provide: dht.provide, log: silentLogger, signal: new AbortController().signal, freshMs: 60_000, timeoutMs: 10_000, concurrency: 2 })
    const cids = await Promise.all(Array.from({ length: 20 }, async (_, i) => await cidOf(`c${i}`)))
    for (const c of cids) q.add(c)
    expect(dht.calls.length).toBe(2)
    await settle(q, dht)
    expect(dht.maxRunning()).toBe(2)
    expect(new Set(dht.calls)).toEqual(new Set(cids.map(c => c.toString())))
  })

  it('keeps at most maxWaiting CIDs waiting, dropping the oldest, and announces the newest', async () => {
    const dht = fakeDht()
    const q = new ProvideQueue({ provide: dht.provide, log: silentLogger, signal: new AbortController().signal, freshMs: 60_000, timeoutMs: 10_000, concurrency: 2, maxWaiting: 5 })
    const cids = await Promise.all(Array.from({ length: 20 }, async (_, i) => await cidOf(`w${i}`)))
    for (const c of cids) q.add(c)
    // 2 running, 5 waiting: the 13 in between were dropped
    expect(q.pending).toBe(7)
    expect(q.dropped).toBe(13)
    await settle(q, dht)
    expect(dht.calls).toEqual([...cids.slice(0, 2), ...cids.slice(15)].map(c => c.toString()))
  })

  it('a failed announcement is tried again at the next add', async () => {
    const a = await cidOf('a')
    const fail = new Set([a.toString()])
    const dht = fakeDht(fail)
    const q = new ProvideQueue({ provide: dht.provide, log: silentLogger, signal: new AbortController().signal, freshMs: 60_000, timeoutMs: 10_000 })
    q.add(a)
    await settle(q, dht)
    fail.clear()
    q.add(a)
    await settle(q, dht)
    q.add(a) // now announced: fresh
    await settle(q, dht)
    expect(dht.calls).toEqual([a.toString(), a.toString()])
  })

  it('forgets the oldest announcements beyond its bound, and stops when aborted', async () => {
    const dht = fakeDht()
    const stop = new AbortController()
    const q = new ProvideQueue({ provide: dht.provide, log: silentLogger, signal: stop.signal, freshMs: 60_000, timeoutMs: 10_000, maxRemembered: 2 })
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(cidOf)) as [CID, CID, CID]
    for (const x of [a, b, c]) {
      q.add(x)
      await settle(q, dht)
    }
    q.add(a) // forgotten (only b and c remembered): announced again
    q.add(c) // remembered: skipped
    await settle(q, dht)
    expect(dht.calls).toEqual([a, b, c, a].map(x => x.toString()))
    q.add(await cidOf('d'))
    stop.abort()
    await new Promise(resolve => setImmediate(resolve))
    expect(q.pending).toBe(0)
    q.add(await cidOf('e'))
    expect(dht.calls.length).toBe(5)
  })
})
