import { Client } from '../api/index.ts'
import { flag, jsonFlag, onePositional, printJson, repoFlag, str } from './command.ts'
import { printTaskTable, renderJobLine } from './job-view.ts'
import type { Command } from './command.ts'

export const job: Command = {
  name: 'job',
  args: 'ID',
  summary: 'Show one job: its state, result, and every task with the worker that ran it.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    const id = onePositional(this, parsed, 'job ID (lepton jobs lists them)')
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    const d = await client.job(id)
    if (flag(parsed, 'json')) {
      printJson(d)
      return 0
    }
    process.stdout.write(`${renderJobLine(d)}\nstate: ${d.state}${d.error != null ? ` (${d.error})` : ''}\nresult: ${d.resultCid ?? '-'}\n`)
    if (d.resumed > 0) process.stdout.write(`resumed after ${d.resumed} daemon restart(s)\n`)
    printTaskTable(d)
    return 0
  }
}
