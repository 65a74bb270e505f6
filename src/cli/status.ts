import { Client } from '../api/index.ts'
import { expectPositionals, flag, jsonFlag, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

function formatUptime (ms: number): string {
  const s = Math.floor(ms / 1000)
  const parts = [[Math.floor(s / 86400), 'd'], [Math.floor(s / 3600) % 24, 'h'], [Math.floor(s / 60) % 60, 'm'], [s % 60, 's']] as const
  return parts.filter(([n], i) => n > 0 || i === 3).map(([n, u]) => `${n}${u}`).join(' ')
}

export const status: Command = {
  name: 'status',
  summary: 'Show the daemon\'s peer id, uptime, peer count, private or open mesh, listen addresses and version.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const s = await (await Client.connect({ repo: str(parsed, 'repo') })).status()
    if (flag(parsed, 'json')) {
      printJson(s)
    } else {
      process.stdout.write([
        `peer id:  ${s.peerId}`,
        `version:  ${s.version}`,
        `uptime:   ${formatUptime(s.uptimeMs)}`,
        `peers:    ${s.peerCount}`,
        `mesh:     ${s.private ? 'private (swarm key)' : 'open'}`,
        `repo:     ${s.repo}`,
        `api:      ${s.api}`,
        'listening:',
        ...s.listenAddresses.map(a => `  ${a}`)
      ].join('\n') + '\n')
    }
    return 0
  }
}
