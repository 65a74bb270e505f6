import { availableParallelism } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import { CONFIG_VERSION, DEFAULT_API, DEFAULT_LISTEN } from './constants.ts'
import { ConfigError, RepoVersionError } from './errors.ts'

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export interface ConnectionsConfig {
  /** Connections the daemon keeps open by dialling peers it knows. */
  target: number
  /** Hard cap on open connections (libp2p prunes above it). */
  max: number
}

/** What this peer offers the mesh as a worker. */
export interface WorkerConfig {
  /** Tasks run at once (0: run no tasks for anyone). @default the CPU count */
  slots: number
  /** Heap (JS) or linear memory (wasm) cap per task, MiB. @default 256 */
  memoryMiB: number
  /** Time cap per task, ms. @default 60000 */
  timeMs: number
  /** Whose tasks to run: "any" mesh member, or a list of peer ids. @default "any" */
  accept: 'any' | string[]
  /** Runtimes enabled. @default ["js", "wasm"] */
  runtimes: Array<'js' | 'wasm'>
  /**
   * "job": tasks of one job on this worker share a warm JS context (~0.1 ms a
   * task; module-level state persists between them). "task": a fresh context
   * for every task (~2 ms of CPU a task; nothing persists). @default "job"
   */
  isolation: 'job' | 'task'
}

export interface Config {
  version: number
  /** Multiaddrs the swarm listens on. */
  listen: string[]
  /** Peers dialled at start; learned peers are remembered in the datastore. */
  bootstrap: string[]
  /** HOST:PORT of the local control API. */
  api: string
  /**
   * Allow `api` on a non-loopback address. Off, the daemon refuses to start
   * with one: anyone who can reach the port and has the token controls it.
   * @default false
   */
  apiPublic: boolean
  connections: ConnectionsConfig
  logLevel: LogLevel
  /** Find peers on the LAN by multicast DNS as well. */
  mdns: boolean
  /** Relay for mesh members and send traffic along detours (circuit relay v2). */
  relay: boolean
  worker: WorkerConfig
  replication: ReplicationConfig
  store: StoreConfig
}

export interface StoreConfig {
  /**
   * Unpinned data (fetched blocks, jobs' inputs and outputs) kept before the
   * daemon runs gc by itself, in MiB; 0: only `lepton gc` collects. @default 4096
   */
  cacheMiB: number
}

export interface ReplicationConfig {
  /** Seconds a holder of a `--replicas N` CID may be out of reach before another peer copies it. @default 300 */
  graceS: number
  /** Whose requests to fetch and pin content here to take: "any" mesh member, or a list of peer ids. @default "any" */
  accept: 'any' | string[]
  /**
   * Free disk space (MiB) that other peers' pin requests must leave: one is
   * refused below it, and a fetch for one stops when the disk gets there. @default 1024
   */
  minFreeMiB: number
}

export function defaultWorkerConfig (): WorkerConfig {
  return { slots: availableParallelism(), memoryMiB: 256, timeMs: 60_000, accept: 'any', runtimes: ['js', 'wasm'], isolation: 'job' }
}

export function defaultConfig (): Config {
  return {
    version: CONFIG_VERSION,
    listen: [...DEFAULT_LISTEN],
    bootstrap: [],
    api: DEFAULT_API,
    apiPublic: false,
    connections: { target: 32, max: 128 },
    logLevel: 'info',
    mdns: false,
    relay: true,
    worker: defaultWorkerConfig(),
    replication: { graceS: 300, accept: 'any', minFreeMiB: 1024 },
    store: { cacheMiB: 4096 }
  }
}

/** Throws a ConfigError naming the bad value unless `addr` parses as a multiaddr. */
export function checkMultiaddr (addr: string, what: string): string {
  try {
    multiaddr(addr)
  } catch {
    throw new ConfigError(`malformed ${what} multiaddr "${addr}" (expected e.g. /ip4/127.0.0.1/tcp/4680)`)
  }
  return addr
}

/** Parses HOST:PORT (IPv6 as [::1]:PORT); throws ConfigError on anything else. */
export function parseHostPort (value: string, what = 'API address'): { host: string, port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value)
  const port = Number(match?.[3])
  if (match == null || port > 65535) {
    throw new ConfigError(`malformed ${what} "${value}" (expected HOST:PORT, e.g. 127.0.0.1:4681)`)
  }
  return { host: match[1] ?? match[2] ?? '', port }
}

