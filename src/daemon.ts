/**
 * The daemon: opens (or creates) the repo, takes its lock, starts the libp2p
 * node and the control API, and stops all of it in reverse order.
 */
import { readFile } from 'node:fs/promises'
import { getHeapSpaceStatistics } from 'node:v8'
import { apiRoutes, checkApiBind, startApiServer, AddressInUseError } from './api/index.ts'
import { limitBufferPool } from './buffer-pool.ts'
import { LeptonError } from './errors.ts'
import { loadMallocInfo, loadMallocTrim } from './malloc-trim.ts'
import { pagePoolRelease } from './v8-page-pool.ts'
import type { PagePoolRelease } from './v8-page-pool.ts'
import { silentLogger } from './log.ts'
import { createNode } from './node/index.ts'
import { checkMultiaddr, initRepo, openRepo, parseHostPort, PROVIDER_PREFIX, repoExists } from './repo/index.ts'
import { createStore } from './store/index.ts'
import { createJobs } from './jobs/index.ts'
import { createSandbox } from './sandbox/index.ts'
import { Router, medianOf } from './routing/index.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { VERSION } from './version.ts'
import type { ApiBackend, ApiServer, IdInfo, PeerInfo, RouteInfo, RttReport, StatusInfo } from './api/index.ts'
import type { Logger } from './log.ts'
import type { LeptonNode } from './node/index.ts'
import type { RepoLock } from './repo/index.ts'
import type { PeerId, Stream } from '@libp2p/interface'
import type { Store } from './store/index.ts'
import type { JobsService } from './jobs/index.ts'
import type { Sandbox } from './sandbox/index.ts'

export interface DaemonInit {
  /** Repo folder; created on first start. */
  repo: string
  /** Swarm listen multiaddrs; the config's when absent. */
  listen?: string[]
  /** Extra bootstrap multiaddrs, added to the config's. */
  bootstrap?: string[]
  /** HOST:PORT of the control API; the config's when absent. */
  api?: string
  /** Allow a non-loopback API address (warned about); the config's `apiPublic` when absent. */
  apiPublic?: boolean
  mdns?: boolean
  /** Relay for mesh members and forward along detours; the config's when absent. */
  relay?: boolean
  log?: Logger
  /** Milliseconds between RTT probes. @default 1000 */
  rttIntervalMs?: number
  /** Milliseconds between connection-count checks. @default 2000 */
  connectorIntervalMs?: number
  /** Task slots of this peer's worker (0: run no tasks); the config's when absent. */
  slots?: number
  /**
   * Every 30 s, have V8's next full collections empty its page pool
   * (src/v8-page-pool.ts): less RSS, more CPU. Off by default. With `lepton
   * daemon --memory-saver` the main heap's young generation is also pinned
   * at its size (cli/node-flags.ts).
   */
  memorySaver?: boolean
}

/**
 * How often the daemon returns glibc's free heap pages, and with the memory
 * saver V8's pooled ones at its next full collections (src/v8-page-pool.ts).
 * One malloc_trim took 1-3 ms in the soak's daemons (the memory log's
 * `trimMs` adds them up; 30 MiB malloc heaps). After 4 minutes of jobs on
 * 12 daemons one call gave back 2-14 MiB per daemon (median 8), of ~25 MiB
 * malloc heaps.
 */
const MALLOC_TRIM_INTERVAL_MS = 30_000

/** V8's flag is the process's: one switch for every daemon in it (undefined: the user set the mode). */
let pagePool: PagePoolRelease | undefined | null = null

export class Daemon implements ApiBackend {
  readonly node: LeptonNode
  readonly store: Store
  readonly router: Router
  readonly jobs: JobsService
  readonly repo: string
  private readonly sandbox: Sandbox
  private api?: ApiServer
  /** The repo has a swarm key: only peers holding it can connect. */
  private privateMesh = false
  private trimTimer?: NodeJS.Timeout
  /** Time spent in malloc_trim so far (the memory log's `trimMs`). */
  private mallocTrimMs = 0
  private readonly lock: RepoLock
  private readonly closeDatastore: () => Promise<void>
  private readonly startedAt = Date.now()
  private readonly log: Logger
  private stopping?: Promise<void>
  /** Resolves once the daemon has stopped (by stop() or the API). */
  readonly stopped: Promise<void>
  private resolveStopped!: () => void

  private constructor (parts: { node: LeptonNode, store: Store, router: Router, jobs: JobsService, sandbox: Sandbox, repo: string, lock: RepoLock, closeDatastore: () => Promise<void>, log: Logger }) {
    this.node = parts.node
    this.store = parts.store
    this.router = parts.router
    this.jobs = parts.jobs
    this.sandbox = parts.sandbox
    this.repo = parts.repo
    this.lock = parts.lock
    this.closeDatastore = parts.closeDatastore
    this.log = parts.log
    this.stopped = new Promise(resolve => { this.resolveStopped = resolve })
  }

