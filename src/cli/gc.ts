import { Client } from '../api/index.ts'
import { expectPositionals, flag, jsonFlag, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const gc: Command = {
  name: 'gc',
  summary: 'Remove every block that no pin reaches.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const res = await (await Client.connect({ repo: str(parsed, 'repo') })).gc()
    if (flag(parsed, 'json')) printJson(res)
    else process.stdout.write(`removed ${res.removed} blocks, freed ${res.freedBytes} bytes\n`)
    return 0
  }
}
