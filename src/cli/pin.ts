import { Client } from '../api/index.ts'
import { UsageError, flag, jsonFlag, printJson, repoFlag, str, timeoutFlag, timeoutMs } from './command.ts'
import type { Command } from './command.ts'

export const pin: Command = {
  name: 'pin',
  args: 'add|rm|ls [CID]',
  summary: 'Pin a CID (fetching it if need be) so gc keeps it, unpin it, or list pins.',
  options: { ...repoFlag, ...timeoutFlag, ...jsonFlag },
  async run (parsed) {
    const [sub, cid, extra] = parsed.positionals
    if (extra != null) throw new UsageError(`unexpected argument "${extra}"; see "lepton pin --help"`)
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    const json = flag(parsed, 'json')
    if (sub === 'ls') {
      const pins = await client.pinLs()
      if (json) printJson(pins)
      else process.stdout.write(pins.map(p => p.cid).join('\n') + (pins.length > 0 ? '\n' : ''))
      return 0
    }
    if (sub !== 'add' && sub !== 'rm') throw new UsageError('use "lepton pin add CID", "lepton pin rm CID" or "lepton pin ls"')
    if (cid == null) throw new UsageError('missing CID; see "lepton pin --help"')
    if (sub === 'add') await client.pinAdd(cid, { timeoutMs: timeoutMs(parsed) })
    else await client.pinRm(cid)
    if (json) printJson({ cid, pinned: sub === 'add' })
    else process.stdout.write(`${sub === 'add' ? 'pinned' : 'unpinned'} ${cid}\n`)
    return 0
  }
}
