import { Client } from '../api/index.ts'
import { expectPositionals, flag, jsonFlag, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const id: Command = {
  name: 'id',
  summary: 'Show this daemon\'s peer id and the addresses other machines can bootstrap from.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const info = await (await Client.connect({ repo: str(parsed, 'repo') })).id()
    if (flag(parsed, 'json')) printJson(info)
    else process.stdout.write([`peer id: ${info.peerId}`, 'addresses:', ...info.addresses.map(a => `  ${a}`)].join('\n') + '\n')
    return 0
  }
}