  static async start (init: DaemonInit): Promise<Daemon> {
    const log = init.log ?? silentLogger
    // small long-lived buffers would each keep a 64 KiB pool (buffer-pool.ts)
    limitBufferPool()
    init.listen?.forEach(a => checkMultiaddr(a, '--listen'))
    init.bootstrap?.forEach(a => checkMultiaddr(a, '--bootstrap'))
    if (init.api != null) {
      const { host, port } = parseHostPort(init.api, '--api address')
      // a new repo's config says apiPublic: false; refuse before creating it
      if (init.apiPublic !== true && !await repoExists(init.repo)) checkApiBind(host, port, false)
    }
    if (!await repoExists(init.repo)) {
      await initRepo(init.repo)
      log.info('created repo', { path: init.repo })
    }
    const repo = await openRepo(init.repo)
    // refused before anything starts: a public API is an explicit choice
    const apiAddr = parseHostPort(init.api ?? repo.config.api)
    const apiPublic = init.apiPublic ?? repo.config.apiPublic
    checkApiBind(apiAddr.host, apiAddr.port, apiPublic)
    const lock = await repo.lock()
    const cleanups: Array<() => Promise<void>> = [async () => { await lock.release() }]
    const unwind = async (): Promise<void> => {
      for (const fn of cleanups.reverse()) await fn().catch(() => {})
    }
    try {
      const datastore = await repo.openDatastore()
      cleanups.push(async () => { await datastore.close() })
      const listen = init.listen ?? repo.config.listen
      const bootstrap = [...repo.config.bootstrap, ...(init.bootstrap ?? [])]
      let node: LeptonNode
      try {
        node = await createNode({
          privateKey: repo.privateKey,
          swarmKey: repo.swarmKey,
          datastore,
          listen,
          maxConnections: repo.config.connections.max,
          mdns: init.mdns ?? repo.config.mdns,
          relay: init.relay ?? repo.config.relay,
          rtt: { intervalMs: init.rttIntervalMs },
          connector: { bootstrap, targetConnections: repo.config.connections.target, intervalMs: init.connectorIntervalMs, log: log.child('connector') }
        })
      } catch (err) {
        throw listenError(err as Error, listen)
      }
      cleanups.push(async () => { await node.stop() })
      const router = new Router(node, { log: log.child('routing') })
      router.start()
      cleanups.push(async () => { router.stop() })
      // block streams follow the chosen route (detours need relay: true)
      const openStream = async (peer: PeerId, protocol: string, signal?: AbortSignal): Promise<Stream> => await router.openStream(peer, protocol, signal)
      const store = createStore({ node, repoPath: init.repo, log: log.child('store'), openStream, replicaGraceMs: repo.config.replication.graceS * 1000, pinRequests: { accept: repo.config.replication.accept, minFreeBytes: repo.config.replication.minFreeMiB * 1024 * 1024 }, cacheBytes: repo.config.store.cacheMiB * 1024 * 1024 })
      await store.start()
      cleanups.push(async () => { await store.stop() })
      const worker = { ...repo.config.worker, ...(init.slots != null ? { slots: init.slots } : {}) }
      // "job" isolation: the worker names code by code CID and job id, so a context is shared within one job only
      const sandbox = createSandbox({ reuseContexts: worker.isolation === 'job' })
      cleanups.push(async () => { await sandbox.close() })
      const jobs = createJobs({ node, store, sandbox, repoPath: init.repo, worker, log: log.child('jobs'), openStream })
      await jobs.start()
      cleanups.push(async () => { await jobs.stop() })
      const daemon = new Daemon({ node, store, router, jobs, sandbox, repo: init.repo, lock, closeDatastore: async () => { await datastore.close() }, log })
      daemon.privateMesh = repo.swarmKey != null
      daemon.api = await startApiServer({ host: apiAddr.host, port: apiAddr.port, allowPublic: apiPublic, token: repo.apiToken, routes: apiRoutes(daemon), log: log.child('api') })
      await lock.update({ peerId: node.peerId.toString(), api: daemon.api.address })
      log.info('started', { peer: node.peerId.toString(), api: daemon.api.address, private: repo.swarmKey != null })
      daemon.startMallocTrim(init.memorySaver === true)
      if (process.env.LEPTON_MEMORY_LOG_MS != null) {
        // operators chasing memory: one line per interval, in MiB
        const mib = (n: number): number => Math.round(n / 1048576)
        // with node --expose-gc, measured after a full collection: the live set, not the garbage
        const collect = (globalThis as { gc?: () => void }).gc
        // and what the node did since the last line: CPU ms, libp2p events, gossip messages
        const counts: Record<string, number> = {}
        const count = (name: string) => () => { counts[name] = (counts[name] ?? 0) + 1 }
        for (const name of ['peer:update', 'self:peer:update', 'peer:discovery', 'connection:open', 'peer:identify'] as const) node.addEventListener(name, count(name))
        node.services.pubsub.addEventListener('gossipsub:message', count('gossip'))
        let cpu = process.cpuUsage()
        // glibc's own accounting, where the native helper is built
        const mallocInfo = loadMallocInfo()
        const timer = setInterval(() => {
          collect?.()
          const cpuNow = process.cpuUsage()
          const cpuMs = Math.round((cpuNow.user - cpu.user + cpuNow.system - cpu.system) / 1000)
          cpu = cpuNow
          const events = Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(',')
          for (const k of Object.keys(counts)) counts[k] = 0
          const m = process.memoryUsage()
          const spaces = Object.fromEntries(getHeapSpaceStatistics().map(sp => [sp.space_name, sp]))
          const space = (name: string): number => mib(spaces[name]?.space_size ?? 0)
          const malloc = mallocInfo?.()
          Promise.all([sandbox.memory(), residentSplit()]).then(([s, resident]) => {
            log.info('memory', {
              rss: mib(m.rss),
              ...resident,
              heapTotal: mib(m.heapTotal),
              heapUsed: mib(m.heapUsed),
              newSpace: space('new_space'),
              oldSpace: space('old_space'),
              oldUsed: mib(spaces.old_space?.space_used_size ?? 0),
              largeObjects: space('large_object_space'),
              code: space('code_space'),
              external: mib(m.external),
              arrayBuffers: mib(m.arrayBuffers),
              isolates: s.isolates,
              isolatesCreated: s.isolatesCreated,
              isolateHeap: mib(s.isolateHeap.total),
              isolateExternal: mib(s.isolateHeap.external),
              v8PoolReleases: pagePool?.releases ?? 0,
              trimMs: Math.round(daemon.mallocTrimMs),
              ...(malloc == null ? {} : { mallocHeap: mib(malloc.heap), mallocInUse: mib(malloc.inUse), mallocFree: mib(malloc.free), mallocMmapped: mib(malloc.mmapped) }),
              ...jobs.memory(),
              datastoreKeys: datastore.size,
              providerRecords: datastore.countPrefix(PROVIDER_PREFIX),
              providersDropped: datastore.providerRecordsDropped,
              peerWritesSkipped: datastore.peerRecordWritesSkipped,
              announcementsSent: router.announcements.sent,
              announcementsSkipped: router.announcements.skipped,
              ...connectionCounts(node.getConnections()),
              cpuMs,
              events
            })
          }).catch(() => {})
        }, Number(process.env.LEPTON_MEMORY_LOG_MS))
        timer.unref()
      }
      return daemon
    } catch (err) {
      await unwind()
      throw err
    }
  }

