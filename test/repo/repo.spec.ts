import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  CONFIG_VERSION,
  ConfigError,
  REPO_VERSION,
  RepoExistsError,
  RepoLockedError,
  RepoNotFoundError,
  RepoVersionError,
  defaultConfig,
  initRepo,
  openRepo,
  parseConfig,
  parseHostPort,
  readApiToken,
  readConfig,
  readLock,
  resolveRepoPath
} from '../../src/repo/index.ts'
import type { RepoLock } from '../../src/repo/index.ts'
import { catchSync, rejection } from '../helpers/errors.ts'

/** The pid of a process that has already exited. */
function deadPid (): number {
  const child = spawnSync(process.execPath, ['-e', ''])
  const pid = child.pid
  if (pid == null || pid <= 0) throw new Error('could not spawn a child process')
  return pid
}

let base: string
let repoPath: string
const locks: RepoLock[] = []

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'lepton-repo-'))
  repoPath = join(base, 'repo')
})

afterEach(async () => {
  for (const lock of locks.splice(0)) await lock.release()
  vi.unstubAllEnvs()
  await rm(base, { recursive: true, force: true })
})

describe('initRepo', () => {
  it('creates version, config.json, identity.key, api.token and the datastore folder', async () => {
    await initRepo(repoPath)
    const entries = (await readdir(repoPath)).sort()
    expect(entries).toEqual(['api.token', 'config.json', 'datastore', 'identity.key', 'version'])
    expect((await readFile(join(repoPath, 'version'), 'utf8')).trim()).toBe(String(REPO_VERSION))
    const config = JSON.parse(await readFile(join(repoPath, 'config.json'), 'utf8'))
    expect(config).toEqual(defaultConfig())
    expect(config.version).toBe(CONFIG_VERSION)
    const token = (await readFile(join(repoPath, 'api.token'), 'utf8')).trim()
    expect(token.length).toBeGreaterThanOrEqual(32)
    expect((await readFile(join(repoPath, 'identity.key'))).byteLength).toBeGreaterThan(0)
    expect((await stat(join(repoPath, 'datastore'))).isDirectory()).toBe(true)
  })

  it('writes the identity key and the API token with mode 0600', async () => {
    await initRepo(repoPath)
    for (const file of ['identity.key', 'api.token']) {
      const st = await stat(join(repoPath, file))
      expect({ file, mode: (st.mode & 0o777).toString(8) }).toEqual({ file, mode: '600' })
    }
  })

  it('merges config overrides into the defaults', async () => {
    await initRepo(repoPath, { config: { api: '127.0.0.1:0', mdns: true } })
    const config = await readConfig(repoPath)
    expect(config.api).toBe('127.0.0.1:0')
    expect(config.mdns).toBe(true)
    expect(config.listen).toEqual(defaultConfig().listen)
  })

  it('gives every repo its own token and key', async () => {
    const other = join(base, 'other')
    await initRepo(repoPath)
    await initRepo(other)
    expect(await readApiToken(repoPath)).not.toBe(await readApiToken(other))
    const a = await openRepo(repoPath)
    const b = await openRepo(other)
    expect(a.privateKey.publicKey.equals(b.privateKey.publicKey)).toBe(false)
  })

  it('refuses an existing repo with RepoExistsError and leaves it untouched', async () => {
    await initRepo(repoPath)
    const token = await readApiToken(repoPath)
    const key = await readFile(join(repoPath, 'identity.key'))
    const err = await rejection(initRepo(repoPath))
    expect(err).toBeInstanceOf(RepoExistsError)
    expect(err.name).toBe('RepoExistsError')
    expect(await readApiToken(repoPath)).toBe(token)
    expect(await readFile(join(repoPath, 'identity.key'))).toEqual(key)
  })

  it('refuses a non-empty folder that is not a repo, naming what is in it', async () => {
    await mkdir(repoPath)
    await writeFile(join(repoPath, 'notes.txt'), 'mine')
    const err = await rejection(initRepo(repoPath))
    expect(err).toBeInstanceOf(RepoExistsError)
    expect(err.name).toBe('RepoExistsError')
    expect(err.message).toContain('notes.txt')
    expect(await readdir(repoPath)).toEqual(['notes.txt'])
  })

  it('accepts a folder that only holds hidden files', async () => {
    await mkdir(repoPath)
    await writeFile(join(repoPath, '.keep'), '')
    await initRepo(repoPath)
    expect((await readdir(repoPath)).sort()).toContain('version')
  })
})

