/**
 * The on-disk repo: identity key, config, API token, datastore and the lock that
 * keeps two daemons off one repo.
 *
 *   version        layout version (checked at open)
 *   config.json    versioned config (see config.ts)
 *   identity.key   Ed25519 private key, protobuf, mode 0600
 *   api.token      bearer token of the control API, mode 0600
 *   swarm.key      optional: pre-shared key of a private mesh, mode 0600
 *   daemon.lock    pid/peer/API of the running daemon
 *   datastore/     libp2p peer store (remembers peers across restarts), also
 *                  held in memory for reads (datastore.ts)
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { FsDatastore } from 'datastore-fs'
import { defaultConfig, parseConfig } from './config.ts'
import { CachedDatastore } from './datastore.ts'
import { FILES, REPO_VERSION } from './constants.ts'
import { ConfigError, RepoExistsError, RepoNotFoundError, RepoVersionError } from './errors.ts'
import { acquireLock } from './lock.ts'
import { parseSwarmKey, readSwarmKeyFile } from './swarm-key.ts'
import type { Config } from './config.ts'
import type { RepoLock } from './lock.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export * from './errors.ts'
export { readLock } from './lock.ts'
export { CachedDatastore, PROVIDER_PREFIX } from './datastore.ts'
export type { LockInfo, RepoLock } from './lock.ts'
export { defaultConfig, defaultWorkerConfig, parseConfig, parseHostPort, checkMultiaddr, LOG_LEVELS } from './config.ts'
export type { Config, LogLevel, ReplicationConfig, WorkerConfig } from './config.ts'
export { REPO_VERSION, CONFIG_VERSION } from './constants.ts'
export { generateSwarmKey, parseSwarmKey, readSwarmKeyFile, SWARM_KEY_BYTES } from './swarm-key.ts'

export interface Repo {
  readonly path: string
  readonly config: Config
  readonly privateKey: PrivateKey
  readonly apiToken: string
  /**
   * The private mesh's swarm key (v1 pnet text, validated), when the repo has a
   * swarm.key; the node then talks only to peers holding the same key.
   */
  readonly swarmKey?: string
  /** Opens the datastore (reads from memory, writes through to disk; see datastore.ts); the caller closes it. */
  openDatastore(): Promise<Datastore & { close(): Promise<void>, readonly size: number, countPrefix(prefix: string): number, readonly providerRecordsDropped: number, readonly peerRecordWritesSkipped: number }>
  /** Takes the daemon lock (RepoLockedError if a live daemon holds it). */
  lock(): Promise<RepoLock>
}

export interface InitRepoOptions {
  config?: Partial<Config>
  /** Swarm key text (v1 pnet format) to store as swarm.key: a private mesh. */
  swarmKey?: string
}

/** `--repo`, else $LEPTON_REPO, else ~/.lepton. */
export function resolveRepoPath (flag?: string): string {
  const fromEnv = process.env.LEPTON_REPO
  return resolve(flag ?? (fromEnv != null && fromEnv !== '' ? fromEnv : join(homedir(), '.lepton')))
}

export async function repoExists (path: string): Promise<boolean> {
  try {
    await readFile(join(path, FILES.version))
    return true
  } catch {
    return false
  }
}

/** Creates a new repo at `path`; refuses to touch an existing one. */
export async function initRepo (path: string, options: InitRepoOptions = {}): Promise<void> {
  if (await repoExists(path)) {
    throw new RepoExistsError(`a lepton repo already exists at ${path}; not overwriting it`)
  }
  // checked before anything is created
  const swarmKey = options.swarmKey == null ? undefined : parseSwarmKey(options.swarmKey, 'the swarm key')
  await mkdir(path, { recursive: true, mode: 0o700 })
  const entries = (await readdir(path)).filter(e => !e.startsWith('.'))
  if (entries.length > 0) {
    throw new RepoExistsError(`${path} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); choose an empty folder for the repo`)
  }
  const config = { ...defaultConfig(), ...options.config }
  const key = await generateKeyPair('Ed25519')
  await writeSecret(join(path, FILES.identity), privateKeyToProtobuf(key))
  await writeSecret(join(path, FILES.token), randomBytes(32).toString('base64url'))
  if (swarmKey != null) await writeSecret(join(path, FILES.swarmKey), swarmKey)
  await writeFile(join(path, FILES.config), JSON.stringify(config, null, 2) + '\n')
  await mkdir(join(path, FILES.datastore), { recursive: true })
  // written last: its presence marks a complete repo
  await writeFile(join(path, FILES.version), `${REPO_VERSION}\n`)
}

async function writeSecret (file: string, data: string | Uint8Array): Promise<void> {
  await writeFile(file, data, { mode: 0o600, flag: 'wx' })
  await chmod(file, 0o600) // in case the umask widened it
}

async function readVersion (path: string): Promise<void> {
  let text: string
  try {
    text = await readFile(join(path, FILES.version), 'utf8')
  } catch {
    throw new RepoNotFoundError(`no lepton repo at ${path}; create one with "lepton init --repo ${path}" (or start "lepton daemon", which creates it)`)
  }
  const version = Number(text.trim())
  if (!Number.isInteger(version)) throw new ConfigError(`repo version file ${join(path, FILES.version)} is corrupt ("${text.trim().slice(0, 20)}")`)
  if (version > REPO_VERSION) {
    throw new RepoVersionError(`repo ${path} has format version ${version}, newer than this lepton understands (${REPO_VERSION}); upgrade lepton`)
  }
}

/** Reads the config of the repo at `path` (validated). */
export async function readConfig (path: string): Promise<Config> {
  await readVersion(path)
  const file = join(path, FILES.config)
  return parseConfig(await readFile(file, 'utf8'), file)
}

/** Reads the API bearer token of the repo at `path`. */
export async function readApiToken (path: string): Promise<string> {
  await readVersion(path)
  return (await readFile(join(path, FILES.token), 'utf8')).trim()
}

export async function openRepo (path: string): Promise<Repo> {
  const config = await readConfig(path)
  const keyFile = join(path, FILES.identity)
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(await readFile(keyFile))
  } catch (err) {
    throw new ConfigError(`identity key ${keyFile} is unreadable or corrupt (${(err as Error).message})`)
  }
  const apiToken = await readApiToken(path)
  const swarmKey = await readRepoSwarmKey(path)
  return {
    path,
    config,
    privateKey,
    apiToken,
    ...(swarmKey != null ? { swarmKey } : {}),
    async openDatastore () {
      const ds = new CachedDatastore(new FsDatastore(join(path, FILES.datastore)), { self: peerIdFromPrivateKey(privateKey).toString() })
      await ds.open()
      return ds
    },
    lock: async () => await acquireLock(path)
  }
}

/** The repo's swarm key, or undefined for an open mesh (no swarm.key). */
async function readRepoSwarmKey (path: string): Promise<string | undefined> {
  const file = join(path, FILES.swarmKey)
  try {
    await stat(file)
  } catch (err) {
    // only a missing file means an open mesh; an unreadable key must not silently open it
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
  }
  return await readSwarmKeyFile(file)
}
