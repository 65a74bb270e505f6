import { Client } from '../api/index.ts'
import { expectPositionals, flag, jsonFlag, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const stop: Command = {
  name: 'stop',
  summary: 'Ask the running daemon to shut down cleanly.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    await (await Client.connect({ repo: str(parsed, 'repo') })).stop()
    if (flag(parsed, 'json')) printJson({ stopping: true })
    else process.stdout.write('daemon is stopping\n')
    return 0
  }
}
