import { Client } from '../api/index.ts'
import { flag, intFlag, jsonFlag, onePositional, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const rtt: Command = {
  name: 'rtt',
  args: 'PEER',
  summary: 'Measure the round-trip time to a connected peer now, on the RTT monitor\'s stream.',
  options: {
    ...repoFlag,
    count: { type: 'string', valueName: 'N', description: 'probes to send (default 5)' },
    ...jsonFlag
  },
  async run (parsed) {
    const peer = onePositional(this, parsed, 'PEER (a peer id)')
    const count = intFlag(parsed, 'count', 1, 100) ?? 5
    const report = await (await Client.connect({ repo: str(parsed, 'repo') })).rtt(peer, count)
    if (flag(parsed, 'json')) {
      printJson(report)
    } else {
      process.stdout.write([
        `peer:     ${report.peerId}`,
        `samples:  ${report.samplesMs.map(s => s.toFixed(3)).join(' ')} ms`,
        `median:   ${report.medianMs.toFixed(3)} ms`,
        `filtered: ${report.filteredRttMs?.toFixed(3) ?? '-'} ms (jitter ${report.jitterMs?.toFixed(3) ?? '-'} ms, loss ${((report.lossRate ?? 0) * 100).toFixed(1)}%)`
      ].join('\n') + '\n')
    }
    return 0
  }
}
