import { Client } from '../api/index.ts'
import { UsageError, flag, intFlag, jsonFlag, list, onePositional, printJson, repoFlag, secondsFlag, str } from './command.ts'
import { renderJobLine, showResult } from './job-view.ts'
import type { Command } from './command.ts'
import type { SubmitRequest } from '../jobs/index.ts'

export const submit: Command = {
  name: 'submit',
  args: 'MODULE',
  summary: 'Run a map/reduce job on the mesh and print its result.\nMODULE is a JavaScript module exporting map (and reduce, combine) or a WASI .wasm command; see examples/.',
  options: {
    ...repoFlag,
    input: { type: 'string', valueName: 'PATH|CID', description: 'a file (split on newlines), a folder (one partition per file) or a CID' },
    partitions: { type: 'string', valueName: 'N', description: 'partitions of a file input (default: about 1 MiB each)' },
    tasks: { type: 'string', valueName: 'N', description: 'tasks of a job without input, e.g. Monte-Carlo (default 1)' },
    verify: { type: 'string', valueName: 'K', description: 'run each task on K workers and take the majority output (default 1)' },
    retries: { type: 'string', valueName: 'N', description: 'retries of a failing task on other workers (default 2)' },
    timeout: { type: 'string', valueName: 'SECONDS', description: 'fail the job after this long (default: no limit)' },
    arg: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'handed to map as ctx.args.KEY (repeatable)' },
    reduce: { type: 'string', valueName: 'MODULE', description: 'JavaScript module whose reduce combines the outputs (default: MODULE\'s own)' },
    memory: { type: 'string', valueName: 'MIB', description: 'memory cap per task (workers may cap lower)' },
    'time-limit': { type: 'string', valueName: 'MS', description: 'time cap per task (workers may cap lower)' },
    detach: { type: 'boolean', description: 'print the job id and return at once' },
    ...jsonFlag
  },
  async run (parsed) {
    const module = onePositional(this, parsed, 'MODULE (path of the job module)')
    const args: Record<string, string> = {}
    for (const a of list(parsed, 'arg') ?? []) {
      const eq = a.indexOf('=')
      if (eq < 1) throw new UsageError(`--arg wants KEY=VALUE, not "${a}"`)
      args[a.slice(0, eq)] = a.slice(eq + 1)
    }
    const timeoutS = secondsFlag(parsed, 'timeout')
    const request: SubmitRequest = {
      module,
      input: str(parsed, 'input'),
      partitions: intFlag(parsed, 'partitions', 1),
      tasks: intFlag(parsed, 'tasks', 1),
      verify: intFlag(parsed, 'verify', 1),
      retries: intFlag(parsed, 'retries', 0),
      timeoutS: timeoutS == null ? undefined : Math.ceil(timeoutS),
      args,
      reduceModule: str(parsed, 'reduce'),
      memoryMiB: intFlag(parsed, 'memory', 8),
      timeMs: intFlag(parsed, 'time-limit', 1)
    }
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    const job = await client.submit(request)
    if (flag(parsed, 'detach')) {
      if (flag(parsed, 'json')) printJson({ jobId: job.id })
      else process.stdout.write(`${job.id}\n`)
      return 0
    }
    const tty = process.stderr.isTTY === true && !flag(parsed, 'json')
    if (tty) job.on('progress', (d) => { process.stderr.write(`\r${renderJobLine(d)}\x1b[K`) })
    const detail = await job.finished()
    if (tty) process.stderr.write('\n')
    return showResult(detail, flag(parsed, 'json'))
  }
}