describe('openRepo', () => {
  it('returns the same Ed25519 private key on every open', async () => {
    await initRepo(repoPath)
    const first = await openRepo(repoPath)
    const second = await openRepo(repoPath)
    expect(first.privateKey.type).toBe('Ed25519')
    expect(second.privateKey.type).toBe('Ed25519')
    expect(first.privateKey.equals(second.privateKey)).toBe(true)
    expect(first.privateKey.publicKey.toString()).toBe(second.privateKey.publicKey.toString())
  })

  it('exposes the path, config and the token stored in api.token', async () => {
    await initRepo(repoPath)
    const repo = await openRepo(repoPath)
    expect(repo.path).toBe(repoPath)
    expect(repo.config).toEqual(defaultConfig())
    expect(repo.apiToken).toBe((await readFile(join(repoPath, 'api.token'), 'utf8')).trim())
  })

  it('throws RepoNotFoundError when there is no repo', async () => {
    const err = await rejection(openRepo(join(base, 'missing')))
    expect(err).toBeInstanceOf(RepoNotFoundError)
    expect(err.name).toBe('RepoNotFoundError')
    expect(err.message).toContain(join(base, 'missing'))
  })

  it('throws RepoNotFoundError for an empty folder', async () => {
    await mkdir(repoPath)
    const err = await rejection(openRepo(repoPath))
    expect(err.name).toBe('RepoNotFoundError')
  })

  it('throws RepoVersionError when the version file is newer than REPO_VERSION', async () => {
    await initRepo(repoPath)
    await writeFile(join(repoPath, 'version'), `${REPO_VERSION + 1}\n`)
    const err = await rejection(openRepo(repoPath))
    expect(err).toBeInstanceOf(RepoVersionError)
    expect(err.name).toBe('RepoVersionError')
    expect(err.message).toContain(String(REPO_VERSION + 1))
    const viaConfig = await rejection(readConfig(repoPath))
    expect(viaConfig.name).toBe('RepoVersionError')
  })

  it('throws ConfigError for a corrupt identity key', async () => {
    await initRepo(repoPath)
    await writeFile(join(repoPath, 'identity.key'), 'not a key')
    const err = await rejection(openRepo(repoPath))
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.message).toContain(join(repoPath, 'identity.key'))
  })
})

describe('resolveRepoPath', () => {
  it('prefers the flag over $LEPTON_REPO and the home folder', () => {
    vi.stubEnv('LEPTON_REPO', join(base, 'from-env'))
    vi.stubEnv('HOME', join(base, 'home'))
    expect(resolveRepoPath(join(base, 'from-flag'))).toBe(join(base, 'from-flag'))
  })

  it('uses $LEPTON_REPO when there is no flag', () => {
    vi.stubEnv('LEPTON_REPO', join(base, 'from-env'))
    vi.stubEnv('HOME', join(base, 'home'))
    expect(resolveRepoPath()).toBe(join(base, 'from-env'))
  })

  it('falls back to ~/.lepton', () => {
    vi.stubEnv('LEPTON_REPO', undefined)
    vi.stubEnv('HOME', join(base, 'home'))
    expect(resolveRepoPath()).toBe(join(base, 'home', '.lepton'))
  })

  it('returns an absolute path for a relative flag', () => {
    expect(resolveRepoPath('some/where')).toBe(resolve(process.cwd(), 'some/where'))
  })
})

