import { Client } from '../api/index.ts'
import { flag, jsonFlag, onePositional, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const cancel: Command = {
  name: 'cancel',
  args: 'ID',
  summary: 'Cancel a running job: its workers stop its tasks.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    const id = onePositional(this, parsed, 'job ID')
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    const s = await client.cancel(id)
    if (flag(parsed, 'json')) printJson(s)
    else process.stdout.write(`${s.jobId} ${s.state}\n`)
    return 0
  }
}
