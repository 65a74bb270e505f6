import { Client } from '../api/index.ts'
import { expectPositionals, flag, jsonFlag, printJson, printTable, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const jobs: Command = {
  name: 'jobs',
  summary: 'List the jobs this daemon submitted, newest first.',
  options: { ...repoFlag, ...jsonFlag },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    const list = await client.jobs()
    if (flag(parsed, 'json')) {
      printJson(list)
      return 0
    }
    if (list.length === 0) {
      process.stdout.write('no jobs yet (lepton submit MODULE runs one)\n')
      return 0
    }
    printTable(['JOB', 'STATE', 'TASKS', 'MODULE', 'ELAPSED'], list.map(j => [
      j.jobId, j.state, `${j.tasks.done}/${j.tasks.total}`, j.module, `${(j.elapsedMs / 1000).toFixed(1)} s`
    ]))
    return 0
  }
}
