import { Client } from '../api/index.ts'
import { expectPositionals, flag, jsonFlag, printJson, printTable, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

const short = (id: string): string => `${id.slice(0, 8)}…${id.slice(-6)}`

export const routes: Command = {
  name: 'routes',
  summary: 'Show the route to every reachable peer: direct, or through a faster detour.\nChosen from measured RTTs (Vivaldi estimates where nothing is measured); E = (T0 - T) / T0.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const list = await (await Client.connect({ repo: str(parsed, 'repo') })).routes()
    if (flag(parsed, 'json')) {
      printJson(list)
    } else if (list.length === 0) {
      process.stdout.write('no routes yet (no peers, or no RTT measured)\n')
    } else {
      printTable(['PEER', 'DIRECT', 'ROUTE', 'E', 'PATH'], list.map(r => [
        r.peerId,
        r.directRttMs == null ? '-' : `${r.directRttMs.toFixed(3)} ms`,
        `${r.rttMs.toFixed(3)} ms`,
        r.improvement.toFixed(2),
        r.path.length === 1 ? 'direct' : r.path.map(short).join(' > ')
      ]))
    }
    return 0
  }
}