describe('readConfig and parseConfig', () => {
  const file = '/somewhere/config.json'
  const withFields = (fields: Record<string, unknown>): string => JSON.stringify({ ...defaultConfig(), ...fields })

  it('parses the default config back to itself', () => {
    expect(parseConfig(JSON.stringify(defaultConfig()), file)).toEqual(defaultConfig())
  })

  it('fills missing fields with defaults', () => {
    const config = parseConfig(JSON.stringify({ version: CONFIG_VERSION, logLevel: 'debug', connections: { max: 5 } }), file)
    expect(config.logLevel).toBe('debug')
    expect(config.connections).toEqual({ target: defaultConfig().connections.target, max: 5 })
    expect(config.listen).toEqual(defaultConfig().listen)
    expect(config.replication).toEqual({ graceS: 300, accept: 'any', minFreeMiB: 1024 })
    expect(config.store).toEqual({ cacheMiB: 4096 })
  })

  it('corrupt JSON in config.json: ConfigError naming the file', async () => {
    await initRepo(repoPath)
    await writeFile(join(repoPath, 'config.json'), '{ "version": 1, ')
    const err = await rejection(readConfig(repoPath))
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.name).toBe('ConfigError')
    expect(err.message).toContain(join(repoPath, 'config.json'))
  })

  it('a config that is not an object is a ConfigError', () => {
    expect(catchSync(() => parseConfig('[1, 2]', file))).toBeInstanceOf(ConfigError)
    expect(catchSync(() => parseConfig('null', file))).toBeInstanceOf(ConfigError)
    expect(catchSync(() => parseConfig('{}', file)).message).toContain('version')
  })

  it('a config version newer than CONFIG_VERSION is a RepoVersionError', async () => {
    const err = catchSync(() => parseConfig(withFields({ version: CONFIG_VERSION + 1 }), file))
    expect(err).toBeInstanceOf(RepoVersionError)
    expect(err.name).toBe('RepoVersionError')
    expect(err.message).toContain(file)

    await initRepo(repoPath)
    await writeFile(join(repoPath, 'config.json'), withFields({ version: CONFIG_VERSION + 1 }))
    expect((await rejection(readConfig(repoPath))).name).toBe('RepoVersionError')
  })

  const badFields: Array<[string, Record<string, unknown>, string]> = [
    ['listen that is not an array', { listen: '/ip4/0.0.0.0/tcp/1' }, 'listen'],
    ['listen holding a non-string', { listen: [42] }, 'listen'],
    ['bootstrap that is not an array', { bootstrap: {} }, 'bootstrap'],
    ['an unknown logLevel', { logLevel: 'verbose' }, 'logLevel'],
    ['a malformed listen multiaddr', { listen: ['not-a-multiaddr'] }, 'not-a-multiaddr'],
    ['a malformed bootstrap multiaddr', { bootstrap: ['/ip4/1.2.3/tcp'] }, '/ip4/1.2.3/tcp'],
    ['an api that is not HOST:PORT', { api: 'localhost' }, 'localhost'],
    ['an api with a port out of range', { api: '127.0.0.1:70000' }, '127.0.0.1:70000'],
    ['an api that is not a string', { api: 4681 }, 'api'],
    ['mdns that is not a boolean', { mdns: 'yes' }, 'mdns'],
    ['a zero connections.target', { connections: { target: 0, max: 10 } }, 'connections.target'],
    ['a fractional connections.max', { connections: { target: 1, max: 1.5 } }, 'connections.max'],
    ['a zero replication.graceS', { replication: { graceS: 0 } }, 'replication.graceS'],
    ['a replication.accept that is not "any" or a list', { replication: { accept: 'me' } }, 'replication.accept'],
    ['a negative replication.minFreeMiB', { replication: { minFreeMiB: -1 } }, 'replication.minFreeMiB'],
    ['a negative store.cacheMiB', { store: { cacheMiB: -1 } }, 'store.cacheMiB'],
    ['a fractional store.cacheMiB', { store: { cacheMiB: 1.5 } }, 'store.cacheMiB'],
    ['a replication section that is not an object', { replication: 300 }, 'replication']
  ]
  for (const [what, fields, mention] of badFields) {
    it(`${what} is a ConfigError naming the field or value`, () => {
      const err = catchSync(() => parseConfig(withFields(fields), file))
      expect(err).toBeInstanceOf(ConfigError)
      expect(err.name).toBe('ConfigError')
      expect(err.message).toContain(mention)
      expect(err.message).toContain(file)
    })
  }
})