  /**
   * Every MALLOC_TRIM_INTERVAL_MS, hands the free pages inside glibc's malloc
   * heap back to the system (src/malloc-trim.ts; skipped, and said so, where
   * the helper is not built) and, with `memorySaver`, has V8's next full
   * collections empty its page pool (src/v8-page-pool.ts).
   */
  private startMallocTrim (memorySaver: boolean): void {
    const trim = loadMallocTrim()
    if (trim == null && process.platform === 'linux') this.log.info('malloc_trim helper not built (npm ci builds it with node-gyp): freed native memory stays with the daemon')
    if (memorySaver && pagePool === null) {
      pagePool = pagePoolRelease()
      if (pagePool == null) this.log.info('memory saver: V8\'s memory saver mode was set on the command line, so it is left as set')
    }
    const pool = memorySaver ? pagePool : undefined
    this.trimTimer = setInterval(() => {
      const t0 = performance.now()
      trim?.()
      this.mallocTrimMs += performance.now() - t0
      pool?.arm()
    }, MALLOC_TRIM_INTERVAL_MS)
    this.trimTimer.unref()
  }

  get apiAddress (): string {
    return this.api?.address ?? ''
  }

  id (): IdInfo {
    return { peerId: this.node.peerId.toString(), addresses: this.directAddresses() }
  }

  /**
   * Our own dialable addresses: relay (`/p2p-circuit`) addresses are never
   * among them, the node does not announce them (src/node: announceFilter).
   */
  private directAddresses (): string[] {
    return this.node.getMultiaddrs().map(a => a.toString())
  }