/** Validates parsed config.json; `file` names it in errors. */
export function parseConfig (text: string, file: string): Config {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON (${(err as Error).message}); fix it or move it away and run lepton init`)
  }
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config file ${file} must hold a JSON object`)
  }
  const obj = raw as Record<string, unknown>
  if (typeof obj.version !== 'number' || !Number.isInteger(obj.version)) {
    throw new ConfigError(`config file ${file} has no version number`)
  }
  if (obj.version > CONFIG_VERSION) {
    throw new RepoVersionError(`config file ${file} has version ${obj.version}, newer than this lepton understands (${CONFIG_VERSION}); upgrade lepton`)
  }
  for (const section of ['connections', 'worker', 'replication', 'store']) {
    const v = obj[section]
    if (v !== undefined && (v == null || typeof v !== 'object' || Array.isArray(v))) {
      throw new ConfigError(`config file ${file}: "${section}" must be an object`)
    }
  }
  const defaults = defaultConfig()
  const config: Config = { ...defaults, ...obj, connections: { ...defaults.connections, ...(obj.connections as object ?? {}) }, worker: { ...defaults.worker, ...(obj.worker as object ?? {}) }, replication: { ...defaults.replication, ...(obj.replication as object ?? {}) }, store: { ...defaults.store, ...(obj.store as object ?? {}) } } as Config
  const bad = (field: string, expected: string): never => {
    throw new ConfigError(`config file ${file}: "${field}" must be ${expected}`)
  }
  if (!isStringArray(config.listen)) bad('listen', 'an array of multiaddr strings')
  if (!isStringArray(config.bootstrap)) bad('bootstrap', 'an array of multiaddr strings')
  if (typeof config.api !== 'string') bad('api', 'a "HOST:PORT" string')
  if (!LOG_LEVELS.includes(config.logLevel)) bad('logLevel', `one of ${LOG_LEVELS.join(', ')}`)
  if (typeof config.apiPublic !== 'boolean') bad('apiPublic', 'true or false')
  if (typeof config.mdns !== 'boolean') bad('mdns', 'true or false')
  if (typeof config.relay !== 'boolean') bad('relay', 'true or false')
  if (!isPositiveInt(config.connections.target)) bad('connections.target', 'a positive integer')
  if (!isPositiveInt(config.connections.max)) bad('connections.max', 'a positive integer')
  if (!isPositiveInt(config.replication.graceS)) bad('replication.graceS', 'a positive integer (seconds)')
  if (config.replication.accept !== 'any' && !isStringArray(config.replication.accept)) bad('replication.accept', '"any" or an array of peer ids')
  if (!Number.isInteger(config.replication.minFreeMiB) || config.replication.minFreeMiB < 0) bad('replication.minFreeMiB', 'an integer >= 0 (MiB)')
  if (!Number.isInteger(config.store.cacheMiB) || config.store.cacheMiB < 0) bad('store.cacheMiB', 'an integer >= 0 (MiB; 0 turns automatic gc off)')
  const w = config.worker
  if (!Number.isInteger(w.slots) || w.slots < 0 || w.slots > 1024) bad('worker.slots', 'an integer from 0 to 1024')
  if (!isPositiveInt(w.memoryMiB) || w.memoryMiB < 8) bad('worker.memoryMiB', 'an integer of at least 8')
  if (!isPositiveInt(w.timeMs)) bad('worker.timeMs', 'a positive integer (milliseconds)')
  if (w.accept !== 'any' && !isStringArray(w.accept)) bad('worker.accept', '"any" or an array of peer ids')
  if (!Array.isArray(w.runtimes) || !w.runtimes.every(r => r === 'js' || r === 'wasm')) bad('worker.runtimes', 'an array of "js" and/or "wasm"')
  if (w.isolation !== 'job' && w.isolation !== 'task') bad('worker.isolation', '"job" or "task"')
  config.listen.forEach(a => checkMultiaddr(a, `listen (in ${file})`))
  config.bootstrap.forEach(a => checkMultiaddr(a, `bootstrap (in ${file})`))
  parseHostPort(config.api, `api address (in ${file})`)
  return config
}

function isStringArray (value: unknown): value is string[] {
  return Array.isArray(value) && value.every(v => typeof v === 'string')
}

function isPositiveInt (value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value > 0
}