describe('parseHostPort', () => {
  it('parses IPv4 HOST:PORT, including port 0', () => {
    expect(parseHostPort('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 })
    expect(parseHostPort('127.0.0.1:4681')).toEqual({ host: '127.0.0.1', port: 4681 })
  })

  it('parses a bracketed IPv6 address', () => {
    expect(parseHostPort('[::1]:80')).toEqual({ host: '::1', port: 80 })
  })

  it('parses a host name', () => {
    expect(parseHostPort('localhost:65535')).toEqual({ host: 'localhost', port: 65535 })
  })

  for (const bad of ['foo', '1.2.3.4:99999', '1.2.3.4:65536', '::1:80', ':80', '1.2.3.4:', '1.2.3.4:-1', '1.2.3.4:80x']) {
    it(`rejects "${bad}" with a ConfigError`, () => {
      const err = catchSync(() => parseHostPort(bad))
      expect(err).toBeInstanceOf(ConfigError)
      expect(err.message).toContain(bad)
    })
  }
})

describe('daemon lock', () => {
  async function lockOf (): Promise<RepoLock> {
    const repo = await openRepo(repoPath)
    const lock = await repo.lock()
    locks.push(lock)
    return lock
  }

  beforeEach(async () => {
    await initRepo(repoPath)
  })

  it('a second lock in the same process throws RepoLockedError naming the pid', async () => {
    await lockOf()
    const repo = await openRepo(repoPath)
    const err = await rejection(repo.lock())
    expect(err).toBeInstanceOf(RepoLockedError)
    expect(err.name).toBe('RepoLockedError')
    expect(err.message).toContain(`pid ${process.pid}`)
  })

  it('the RepoLockedError names the peer and API once the holder has published them', async () => {
    const lock = await lockOf()
    await lock.update({ peerId: '12D3KooWTestPeer', api: '127.0.0.1:4999' })
    const err = await rejection((await openRepo(repoPath)).lock())
    expect(err.name).toBe('RepoLockedError')
    expect(err.message).toContain('12D3KooWTestPeer')
    expect(err.message).toContain('127.0.0.1:4999')
  })

  it('after release a new lock can be taken', async () => {
    const first = await lockOf()
    await first.release()
    const second = await lockOf()
    expect(await readLock(repoPath)).toMatchObject({ pid: process.pid })
    await second.release()
    expect(await readLock(repoPath)).toBeUndefined()
    expect(await readdir(repoPath)).not.toContain('daemon.lock')
  })

  it('only one of two concurrent lock attempts succeeds', async () => {
    const repo = await openRepo(repoPath)
    const results = await Promise.allSettled([repo.lock(), repo.lock()])
    for (const r of results) if (r.status === 'fulfilled') locks.push(r.value)
    expect(results.map(r => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const failed = results.find(r => r.status === 'rejected')
    expect((failed as PromiseRejectedResult).reason.name).toBe('RepoLockedError')
  })

  it('takes over a stale lock left by a dead process', async () => {
    const pid = deadPid()
    await writeFile(join(repoPath, 'daemon.lock'), JSON.stringify({ pid, startedAt: new Date(0).toISOString(), api: '127.0.0.1:1' }))
    expect(await readLock(repoPath)).toBeUndefined()
    await lockOf()
    const info = await readLock(repoPath)
    expect(info?.pid).toBe(process.pid)
    expect(info?.api).toBeUndefined()
  })

  it('takes over a half-written (corrupt) lock file', async () => {
    await writeFile(join(repoPath, 'daemon.lock'), '{"pid": ')
    expect(await readLock(repoPath)).toBeUndefined()
    await lockOf()
    expect((await readLock(repoPath))?.pid).toBe(process.pid)
  })

  it('readLock: undefined with no lock, the info after update({ api })', async () => {
    expect(await readLock(repoPath)).toBeUndefined()
    const lock = await lockOf()
    const before = await readLock(repoPath)
    expect(before?.pid).toBe(process.pid)
    expect(before?.api).toBeUndefined()
    expect(Number.isNaN(Date.parse(before?.startedAt ?? ''))).toBe(false)
    await lock.update({ api: '127.0.0.1:45678' })
    const after = await readLock(repoPath)
    expect(after).toEqual({ pid: process.pid, startedAt: before?.startedAt, api: '127.0.0.1:45678' })
    // no temporary file is left behind by the atomic rewrite
    expect((await readdir(repoPath)).filter(f => f.includes('tmp'))).toEqual([])
  })

  it('the lock file has mode 0600', async () => {
    const lock = await lockOf()
    expect((await stat(join(repoPath, 'daemon.lock'))).mode & 0o777).toBe(0o600)
    await lock.update({ api: '127.0.0.1:1' })
    expect((await stat(join(repoPath, 'daemon.lock'))).mode & 0o777).toBe(0o600)
  })

  it('update after release does not recreate the lock', async () => {
    const lock = await lockOf()
    await lock.release()
    await lock.update({ api: '127.0.0.1:2' })
    expect(await readdir(repoPath)).not.toContain('daemon.lock')
  })
})
