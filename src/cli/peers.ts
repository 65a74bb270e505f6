import { Client } from '../api/index.ts'
import { expectPositionals, flag, jsonFlag, printJson, printTable, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const peers: Command = {
  name: 'peers',
  summary: 'List connected peers with their addresses and measured round-trip time.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const list = await (await Client.connect({ repo: str(parsed, 'repo') })).peers()
    if (flag(parsed, 'json')) {
      printJson(list)
    } else if (list.length === 0) {
      process.stdout.write('no connected peers\n')
    } else {
      printTable(['PEER', 'RTT', 'ADDRESS'], list.map(p => [
        p.peerId,
        p.rttMs == null ? '-' : `${p.rttMs.toFixed(3)} ms`,
        p.addresses[0] ?? ''
      ]))
    }
    return 0
  }
}
