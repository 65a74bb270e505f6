/**
 * The swarm key of a private mesh: generation, the v1 format check, and its
 * place in the repo (swarm.key, 0600, read at open). Old repos and configs
 * without it stay open meshes.
 */
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  SwarmKeyError,
  defaultConfig,
  generateSwarmKey,
  initRepo,
  openRepo,
  parseConfig,
  parseSwarmKey,
  readSwarmKeyFile
} from '../../src/repo/index.ts'
import { catchSync, rejection } from '../helpers/errors.ts'

const HEX = 'dffb7e3135399a8b1612b2aaca1c36a3a8ac2cd0cca51ceeb2ced87d308cac6d'
const GOOD = `/key/swarm/psk/1.0.0/\n/base16/\n${HEX}\n`

let base: string
let repoPath: string

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'lepton-swarmkey-'))
  repoPath = join(base, 'repo')
})

afterEach(async () => {
  await rm(base, { recursive: true, force: true })
})

describe('generateSwarmKey', () => {
  it('writes the standard v1 format: header, /base16/, 64 hex digits', () => {
    const key = generateSwarmKey()
    expect(key).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    expect(parseSwarmKey(key, 'k')).toBe(key)
  })

  it('makes a different key every time', () => {
    expect(new Set(Array.from({ length: 20 }, generateSwarmKey)).size).toBe(20)
  })
})

describe('parseSwarmKey', () => {
  it('accepts the format libp2p and go-ipfs write, and canonicalises line ends, case and the final newline', () => {
    expect(parseSwarmKey(GOOD, 'k')).toBe(GOOD)
    expect(parseSwarmKey(GOOD.replaceAll('\n', '\r\n'), 'k')).toBe(GOOD)
    expect(parseSwarmKey(GOOD.trimEnd(), 'k')).toBe(GOOD)
    expect(parseSwarmKey(GOOD.replace(HEX, HEX.toUpperCase()), 'k')).toBe(GOOD)
  })

  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /first line/],
    ['another header', GOOD.replace('/key/swarm/psk/1.0.0/', '/key/swarm/psk/2.0.0/'), /first line/],
    ['a base64 key', GOOD.replace('/base16/', '/base64/'), /\/base64\/ is not supported/],
    ['no codec line', `/key/swarm/psk/1.0.0/\n${HEX}\n`, /second line/],
    ['a short key', GOOD.replace(HEX, HEX.slice(2)), /64 hex digits/],
    ['a long key', GOOD.replace(HEX, HEX + 'ab'), /64 hex digits/],
    ['non-hex digits', GOOD.replace(HEX, 'zz' + HEX.slice(2)), /64 hex digits/],
    ['trailing text', GOOD + 'more\n', /after the key/]
  ]
  for (const [what, text, why] of cases) {
    it(`refuses ${what} with a one-line SwarmKeyError naming the file and the fix`, () => {
      const err = catchSync(() => parseSwarmKey(text, '/tmp/my.key'))
      expect(err).toBeInstanceOf(SwarmKeyError)
      expect(err.name).toBe('SwarmKeyError')
      expect(err.message).toMatch(why)
      expect(err.message).toContain('/tmp/my.key')
      expect(err.message).toContain('lepton key gen')
      expect(err.message).not.toContain('\n')
    })
  }
})

describe('readSwarmKeyFile', () => {
  it('reads a key file', async () => {
    const file = join(base, 'swarm.key')
    await writeFile(file, GOOD)
    expect(await readSwarmKeyFile(file)).toBe(GOOD)
  })

  it('a missing file: SwarmKeyError with the path and advice', async () => {
    const err = await rejection(readSwarmKeyFile(join(base, 'nope.key')))
    expect(err.name).toBe('SwarmKeyError')
    expect(err.message).toContain('nope.key')
    expect(err.message).toContain('ENOENT')
    expect(err.message).toContain('lepton key gen')
  })

  it('a big file (or a device) is refused after one bounded read', async () => {
    const file = join(base, 'big')
    await writeFile(file, GOOD + 'x'.repeat(10_000))
    expect((await rejection(readSwarmKeyFile(file))).name).toBe('SwarmKeyError')
    expect((await rejection(readSwarmKeyFile('/dev/zero'))).name).toBe('SwarmKeyError')
  })
})

describe('swarm.key in the repo', () => {
  it('initRepo stores the key as swarm.key with mode 0600; openRepo reads it', async () => {
    await initRepo(repoPath, { swarmKey: GOOD.replaceAll('\n', '\r\n') })
    const st = await stat(join(repoPath, 'swarm.key'))
    expect((st.mode & 0o777).toString(8)).toBe('600')
    expect(await readFile(join(repoPath, 'swarm.key'), 'utf8')).toBe(GOOD)
    expect((await openRepo(repoPath)).swarmKey).toBe(GOOD)
  })

  it('without a key: no swarm.key, and the repo opens as an open mesh', async () => {
    await initRepo(repoPath)
    expect(await readdir(repoPath)).not.toContain('swarm.key')
    expect((await openRepo(repoPath)).swarmKey).toBeUndefined()
  })

  it('initRepo with a bad key refuses before creating anything', async () => {
    const err = await rejection(initRepo(repoPath, { swarmKey: 'not a key' }))
    expect(err.name).toBe('SwarmKeyError')
    expect(await readdir(base)).not.toContain('repo')
  })

  it('a corrupt swarm.key stops openRepo (never falls back to an open mesh)', async () => {
    await initRepo(repoPath, { swarmKey: GOOD })
    await writeFile(join(repoPath, 'swarm.key'), 'garbage')
    const err = await rejection(openRepo(repoPath))
    expect(err.name).toBe('SwarmKeyError')
    expect(err.message).toContain(join(repoPath, 'swarm.key'))
  })

  it('an unreadable swarm.key stops openRepo too', async () => {
    if (process.getuid?.() === 0) return // root reads anything
    await initRepo(repoPath, { swarmKey: GOOD })
    await chmod(join(repoPath, 'swarm.key'), 0o000)
    expect((await rejection(openRepo(repoPath))).name).toBe('SwarmKeyError')
  })
})

describe('apiPublic in config.json', () => {
  it('defaults to false, and a config written before it existed still parses', () => {
    expect(defaultConfig().apiPublic).toBe(false)
    const old: Record<string, unknown> = { ...defaultConfig() }
    delete old.apiPublic
    expect(parseConfig(JSON.stringify(old), 'c.json').apiPublic).toBe(false)
    expect(parseConfig(JSON.stringify({ version: 1 }), 'c.json').apiPublic).toBe(false)
  })

  it('accepts true and refuses anything but a boolean', () => {
    expect(parseConfig(JSON.stringify({ ...defaultConfig(), apiPublic: true }), 'c.json').apiPublic).toBe(true)
    const err = catchSync(() => parseConfig(JSON.stringify({ ...defaultConfig(), apiPublic: 'yes' }), 'c.json'))
    expect(err.name).toBe('ConfigError')
    expect(err.message).toContain('apiPublic')
  })
})
