import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { UsageError, expectPositionals, helpText, jsonFlag, list, parseCommandArgs, repoFlag, str, timeoutMs } from '../../src/cli/command.ts'
import { main } from '../../src/cli/main.ts'
import { VERSION } from '../../src/version.ts'
import type { Command } from '../../src/cli/command.ts'
import { catchSync } from '../helpers/errors.ts'

const cmd: Command = {
  name: 'frob',
  summary: 'Frobnicate the mesh.',
  args: '[THING]',
  options: {
    ...repoFlag,
    ...jsonFlag,
    bootstrap: { type: 'string', multiple: true, valueName: 'MULTIADDR', description: 'peer to dial at start' },
    verbose: { type: 'boolean', short: 'v', description: 'say more' },
    api: { type: 'string', description: 'HOST:PORT of the API' }
  },
  async run () { return 0 }
}

describe('parseCommandArgs', () => {
  it('an unknown flag is a UsageError pointing at `lepton NAME --help`', () => {
    const err = catchSync(() => parseCommandArgs(cmd, ['--nope']))
    expect(err).toBeInstanceOf(UsageError)
    expect(err.name).toBe('UsageError')
    expect(err.message).toContain('--nope')
    expect(err.message).toContain('lepton frob --help')
    // node's advice about positionals is cut off; one line only
    expect(err.message).not.toContain('positional')
    expect(err.message).not.toContain('\n')
  })

  it('an unknown short flag is a UsageError', () => {
    const err = catchSync(() => parseCommandArgs(cmd, ['-x']))
    expect(err).toBeInstanceOf(UsageError)
    expect(err.message).toContain('lepton frob --help')
  })

  it('a string flag without its value is a UsageError', () => {
    const err = catchSync(() => parseCommandArgs(cmd, ['--repo']))
    expect(err).toBeInstanceOf(UsageError)
    expect(err.message).toContain('--repo')
  })

  it('a boolean flag given a value is a UsageError', () => {
    expect(catchSync(() => parseCommandArgs(cmd, ['--json=yes']))).toBeInstanceOf(UsageError)
  })

  it('parses string, boolean and short flags and positionals', () => {
    const parsed = parseCommandArgs(cmd, ['thing', '--repo', '/r', '--json', '-v', '--api=127.0.0.1:1'])
    expect(parsed.positionals).toEqual(['thing'])
    expect(parsed.values.repo).toBe('/r')
    expect(parsed.values.json).toBe(true)
    expect(parsed.values.verbose).toBe(true)
    expect(parsed.values.api).toBe('127.0.0.1:1')
    expect(str(parsed, 'repo')).toBe('/r')
    expect(str(parsed, 'json')).toBeUndefined()
  })

  it('repeatable string flags collect an array in order', () => {
    const parsed = parseCommandArgs(cmd, ['--bootstrap', '/ip4/1.1.1.1/tcp/1', '--bootstrap=/ip4/2.2.2.2/tcp/2', '--bootstrap', '/ip4/3.3.3.3/tcp/3'])
    expect(parsed.values.bootstrap).toEqual(['/ip4/1.1.1.1/tcp/1', '/ip4/2.2.2.2/tcp/2', '/ip4/3.3.3.3/tcp/3'])
    expect(list(parsed, 'bootstrap')).toEqual(['/ip4/1.1.1.1/tcp/1', '/ip4/2.2.2.2/tcp/2', '/ip4/3.3.3.3/tcp/3'])
  })

  it('a repeatable flag given once is still an array', () => {
    expect(parseCommandArgs(cmd, ['--bootstrap', '/a']).values.bootstrap).toEqual(['/a'])
  })

  it('a non-repeatable string flag given twice keeps the last value, not an array', () => {
    expect(parseCommandArgs(cmd, ['--repo', '/a', '--repo', '/b']).values.repo).toBe('/b')
  })

  it('--help and -h parse on every command', () => {
    expect(parseCommandArgs(cmd, ['--help']).values.help).toBe(true)
    expect(parseCommandArgs(cmd, ['-h']).values.help).toBe(true)
    const bare: Command = { name: 'bare', summary: 'No options.', options: {}, async run () { return 0 } }
    expect(parseCommandArgs(bare, ['--help']).values.help).toBe(true)
  })

  it('everything after -- is positional', () => {
    expect(parseCommandArgs(cmd, ['--', '--nope']).positionals).toEqual(['--nope'])
  })
})

