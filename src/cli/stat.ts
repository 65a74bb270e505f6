import { Client } from '../api/index.ts'
import { flag, jsonFlag, onePositional, printJson, repoFlag, str, timeoutFlag, timeoutMs } from './command.ts'
import type { Command } from './command.ts'

export const stat: Command = {
  name: 'stat',
  args: 'CID',
  summary: 'Show a CID\'s type, size, blocks, whether it is here and pinned, and who holds it.',
  options: { ...repoFlag, ...timeoutFlag, ...jsonFlag },
  async run (parsed) {
    const cid = onePositional(this, parsed, 'CID')
    const s = await (await Client.connect({ repo: str(parsed, 'repo') })).stat(cid, { timeoutMs: timeoutMs(parsed) })
    if (flag(parsed, 'json')) {
      printJson(s)
    } else {
      process.stdout.write([
        `cid:     ${s.cid}`,
        `type:    ${s.type}`,
        `size:    ${s.size ?? 'unknown'}`,
        `blocks:  ${s.blocks ?? `${s.localBlocks}+ (not all here)`}`,
        `local:   ${s.local ? 'yes' : 'no'}`,
        `pinned:  ${s.pinned ? 'yes' : 'no'}`,
        `holders: ${s.holders.length === 0 ? 'none found' : s.holders.join('\n         ')}`
      ].join('\n') + '\n')
    }
    return 0
  }
}
