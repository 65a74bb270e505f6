import { Client } from '../api/index.ts'
import { onePositional, repoFlag, str, timeoutFlag, timeoutMs } from './command.ts'
import type { Command } from './command.ts'

export const cat: Command = {
  name: 'cat',
  args: 'CID',
  summary: 'Write a file from the store to stdout, fetching it from the mesh if it is not here.',
  options: { ...repoFlag, ...timeoutFlag },
  async run (parsed) {
    const cid = onePositional(this, parsed, 'CID')
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    for await (const chunk of client.cat(cid, { timeoutMs: timeoutMs(parsed) })) {
      if (!process.stdout.write(chunk)) await new Promise(resolve => process.stdout.once('drain', resolve))
    }
    return 0
  }
}
