/**
 * Fetches a whole DAG from several providers at once. Each missing block goes
 * to the provider with the best (RTT x outstanding work) that has room in its
 * window; a slow or vanished provider's blocks go back to the queue; a block
 * that does not hash to its CID gets its sender disconnected and never asked
 * again. Blocks are written to disk as they arrive, so memory stays bounded by
 * the windows, whatever the size of the file.
 */
import { BlockNotFoundError, ContentNotFoundError, CorruptBlockError } from './errors.ts'
import { contiguous, decodeStored, verifyBlock } from './blockstore.ts'
import { WANT_TIMEOUT_MS, WANT_WINDOW } from './constants.ts'
import { DAG_PB, linksOf } from './dag.ts'
import { transferYoungGc } from './young-gc.ts'
import { raceSignal } from '../signals.ts'
import type { BlockTarget } from './blockstore.ts'
import type { BlockExchange, BlockSession } from './exchange.ts'
import type { Logger } from '../log.ts'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface FetchProgress {
  blocks: number
  bytes: number
}

export interface FetchInit {
  exchange: BlockExchange
  /** Where blocks are read from and written to: the store, or the fetch's batch. */
  blockstore: BlockTarget
  providers: PeerId[]
  rttMs(peer: PeerId): number | undefined
  /** Called on a peer that sent a forged block. */
  punish(peer: PeerId, reason: string): void
  log: Logger
  signal?: AbortSignal
  /** Outstanding wants per provider. @default 32 */
  window?: number
  wantTimeoutMs?: number
  onProgress?(progress: FetchProgress): void
}

export interface FetchResult extends FetchProgress {
  /** Blocks received from each provider. */
  fromPeers: Record<string, number>
}

interface ProviderState {
  peer: PeerId
  key: string
  /** Its block stream, once open (looked up once, not per want). */
  session?: BlockSession
  inflight: number
  bad: boolean
  failures: number
  served: number
}

/** Lower is better: expected wait for one more block from this provider. */
export function providerScore (rttMs: number | undefined, inflight: number): number {
  return ((rttMs ?? 1) + 0.05) * (inflight + 1)
}

export async function fetchDag (root: CID, init: FetchInit): Promise<FetchResult> {
  const window = init.window ?? WANT_WINDOW
  const wantTimeoutMs = init.wantTimeoutMs ?? WANT_TIMEOUT_MS
  const providers: ProviderState[] = init.providers.map(peer => ({ peer, key: peer.toString(), inflight: 0, bad: false, failures: 0, served: 0 }))
  const queue: CID[] = []
  const dontHave = new Map<string, Set<string>>()
  const progress: FetchProgress = { blocks: 0, bytes: 0 }
  let active = 0
  let failed: Error | undefined
  /** Failed, or the caller gave up: no more wants go out. */
  const stopped = (): boolean => failed != null || init.signal?.aborted === true

  const done = new Promise<FetchResult>((resolve, reject) => {
    const fail = (err: Error): void => {
      if (failed != null) return
      failed = err
      reject(err)
    }

    const choose = (cid: CID): ProviderState | undefined => {
      const lacking = dontHave.get(cid.toString())
      let best: ProviderState | undefined
      let bestScore = Infinity
      for (const p of providers) {
        if (p.bad || p.inflight >= window || lacking?.has(p.key) === true) continue
        const score = providerScore(init.rttMs(p.peer), p.inflight)
        if (score < bestScore) {
          best = p
          bestScore = score
        }
      }
      return best
    }

    const pump = (): void => {
      if (stopped()) return
      while (queue.length > 0) {
        const cid = queue[0] as CID
        const p = choose(cid)
        if (p == null) {
          const lacking = dontHave.get(cid.toString())
          const usable = providers.filter(q => !q.bad && lacking?.has(q.key) !== true)
          if (usable.length === 0) {
            const why = providers.length === 0 ? 'no providers' : providers.every(q => q.bad) ? 'every provider failed or sent forged blocks' : 'no provider holds it'
            fail(new ContentNotFoundError(`cannot fetch block ${cid.toString()}: ${why}`))
          }
          break // every usable provider's window is full: wait for an answer
        }
        queue.shift()
        p.inflight++
        active++
        fetchOne(cid, p).finally(() => {
          active--
          pump()
        }).catch(fail)
      }
      if (queue.length === 0 && active === 0 && failed == null) {
        resolve({ ...progress, fromPeers: Object.fromEntries(providers.map(p => [p.key, p.served])) })
      }
    }

    /** Queues what a block links to, walking local blocks without the network. */
    const expand = async (cid: CID, bytes: Uint8Array): Promise<void> => {
      for (const child of linksOf(cid, bytes)) {
        let local: Uint8Array | undefined
        try {
          if (await init.blockstore.has(child)) local = await init.blockstore.getBytes(child)
        } catch (err) {
          if (!(err instanceof CorruptBlockError) && !(err instanceof BlockNotFoundError)) throw err
        }
        if (local != null) await expand(child, local)
        else queue.push(child)
      }
    }

    const fetchOne = async (cid: CID, p: ProviderState): Promise<void> => {
      let stored
      try {
        let session = p.session
        if (session == null || session.closed) {
          const signal = AbortSignal.any([AbortSignal.timeout(wantTimeoutMs), ...(init.signal != null ? [init.signal] : [])])
          session = p.session = await init.exchange.session(p.peer, signal)
        }
        // the session's deadline sweep times the want out: no timer or signal of its own per block
        stored = await session.want(cid, { signal: init.signal, timeoutMs: wantTimeoutMs })
      } catch (err) {
        p.inflight--
        if (stopped()) return
        p.failures++
        if (p.failures >= 3) p.bad = true
        init.log.debug('want failed; another provider will be asked', { cid: cid.toString(), peer: p.key, err })
        queue.unshift(cid)
        return
      }
      p.inflight--
      if (stopped()) return
      if (stored == null) {
        const set = dontHave.get(cid.toString()) ?? new Set()
        set.add(p.key)
        dontHave.set(cid.toString(), set)
        queue.unshift(cid)
        return
      }
      let bytes: Uint8Array | Uint8ArrayList
      try {
        bytes = decodeStored(stored)
        verifyBlock(cid, bytes)
      } catch (err) {
        p.bad = true
        init.log.warn('peer sent a forged block; disconnecting it', { peer: p.key, cid: cid.toString() })
        init.punish(p.peer, `sent a block that does not match ${cid.toString()}: ${(err as Error).message}`)
        queue.unshift(cid)
        return
      }
      p.served++
      active++ // writing and expanding still counts as work in progress
      if (queue.length > 0) pump()
      try {
        await init.blockstore.putStored(cid, stored)
        progress.blocks++
        progress.bytes += bytes.byteLength
        transferYoungGc.moved(stored.payload.byteLength)
        init.onProgress?.(progress)
        if (cid.code === DAG_PB) await expand(cid, contiguous(bytes)) // raw leaves link nowhere
      } finally {
        active--
      }
    }

    // the root may already be here (a resumed or partial fetch)
    init.blockstore.getBytes(root)
      .then(async bytes => { await expand(root, bytes) })
      .catch(() => { queue.push(root) })
      .then(pump)
      .catch(fail)
  })
  // raceSignal removes its abort listener once the fetch settles: one left on a long-lived signal (a
  // worker's task signal joins its shutdown signal) kept every finished fetch and its batch alive
  return init.signal == null ? await done : await raceSignal(done, init.signal)
}