describe('helpText', () => {
  it('lists every option, its value name, and -h, --help', () => {
    const text = helpText(cmd)
    expect(text).toContain('Usage: lepton frob [THING] [options]')
    expect(text).toContain('Frobnicate the mesh.')
    for (const [name, spec] of Object.entries(cmd.options)) {
      expect(text).toContain(`--${name}`)
      expect(text).toContain(spec.description)
    }
    expect(text).toContain('--repo DIR')
    expect(text).toContain('--bootstrap MULTIADDR')
    expect(text).toContain('--api VALUE')
    expect(text).toContain('-v, --verbose')
    expect(text).toContain('-h, --help')
    expect(text).toMatch(/peer to dial at start \(repeatable\)/)
    // a boolean flag takes no value name
    expect(text).not.toMatch(/--json [A-Z]/)
  })

  it('aligns the descriptions in one column', () => {
    const lines = helpText(cmd).split('\n')
    const options = { ...cmd.options, help: { description: 'show this help' } }
    const starts = Object.entries(options).map(([name, spec]) => {
      const line = lines.find(l => l.includes(`--${name}`)) ?? ''
      return line.indexOf(spec.description)
    })
    expect(starts.every(s => s > 0)).toBe(true)
    expect(new Set(starts).size).toBe(1)
  })
})

describe('small helpers', () => {
  it('expectPositionals rejects one too many', () => {
    const parsed = parseCommandArgs(cmd, ['a', 'b'])
    expect(() => { expectPositionals(cmd, parsed, 2) }).not.toThrow()
    const err = catchSync(() => { expectPositionals(cmd, parsed, 1) })
    expect(err).toBeInstanceOf(UsageError)
    expect(err.message).toContain('"b"')
  })

  it('timeoutMs turns seconds into milliseconds and rejects nonsense', () => {
    const withTimeout: Command = { ...cmd, options: { timeout: { type: 'string', description: 't' } } }
    expect(timeoutMs(parseCommandArgs(withTimeout, []))).toBeUndefined()
    expect(timeoutMs(parseCommandArgs(withTimeout, ['--timeout', '2.5']))).toBe(2500)
    for (const bad of ['0', '-1', 'soon']) {
      expect(catchSync(() => timeoutMs(parseCommandArgs(withTimeout, ['--timeout', bad])))).toBeInstanceOf(UsageError)
    }
  })
})

describe('main', () => {
  let stdout: string[]
  let stderr: string[]

  beforeEach(() => {
    stdout = []
    stderr = []
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { stdout.push(String(chunk)); return true })
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { stderr.push(String(chunk)); return true })
  })

  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('--version prints the version and returns 0', async () => {
    expect(await main(['--version'])).toBe(0)
    expect(stdout.join('')).toBe(`${VERSION}\n`)
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('an unknown command returns 2 and says so on stderr', async () => {
    expect(await main(['nope'])).toBe(2)
    const err = stderr.join('')
    expect(err).toContain('unknown command "nope"')
    expect(err).toContain('lepton --help')
    expect(stdout.join('')).toBe('')
  })

  it('no command prints the usage and returns 2; --help returns 0', async () => {
    expect(await main([])).toBe(2)
    expect(stdout.join('')).toContain('Usage: lepton COMMAND')
    stdout.length = 0
    expect(await main(['--help'])).toBe(0)
    const text = stdout.join('')
    for (const name of ['init', 'daemon', 'id', 'peers', 'status', 'stop', 'add', 'cat', 'get', 'stat', 'providers', 'pin', 'gc']) {
      expect(text).toMatch(new RegExp(`^  ${name} `, 'm'))
    }
  })

  it('COMMAND --help prints that command\'s help and returns 0', async () => {
    expect(await main(['id', '--help'])).toBe(0)
    const text = stdout.join('')
    expect(text).toContain('Usage: lepton id')
    expect(text).toContain('--repo DIR')
    expect(text).toContain('-h, --help')
  })

  it('a bad flag on a real command returns 2 with a pointer to its help', async () => {
    expect(await main(['id', '--frobnicate'])).toBe(2)
    expect(stderr.join('')).toContain('lepton id --help')
  })
})
