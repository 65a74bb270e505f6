import { writeFile } from 'node:fs/promises'
import { LeptonError } from '../errors.ts'
import { generateSwarmKey } from '../repo/index.ts'
import { UsageError, expectPositionals, str } from './command.ts'
import type { Command } from './command.ts'

export const key: Command = {
  name: 'key',
  args: 'gen',
  summary: 'Generate a swarm key for a private mesh (libp2p pre-shared key, /key/swarm/psk/1.0.0/ format).\nGive the same key to every peer: lepton init --swarm-key FILE. Keep it secret; it is the mesh\'s password.',
  options: {
    output: { type: 'string', short: 'o', valueName: 'FILE', description: 'write the key to FILE (mode 0600, never overwritten) instead of stdout' }
  },
  async run (parsed) {
    expectPositionals(this, parsed, 1)
    const sub = parsed.positionals[0]
    if (sub !== 'gen') throw new UsageError(`${sub == null ? 'missing subcommand' : `unknown subcommand "${sub}"`}; use "lepton key gen [-o FILE]"`)
    const text = generateSwarmKey()
    const file = str(parsed, 'output')
    if (file == null) {
      process.stdout.write(text)
      return 0
    }
    try {
      await writeFile(file, text, { mode: 0o600, flag: 'wx' })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') throw new LeptonError(`${file} already exists; not overwriting a swarm key (pick another name, or remove it first)`)
      throw new LeptonError(`cannot write ${file} (${code ?? (err as Error).message}); check the folder exists and is writable`)
    }
    process.stderr.write(`wrote swarm key to ${file}; start each peer's repo with: lepton init --swarm-key ${file}\n`)
    return 0
  }
}
