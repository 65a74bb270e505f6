import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { DiskBlockstore, contiguous, decodeStored, encodeStoredAsync, verifyBlock } from './blockstore.ts'
import { CACHE_CHECK_MS, DEFAULT_CACHE_BYTES, FIND_TIMEOUT_MS, FORGED_BLOCK_BAN_MS, IMPORTER_PRELOAD_DELAY_MS, READ_LOOKAHEAD, HAVE_TIMEOUT_MS, PROVIDE_TIMEOUT_MS, REPROVIDE_INTERVAL_MS } from './constants.ts'
import { ChunkPool, loadImporter, preloadImporter, readFileChunks } from './importer.ts'
import { DAG_PB, RAW, linksOf } from './dag.ts'
import { BlockNotFoundError, ContentNotFoundError, CorruptBlockError, InvalidCidError, NotPinnedError } from './errors.ts'
import { BlockExchange } from './exchange.ts'
import { fetchDag } from './fetcher.ts'
import { PinSet } from './pins.ts'
import { ProvideQueue } from './provide-queue.ts'
import { readFileBytes } from './reader.ts'
import { Replication } from './replication.ts'
import type { BlockBatch } from './blockstore.ts'
import type { FetchResult } from './fetcher.ts'
import type { AddOptions, AddResult, FetchOptions, GcResult, ReplicaResult, StatResult, Store, StoreInit } from './index.ts'
import type { PinInfo } from './pins.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { PeerId } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import type { ImportCandidate } from 'ipfs-unixfs-importer'

/** Type and size of a UnixFS node from its root block alone. */
export function describeRoot (cid: CID, bytes: Uint8Array): { type: string, size: number | null } {
  if (cid.code === RAW) return { type: 'file', size: bytes.byteLength }
  if (cid.code !== DAG_PB) return { type: 'unknown', size: null }
  const node = dagPb.decode(bytes)
  const unixfs = node.Data == null ? undefined : UnixFS.unmarshal(node.Data)
  if (unixfs == null) return { type: 'unknown', size: null }
  const isFile = unixfs.type === 'file' || unixfs.type === 'raw'
  return { type: unixfs.type, size: isFile ? Number(unixfs.fileSize()) : null }
}

export function parseCid (text: string): CID {
  try {
    return CID.parse(text.trim())
  } catch {
    throw new InvalidCidError(`"${text}" is not a valid CID (expected e.g. bafybei... or Qm...)`)
  }
}