  /** Connected peers with the addresses they listen on (from identify) and their RTT. */
  async peers (): Promise<PeerInfo[]> {
    const out: PeerInfo[] = []
    for (const peer of this.node.getPeers()) {
      const id = peer.toString()
      let addresses: string[] = []
      try {
        addresses = (await this.node.peerStore.get(peer)).addresses
          .filter(a => !isCircuit(a.multiaddr.toString()))
          .map(a => a.multiaddr.encapsulate(`/p2p/${id}`).toString())
      } catch {}
      if (addresses.length === 0) addresses = this.node.getConnections(peer).map(c => c.remoteAddr.toString())
      const rttMs = this.node.services.rtt.rttMs(peer)
      out.push({ peerId: id, addresses, rttMs: rttMs === undefined ? null : round3(rttMs) })
    }
    return out.sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  routes (): RouteInfo[] {
    return this.router.routes().map(r => ({
      peerId: r.destination,
      directRttMs: r.directRttMs == null ? null : round3(r.directRttMs),
      path: r.path,
      rttMs: round3(r.rttMs),
      improvement: Math.round(r.improvement * 1000) / 1000
    }))
  }

  async rtt (peerId: string, count: number): Promise<RttReport> {
    let peer
    try {
      peer = peerIdFromString(peerId)
    } catch {
      throw new LeptonError(`"${peerId}" is not a valid peer id (expected e.g. 12D3KooW...)`)
    }
    const samplesMs: number[] = []
    for (let i = 0; i < Math.min(count, 100); i++) samplesMs.push(round3(await this.node.services.rtt.measure(peer)))
    const stats = this.node.services.rtt.stats(peer)
    return {
      peerId,
      samplesMs,
      medianMs: round3(medianOf(samplesMs)),
      filteredRttMs: stats == null ? null : round3(stats.rttMs),
      jitterMs: stats == null ? null : round3(stats.jitterMs),
      lossRate: stats == null ? null : Math.round(stats.lossRate * 1000) / 1000
    }
  }

  status (): StatusInfo {
    return {
      peerId: this.node.peerId.toString(),
      version: VERSION,
      uptimeMs: Date.now() - this.startedAt,
      peerCount: new Set(this.node.getConnections().map(c => c.remotePeer.toString())).size,
      listenAddresses: this.directAddresses(),
      repo: this.repo,
      api: this.apiAddress,
      private: this.privateMesh
    }
  }

  /** Stops the API, the node and the datastore, then releases the lock. Idempotent. */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('stopping')
      clearInterval(this.trimTimer)
      await this.api?.close().catch(() => {})
      await this.jobs.stop().catch((err: Error) => { this.log.warn('jobs stop failed', { err }) })
      await this.sandbox.close().catch(() => {})
      this.router.stop()
      await this.store.stop().catch((err: Error) => { this.log.warn('store stop failed', { err }) })
      await Promise.resolve(this.node.stop()).catch((err: Error) => { this.log.warn('libp2p stop failed', { err }) })
      await this.closeDatastore().catch(() => {})
      await this.lock.release().catch(() => {})
      this.log.info('stopped')
      this.resolveStopped()
    })()
    await this.stopping
  }
}

function listenError (err: Error, listen: string[]): Error {
  const text = `${err.message} ${String((err as { cause?: unknown }).cause ?? '')}`
  if (/EADDRINUSE/.test(text)) return new AddressInUseError(`swarm address already in use (${listen.join(', ')}); pick another with --listen /ip4/0.0.0.0/tcp/PORT`)
  if (/EADDRNOTAVAIL/.test(text)) return new AddressInUseError(`cannot listen on ${listen.join(', ')}: no such local address`)
  if (err.name === 'NoValidAddressesError' || err.name === 'UnsupportedListenAddressesError') {
    return new LeptonError(`cannot listen on ${listen.join(', ')} (${err.message})`)
  }
  return err
}

/** Milliseconds to the microsecond, for display. */
function round3 (ms: number): number {
  return Math.round(ms * 1000) / 1000
}

function isCircuit (addr: string): boolean {
  return addr.includes('/p2p-circuit')
}

/**
 * RSS split as Linux counts it (/proc/self/status, KiB -> MiB): anonymous
 * memory (heaps, malloc) and file pages (the node binary and libraries as
 * their code is first used). Empty where there is no /proc.
 */
async function residentSplit (): Promise<{ rssAnon?: number, rssFile?: number }> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '')
  const kib = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)
    return m == null ? undefined : Math.round(Number(m[1]) / 1024)
  }
  return { rssAnon: kib('RssAnon'), rssFile: kib('RssFile') }
}

/** Open connections for the memory log: all, relayed (through a circuit), and per remote peer at most. */
function connectionCounts (conns: Array<{ remoteAddr: { toString(): string }, remotePeer: { toString(): string } }>): { conns: number, relayed: number, perPeerMax: number } {
  const perPeer = new Map<string, number>()
  let relayed = 0
  for (const c of conns) {
    if (isCircuit(c.remoteAddr.toString())) relayed++
    const p = c.remotePeer.toString()
    perPeer.set(p, (perPeer.get(p) ?? 0) + 1)
  }
  return { conns: conns.length, relayed, perPeerMax: Math.max(0, ...perPeer.values()) }
}
