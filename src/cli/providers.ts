import { Client } from '../api/index.ts'
import { flag, jsonFlag, onePositional, printJson, repoFlag, str, timeoutFlag, timeoutMs } from './command.ts'
import type { Command } from './command.ts'

export const providers: Command = {
  name: 'providers',
  args: 'CID',
  summary: 'List peers that hold a CID: connected peers first, then the DHT.',
  options: { ...repoFlag, ...timeoutFlag, ...jsonFlag },
  async run (parsed) {
    const cid = onePositional(this, parsed, 'CID')
    const list = await (await Client.connect({ repo: str(parsed, 'repo') })).providers(cid, { timeoutMs: timeoutMs(parsed) })
    if (flag(parsed, 'json')) printJson(list)
    else process.stdout.write(list.map(p => p.peerId).join('\n') + '\n')
    return 0
  }
}