async function * walkFolder (root: string, prefix: string, pool: ChunkPool): AsyncGenerator<ImportCandidate> {
  const entries = (await readdir(root, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  if (entries.length === 0) yield { path: prefix }
  for (const e of entries) {
    const full = join(root, e.name)
    const path = `${prefix}/${e.name}`
    if (e.isDirectory()) yield * walkFolder(full, path, pool)
    else if (e.isFile()) yield { path, content: readFileChunks(full, pool) }
  }
}

export class DefaultStore implements Store {
  readonly blockstore: DiskBlockstore
  private readonly node: LeptonNode
  private readonly exchange: BlockExchange
  private readonly pins: PinSet
  private readonly replication: Replication
  private readonly log: Logger
  private readonly repoPath: string
  private readonly shutdown = new AbortController()
  private reprovideTimer?: ReturnType<typeof setInterval>
  private readonly provides: ProvideQueue
  /** Operations that write blocks; gc waits for them and holds new ones back. */
  private busy = 0
  private gcRunning?: Promise<unknown>
  /** Live block bytes the last gc kept (or found at start): the cache budget counts from there. */
  private keptBytes = 0
  private cacheTimer?: ReturnType<typeof setInterval>
  private readonly cacheBytes: number
  private readonly cacheCheckMs: number
  /** CID (base32 v1) -> holds on it (`hold`): gc roots besides the pins. */
  private readonly holds = new Map<string, { cid: CID, count: number }>()

  constructor (init: StoreInit) {
    this.node = init.node
    this.repoPath = init.repoPath
    this.cacheBytes = init.cacheBytes ?? DEFAULT_CACHE_BYTES
    this.cacheCheckMs = init.cacheCheckMs ?? CACHE_CHECK_MS
    this.log = init.log
    this.blockstore = new DiskBlockstore(join(init.repoPath, 'blocks'), {
      onCorrupt: (cid) => { this.log.warn('corrupt block on disk removed', { cid: cid.toString() }) }
    })
    this.pins = new PinSet(join(init.repoPath, 'pins'))
    this.replication = new Replication({
      node: init.node,
      repoPath: init.repoPath,
      log: init.log.child('replication'),
      pin: async (cid, timeoutMs, signal) => { await this.pinAdd(cid, { timeoutMs, signal }) },
      pinned: async (cid) => await this.pins.has(cid),
      signal: this.shutdown.signal,
      graceMs: init.replicaGraceMs,
      checkMs: init.replicaCheckMs,
      ...init.pinRequests
    })
    this.provides = new ProvideQueue({
      provide: async (cid, signal) => { await this.node.contentRouting.provide(cid, { signal }) },
      log: this.log,
      signal: this.shutdown.signal,
      freshMs: REPROVIDE_INTERVAL_MS,
      timeoutMs: PROVIDE_TIMEOUT_MS
    })
    this.exchange = new BlockExchange({ node: init.node, source: init.source?.(this.blockstore) ?? this.blockstore, openStream: init.openStream, log: init.log.child('exchange') })
  }

  async start (): Promise<void> {
    await this.blockstore.open()
    await this.pins.open()
    await this.exchange.start()
    await this.replication.start()
    this.reprovideTimer = setInterval(() => { this.reprovideAll().catch(() => {}) }, REPROVIDE_INTERVAL_MS)
    this.reprovideTimer.unref()
    // announce what we hold once the node has had time to join the DHT
    setTimeout(() => { this.reprovideAll().catch(() => {}) }, 5000).unref()
    setTimeout(() => { preloadImporter().catch(() => {}) }, IMPORTER_PRELOAD_DELAY_MS).unref()
    this.keptBytes = this.blockstore.usage().liveBytes
    if (this.cacheBytes > 0) {
      this.cacheTimer = setInterval(() => { this.checkCache() }, this.cacheCheckMs)
      this.cacheTimer.unref()
    }
  }

  /**
   * Runs gc once the store has grown by more than the cache budget since the
   * last gc kept what is pinned or held. Unpinned data is cache: without this
   * a busy submitter's disk (and its block index in memory) grew with every
   * job, now that jobs no longer pin their inputs.
   */
  private checkCache (): void {
    // not while blocks are being written: gc would wait for them (a long fetch) and hold every new writer back meanwhile
    if (this.gcRunning != null || this.busy > 0 || this.shutdown.signal.aborted) return
    const { liveBytes } = this.blockstore.usage()
    if (liveBytes - this.keptBytes <= this.cacheBytes) return
    this.log.info('cache over budget: collecting unpinned blocks', { liveBytes, keptBytes: this.keptBytes, cacheBytes: this.cacheBytes })
    this.gc().then(r => {
      this.log.info('cache collected', { removed: r.removed, freedBytes: r.freedBytes, keptBytes: this.keptBytes })
    }).catch(err => { this.log.warn('automatic gc failed', { err }) })
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
    clearInterval(this.reprovideTimer)
    clearInterval(this.cacheTimer)
    await this.gcRunning?.catch(() => {})
    await this.replication.stop()
    await this.exchange.stop()
    await this.blockstore.close()
  }

  private async writing<T> (fn: () => Promise<T>): Promise<T> {
    while (this.gcRunning != null) await this.gcRunning
    this.busy++
    try {
      return await fn()
    } finally {
      this.busy--
    }
  }

  async add (source: string | AsyncIterable<Uint8Array>, options: AddOptions = {}): Promise<AddResult> {
    return (await this.addMany([source], options))[0] as AddResult
  }

  async addMany (sources: Array<string | AsyncIterable<Uint8Array>>, options: AddOptions = {}): Promise<AddResult[]> {
    const results = await this.writing(async () => {
      let bytes = 0
      const onBytes = (n: number): void => {
        bytes += n
        options.onProgress?.({ bytes })
      }
      // one batch: every source's blocks made durable and visible in one commit at the end, before the pins
      const imported = await this.blockstore.writeBatch(async batch => {
        const out: Array<{ root: CID, size: number }> = []
        for (const source of sources) {
          const before = bytes
          const root = await importInto(batch, source, onBytes)
          out.push({ root, size: bytes - before })
        }
        return out
      })
      const added: Array<{ cid: CID, size: number, release?: () => void }> = []
      for (const { root, size } of imported) {
        if (options.pin !== false) await this.pins.add(root)
        // held while still counted as writing, so no gc can slip in between
        added.push({ cid: root, size, release: options.hold === true ? this.hold(root) : undefined })
      }
      return added
    })
    const out: AddResult[] = []
    for (const result of results) {
      if (options.provide !== false) this.provide(result.cid)
      const one: AddResult = { cid: result.cid.toString(), size: result.size, ...(result.release != null ? { release: result.release } : {}) }
      if ((options.replicas ?? 1) > 1) one.replicas = await this.replicate(result.cid, (options.replicas ?? 1) - 1, options)
      out.push(one)
    }
    return out
  }

  private provide (cid: CID): void {
    this.provides.add(cid)
  }

  private async reprovideAll (): Promise<void> {
    for (const pin of await this.pins.ls()) this.provides.add(CID.parse(pin.cid), true)
  }

  /** Connected peers that say they hold `cid`, else providers from the DHT. */
  async findProviders (cid: CID, options: FetchOptions = {}): Promise<PeerId[]> {
    const timeoutMs = options.timeoutMs ?? FIND_TIMEOUT_MS
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(timeoutMs), ...(options.signal != null ? [options.signal] : [])])
    const haveSignal = AbortSignal.any([signal, AbortSignal.timeout(Math.min(HAVE_TIMEOUT_MS, timeoutMs))])
    const answers = await Promise.all(this.node.getPeers().map(async peer => {
      try {
        const session = await this.exchange.session(peer, haveSignal)
        return await session.have(cid, { signal: haveSignal }) ? peer : undefined
      } catch {
        return undefined
      }
    }))
    const found = answers.filter((p): p is PeerId => p != null)
    if (found.length > 0) return found
    try {
      for await (const prov of this.node.contentRouting.findProviders(cid, { signal })) {
        if (prov.id.equals(this.node.peerId) || found.some(p => p.equals(prov.id))) continue
        if (prov.multiaddrs.length > 0) await this.node.peerStore.merge(prov.id, { multiaddrs: prov.multiaddrs }, { signal })
        found.push(prov.id)
        if (found.length >= 3) break
      }
    } catch (err) {
      if (found.length === 0 && !signal.aborted) this.log.debug('DHT provider search failed', { cid: cid.toString(), err })
    }
    if (found.length === 0) {
      throw new ContentNotFoundError(`nobody in reach holds ${cid.toString()} (asked ${this.node.getPeers().length} connected peers and the DHT for up to ${Math.round(timeoutMs / 1000)} s); check the CID, or that a peer holding it is online`)
    }
    return found
  }

  async putBlocks (blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<void> {
    for (const { cid, bytes } of blocks) verifyBlock(cid, bytes)
    if (blocks.length === 0) return
    await this.writing(async () => {
      await this.blockstore.writeBatch(async batch => {
        for (const { cid, bytes } of blocks) await batch.putStored(cid, await encodeStoredAsync(bytes))
      })
    })
  }

  async localBlock (cid: CID): Promise<Uint8Array | undefined> {
    if (!await this.blockstore.has(cid)) return undefined
    try {
      return contiguous(decodeStored(await this.blockstore.getStored(cid)))
    } catch (err) {
      // gone meanwhile (gc), or corrupt (getStored removed it): not held
      if (err instanceof BlockNotFoundError || err instanceof CorruptBlockError) return undefined
      throw err
    }
  }

  /** Makes the whole DAG local, fetching what is missing. */
  async fetch (cid: CID, options: FetchOptions = {}): Promise<FetchResult> {
    return await this.writing(async () => await this.blockstore.writeBatch(async batch => {
      const base = { exchange: this.exchange, blockstore: batch, rttMs: (p: PeerId) => this.node.services.rtt.rttMs(p), punish: (p: PeerId, reason: string) => { this.punish(p, reason) }, log: this.log.child('fetch'), signal: options.signal, onProgress: options.onProgress }
      try {
        return await fetchDag(cid, { ...base, providers: [] }) // complete locally?
      } catch (err) {
        if (!(err instanceof ContentNotFoundError)) throw err
      }
      const holders = (options.holders ?? []).filter(p => !p.equals(this.node.peerId))
      if (holders.length > 0) {
        // the caller knows who holds it: no round of questions to every connected peer first
        try {
          return await fetchDag(cid, { ...base, providers: holders })
        } catch (err) {
          if (options.signal?.aborted === true) throw err
          this.log.debug('named holders could not serve; searching', { cid: cid.toString(), err })
        }
      }
      const providers = await this.findProviders(cid, options)
      this.log.debug('fetching', { cid: cid.toString(), providers: providers.length })
      return await fetchDag(cid, { ...base, providers })
    }))
  }

  private punish (peer: PeerId, reason: string): void {
    this.log.warn('disconnecting and banning misbehaving peer', { peer: peer.toString(), reason, banS: FORGED_BLOCK_BAN_MS / 1000 })
    this.node.services.bans.ban(peer, FORGED_BLOCK_BAN_MS, reason)
    this.node.hangUp(peer).catch(() => {})
  }

  async * cat (cid: CID, options: FetchOptions = {}): AsyncGenerator<Uint8Array> {
    await this.fetch(cid, options)
    yield * readFileBytes(cid, this.blockstore, READ_LOOKAHEAD, options.signal)
  }

  /** Fetches `cid` and writes it to `output` (a file, or a folder for a directory). */
  async get (cid: CID, output: string, options: FetchOptions = {}): Promise<{ size: number }> {
    await this.fetch(cid, options)
    let size = 0
    const write = async (c: CID, path: string): Promise<void> => {
      const { type } = describeRoot(c, await this.blockstore.getBytes(c))
      if (type === 'directory' || type === 'hamt-sharded-directory') {
        const { exporter } = await import('ipfs-unixfs-exporter')
        const entry = await exporter(c, this.blockstore, { signal: options.signal })
        if (entry.type !== 'directory') throw new InvalidCidError(`${c.toString()} is not a directory`)
        await mkdir(path, { recursive: true })
        for await (const child of entry.entries()) await write(child.cid, join(path, child.name))
        return
      }
      if (type !== 'file' && type !== 'raw') throw new InvalidCidError(`${c.toString()} is a ${type}, which lepton cannot write to disk`)
      const tmp = `${path}.lepton-tmp`
      const handle = await open(tmp, 'w')
      try {
        for await (const chunk of readFileBytes(c, this.blockstore, READ_LOOKAHEAD, options.signal)) {
          await handle.write(chunk)
          size += chunk.byteLength
        }
      } catch (err) {
        await handle.close()
        await rm(tmp, { force: true })
        throw err
      }
      await handle.close()
      await rename(tmp, path)
    }
    await write(cid, output)
    return { size }
  }

  async stat (cid: CID, options: FetchOptions = {}): Promise<StatResult> {
    let local = true
    let localBlocks = 0
    let blocks = 0
    const seen = new Set<string>()
    const walk = async (c: CID): Promise<void> => {
      if (seen.has(c.toString())) return
      seen.add(c.toString())
      blocks++
      let bytes: Uint8Array
      try {
        bytes = await this.blockstore.getBytes(c)
      } catch (err) {
        if (!(err instanceof BlockNotFoundError) && !(err instanceof CorruptBlockError)) throw err
        local = false
        return
      }
      localBlocks++
      for (const child of linksOf(c, bytes)) await walk(child)
    }
    await walk(cid)
    let holders: string[] = []
    try {
      holders = (await this.findProviders(cid, { ...options, timeoutMs: Math.min(options.timeoutMs ?? 5000, 5000) })).map(p => p.toString())
    } catch {}
    if (local || localBlocks > 0) holders.unshift(this.node.peerId.toString())
    let size: number | null = null
    let type = 'unknown'
    let rootBytes: Uint8Array | undefined
    try {
      rootBytes = await this.blockstore.getBytes(cid)
    } catch {
      rootBytes = await this.fetchRootBlock(cid, holders, options).catch(() => undefined)
    }
    if (rootBytes != null) {
      try {
        ({ type, size } = describeRoot(cid, rootBytes))
      } catch {}
    }
    return {
      cid: cid.toString(),
      type,
      size,
      blocks: local ? blocks : null,
      localBlocks,
      local,
      pinned: await this.pins.has(cid),
      holders: [...new Set(holders)]
    }
  }

  /** Just the root block from a holder, verified, to read its size without fetching the file. */
  private async fetchRootBlock (cid: CID, holders: string[], options: FetchOptions): Promise<Uint8Array> {
    for (const holder of holders) {
      const peer = this.node.getPeers().find(p => p.toString() === holder)
      if (peer == null) continue
      const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 5000), this.shutdown.signal])
      const stored = await (await this.exchange.session(peer, signal)).want(cid, { signal })
      if (stored == null) continue
      const bytes = contiguous(decodeStored(stored))
      verifyBlock(cid, bytes)
      return bytes
    }
    throw new ContentNotFoundError(`no holder of ${cid.toString()} answered`)
  }

  async pinAdd (cid: CID, options: FetchOptions = {}): Promise<void> {
    await this.fetch(cid, options)
    await this.pins.add(cid)
    this.provide(cid)
  }

  async pinRm (cid: CID): Promise<void> {
    if (!await this.pins.rm(cid)) throw new NotPinnedError(`${cid.toString()} is not pinned`)
    await this.replication.forget(cid)
  }

  async pinLs (): Promise<PinInfo[]> {
    return await this.pins.ls()
  }

  hold (cid: CID): () => void {
    const key = cid.toV1().toString()
    const held = this.holds.get(key) ?? { cid, count: 0 }
    held.count++
    this.holds.set(key, held)
    let released = false
    return () => {
      if (released) return
      released = true
      if (--held.count === 0) this.holds.delete(key)
    }
  }

  /** Removes every block not reachable from a pin or a hold. */
  async gc (): Promise<GcResult> {
    while (this.gcRunning != null) await this.gcRunning
    const run = (async () => {
      while (this.busy > 0) await new Promise(resolve => setTimeout(resolve, 20))
      const keep = new Set<string>()
      const mark = async (c: CID): Promise<void> => {
        const key = c.toV1().toString()
        if (keep.has(key)) return
        keep.add(key)
        let bytes: Uint8Array
        try {
          bytes = await this.blockstore.getBytes(c)
        } catch {
          return
        }
        for (const child of linksOf(c, bytes)) await mark(child)
      }
      for (const pin of await this.pins.ls()) await mark(CID.parse(pin.cid))
      for (const { cid } of [...this.holds.values()]) await mark(cid)
      let removed = 0
      let freedBytes = 0
      for await (const c of this.blockstore.cids()) {
        if (keep.has(c.toV1().toString())) continue
        freedBytes += await this.blockstore.sizeOnDisk(c)
        await this.blockstore.delete(c)
        removed++
      }
      // the space comes back when packs are rewritten or removed
      await this.blockstore.compact()
      this.keptBytes = this.blockstore.usage().liveBytes
      return { removed, freedBytes }
    })()
    this.gcRunning = run
    try {
      return await run
    } finally {
      this.gcRunning = undefined
    }
  }

  /** Asks up to `count` other peers, nearest first, to fetch and pin `cid`. */
  async replicate (cid: CID, count: number, options: FetchOptions = {}): Promise<ReplicaResult> {
    return await this.replication.replicate(cid, count, options.timeoutMs)
  }
}

/**
 * Imports one file, folder or byte stream into `batch` (UnixFS, the
 * importer computing each CID from the bytes it stores: no second hash);
 * returns its root. `onBytes` counts the file bytes read.
 */
async function importInto (batch: BlockBatch, source: string | AsyncIterable<Uint8Array>, onBytes: (n: number) => void): Promise<CID> {
  const counted = async function * (content: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of content) {
      onBytes(chunk.byteLength)
      yield chunk
    }
  }
  const pool = new ChunkPool()
  let candidates: ImportCandidate[] | AsyncIterable<ImportCandidate>
  let rootPath: string | undefined
  if (typeof source === 'string') {
    const info = await stat(source)
    if (info.isDirectory()) {
      rootPath = basename(source)
      const folder = source
      candidates = (async function * () {
        for await (const c of walkFolder(folder, rootPath, pool)) yield 'content' in c && c.content != null ? { ...c, content: counted(c.content as AsyncIterable<Uint8Array>) } : c
      })()
    } else {
      candidates = [{ content: counted(readFileChunks(source, pool)) }]
    }
  } else {
    candidates = [{ content: counted(source) }]
  }
  const put = async (cid: CID, block: Uint8Array): Promise<void> => { await batch.putStored(cid, await encodeStoredAsync(block)) }
  const { importer, options: importOptions } = await loadImporter({ put, release: (leaf) => { pool.give(leaf) } })
  const trusted = {
    put: async (cid: CID, block: Uint8Array) => {
      await put(cid, block)
      return cid
    },
    get: batch.get.bind(batch),
    has: batch.has.bind(batch)
  }
  let root: CID | undefined
  for await (const entry of importer(candidates, trusted as unknown as Blockstore, importOptions)) {
    if (rootPath == null || entry.path === rootPath) root = entry.cid
  }
  if (root == null) throw new ContentNotFoundError('nothing was imported')
  return root
}
